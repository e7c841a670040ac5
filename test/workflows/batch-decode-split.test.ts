/**
 * The real GPU worker process chooses its decode concurrency from its first batches and logs the choice
 * with what it measured (src/batch/decode-split.ts; the decision itself on measured inputs:
 * test/batch/decode-split.test.ts). The demo model on the CPU provider: what it chooses depends on the
 * machine's figures, so the test checks that a choice was made from measurements and logged, once.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { writeSampleImages } from '../../src/demo/sample-images';
import { eventually, uniqueName } from '../helpers/workers';
import { workflowSuite } from '../helpers/workflow-suite';

describe('the GPU worker’s decode split', () => {
  const suite = workflowSuite('batch-decode-split', { gpu: { args: ['--intra-op-threads', '1'] } });

  test('is chosen once from the first batches and logged with its measurements', async () => {
    const name = uniqueName('split');
    const dir = path.join(suite.scratch, name, 'in');
    await writeSampleImages(dir, 24);
    const handle = await suite.startBatch(
      suite.batchInput({ name, inputPath: dir, shardSize: 12, batchSize: 2, maxShardsInFlight: 1 }),
    );
    const outcome = await handle.result();
    assert.equal(outcome.itemsOk, 24);
    // The log line and its attributes, which the worker prints over several lines.
    const line = await eventually(
      () => Promise.resolve(/Decode concurrency chosen \{[^]*?\n\}/.exec(suite.gpuWorker.output())?.[0]),
      'the decode split in the GPU worker’s log',
    );
    // What it chose depends on this machine's figures; that it chose from them, and logged them, does not.
    assert.match(
      line,
      /reason: 'inference is \d+% of the CPU work: (decode on every core|decode enough to feed [\d.]+ items\/s with 1 intra-op thread\(s\))'/,
    );
    const chosen = Number(/decodeConcurrency: (\d+)/.exec(line)?.[1]);
    assert.ok(chosen >= 1 && chosen <= os.availableParallelism(), `decode concurrency ${chosen}`);
    assert.match(line, /executionProvider: 'cpu'/);
    assert.match(line, new RegExp(`cores: ${os.availableParallelism()}\\b`));
    assert.match(line, /decodeMsPerImage: [\d.]+/);
    assert.match(line, /inference: \[ \{ intraOpThreads: 1, msPerImage: [\d.]+ \} \]/);
    assert.match(line, /predictedItemsPerSec: [\d.]+/);
    // Once per process: the second shard does not choose again.
    const times = suite.gpuWorker.output().split('Decode concurrency chosen').length - 1;
    assert.equal(times, 1);
  });
});
