/**
 * The real GPU worker process chooses its decode concurrency and its intra-op thread setting from its first
 * batches (inference measured at each setting of the ladder, as no --intra-op-threads is given) and logs the
 * choice with what it measured (src/batch/decode-split.ts; the decision itself on measured inputs:
 * test/batch/decode-split.test.ts). The demo model on the CPU provider: what it chooses depends on the
 * machine's figures, so the test checks that a choice was made from measurements at every setting and
 * logged, once, with its mode ("overlap" or "phases"), a reason that says the same, and a predicted rate
 * that is the mode's formula on the logged figures. The worker keeps it for the model (src/batch/split-registry.ts):
 * the next job's shards start with it, and each logs that it reused it.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { intraOpLadder } from '../../src/batch/decode-split';
import { writeSampleImages } from '../../src/demo/sample-images';
import { eventually, uniqueName } from '../helpers/workers';
import { workflowSuite } from '../helpers/workflow-suite';

describe('the GPU worker’s decode split', () => {
  const suite = workflowSuite('batch-decode-split', { gpu: {} });

  test('is chosen once from the first batches and logged with its measurements', async () => {
    const name = uniqueName('split');
    const dir = path.join(suite.scratch, name, 'in');
    // A measured batch of 2 at each setting (each after a one-image warm-up), and two shards more.
    const ladder = intraOpLadder(os.availableParallelism());
    const items = 2 * ladder.length + 24;
    await writeSampleImages(dir, items);
    const handle = await suite.startBatch(
      suite.batchInput({ name, inputPath: dir, shardSize: 12, batchSize: 2, maxShardsInFlight: 1 }),
    );
    const outcome = await handle.result();
    assert.equal(outcome.itemsOk, items);
    // The log line and its attributes, which the worker prints over several lines.
    const line = await eventually(
      () => Promise.resolve(/Decode concurrency chosen \{[^]*?\n\}/.exec(suite.gpuWorker.output())?.[0]),
      'the decode split in the GPU worker’s log',
    );
    // What it chose depends on this machine's figures; that it chose from them, and logged them, does not.
    const mode = /mode: '(overlap|phases)'/.exec(line)?.[1];
    const reason = /reason: '(inference is \d+% of the CPU work: [^']*)'/.exec(line)?.[1] ?? '';
    const inWords =
      mode === 'phases'
        ? /: decode a batch on every core, then infer it with \d+ intra-op thread\(s\), in turns$/
        : /: decode on (every core|the \d+ core\(s\) that \d+ intra-op thread\(s\) leave,) while it infers$/;
    assert.match(reason, inWords, `the reason says the mode (${mode ?? 'none logged'})`);
    const intraOp = Number(/intraOpThreads: (\d+),\n/.exec(line)?.[1]);
    assert.ok(ladder.includes(intraOp), `the chosen intra-op setting ${intraOp} is one of ${ladder.join(', ')}`);
    const chosen = Number(/decodeConcurrency: (\d+)/.exec(line)?.[1]);
    // At most the decode slots: libuv's pool, max(4, cores) as the worker sets it.
    const slots = Math.max(4, os.availableParallelism());
    assert.ok(chosen >= 1 && chosen <= slots, `decode concurrency ${chosen}`);
    assert.match(line, new RegExp(`decodeSlots: ${slots}\\b`));
    assert.match(line, /executionProvider: 'cpu'/);
    assert.match(line, new RegExp(`cores: ${os.availableParallelism()}\\b`));
    assert.match(line, /decodeMsPerImage: [\d.]+/);
    // Inference measured at every setting of the ladder, in its order.
    const inference = [...line.matchAll(/\{ intraOpThreads: (\d+), msPerImage: ([\d.]+) \}/g)].map((m) => ({
      t: Number(m[1]),
      ms: Number(m[2]),
    }));
    assert.deepEqual(
      inference.map((m) => m.t),
      ladder,
    );
    // The predicted rate is the chosen mode's formula on the logged figures; they are rounded to 0.1 in the
    // log, and each formula falls as D and I grow, so it lies between the formula at D ± 0.05 and I ± 0.05.
    const C = os.availableParallelism();
    const D = Number(/decodeMsPerImage: ([\d.]+)/.exec(line)?.[1]);
    const I = inference.find((m) => m.t === intraOp)!.ms;
    const predicted = Number(/predictedItemsPerSec: ([\d.]+)/.exec(line)?.[1]);
    const formula = (d: number, i: number) =>
      mode === 'phases'
        ? 1000 / (d / C + i)
        : /every core/.test(reason)
          ? Math.min((C * 1000) / (d + intraOp * i), 1000 / i)
          : Math.min(1000 / i, ((C - intraOp) * 1000) / d);
    const low = formula(D + 0.05, I + 0.05);
    const high = formula(Math.max(1e-3, D - 0.05), Math.max(1e-3, I - 0.05));
    assert.ok(
      predicted >= low - 0.1 && predicted <= high + 0.1,
      `predicted ${predicted} items/s, the ${mode} formula on the logged figures ${low.toFixed(1)}-${high.toFixed(1)}`,
    );
    if (mode === 'phases') assert.equal(chosen, slots, 'in phases a batch decodes on every slot');
    // Once per process and model: the later shards do not choose again.
    const times = (text: string, what: string) => text.split(what).length - 1;
    assert.equal(times(suite.gpuWorker.output(), 'Decode concurrency chosen'), 1);
    const key = /key: '([^']+)'/.exec(line)?.[1];
    assert.match(key ?? '', /^sha256:[0-9a-f]{64}#[0-9a-f]{16}#cpu$/, 'the choice names the model, spec and provider');

    // The next job of the same model on this worker: every shard starts with the chosen split and says so.
    const next = uniqueName('split-again');
    const nextDir = path.join(suite.scratch, next, 'in');
    await writeSampleImages(nextDir, 8);
    const before = suite.gpuWorker.output().length;
    const again = await suite.startBatch(
      suite.batchInput({ name: next, inputPath: nextDir, shardSize: 4, batchSize: 2, maxShardsInFlight: 2 }),
    );
    assert.equal((await again.result()).itemsOk, 8);
    const reused = await eventually(async () => {
      const logged = [
        ...suite.gpuWorker
          .output()
          .slice(before)
          .matchAll(/Decode split reused \{[^]*?\n\}/g),
      ];
      return Promise.resolve(logged.length === 2 ? logged.map((m) => m[0]) : undefined);
    }, 'both shards of the next job log the split they reused');
    for (const logged of reused) {
      assert.ok(logged.includes(`key: '${key}'`), logged);
      assert.ok(logged.includes(`mode: '${mode}'`), logged);
      assert.ok(logged.includes(`intraOpThreads: ${intraOp}`), logged);
    }
    assert.equal(times(suite.gpuWorker.output(), 'Decode concurrency chosen'), 1, 'nothing measured again');
  });
});
