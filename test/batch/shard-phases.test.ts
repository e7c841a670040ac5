/**
 * The shard pipeline (src/batch/shard-scorer.ts) in the decode split's "phases" mode, with real decodes and
 * real onnxruntime inference: two shards share one process's splitter; while it measures (its one-image
 * warm-up included), and once it chose phases, no decode runs while a batch infers (in either shard), so each inference time it measures is its
 * own; each shard's rows come out in input order, each input exactly once, and its last checkpoint counts
 * what was written. (The decision on measured inputs: test/batch/decode-split.test.ts.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, test } from 'node:test';

import { DecodeSplitter, LARGE_INFERENCE_SHARE } from '../../src/batch/decode-split';
import type { DecodeSplit, SplitInputs } from '../../src/batch/decode-split';
import { scoreSplitShard, splitShardsSuite } from '../helpers/split-shards';

describe('the shard pipeline in phases', () => {
  const s = splitShardsSuite(24);

  test('two shards take turns: no decode beside an inference; rows in order, each input once', async () => {
    const choices: Array<[DecodeSplit, SplitInputs]> = [];
    // One intra-op setting, all the cores: with inference a large share there is no core to overlap on.
    const splitter = new DecodeSplitter({
      cores: 2,
      decodeSlots: 4,
      intraOpSettings: [2],
      onChoice: (split, measured) => choices.push([split, measured]),
    });
    // A probe around the real inference: what else runs while each batch infers.
    const seen: Array<{ images: number; decodesAtStart: number; inPhases: boolean; from: number; to: number }> = [];
    const infer = s.classifier.infer.bind(s.classifier);
    s.classifier.infer = async (batch, at) => {
      const decodesAtStart = splitter.decodes.active;
      const inPhases = splitter.inPhases;
      const from = performance.now();
      const out = await infer(batch, at);
      seen.push({ images: batch.length, decodesAtStart, inPhases, from, to: performance.now() });
      return out;
    };
    // And when each decode ran (the pipeline reports each one's time as it ends).
    const decodes: Array<{ from: number; to: number }> = [];
    const recordDecode = splitter.recordDecode.bind(splitter);
    splitter.recordDecode = (ms, atOnce) => {
      const to = performance.now();
      decodes.push({ from: to - ms, to });
      recordDecode(ms, atOnce);
    };
    const shard = (n: number) => scoreSplitShard(s, splitter, { n, size: 12, batchSize: 2 });
    const [first, second] = await Promise.all([shard(0), shard(1)]);

    assert.equal(choices.length, 1, 'decided once, for both shards');
    const [split, measured] = choices[0]!;
    assert.ok(split.inferenceShare >= LARGE_INFERENCE_SHARE, `inference share ${split.inferenceShare}`);
    assert.equal(split.mode, 'phases');
    assert.equal(split.decodeConcurrency, 4, 'a batch decodes on every slot');
    assert.equal(measured.inference[0]?.intraOpThreads, 2);
    // Twelve batches, and the one-image run that warmed the session up before the first measured one.
    assert.deepEqual(
      seen.map((run) => run.images),
      [1, ...Array.from({ length: 12 }, () => 2)],
    );
    assert.equal(decodes.length, 24);
    for (const run of seen) {
      assert.equal(run.inPhases, true);
      assert.equal(run.decodesAtStart, 0, 'no decode when an inference starts');
      const beside = decodes.filter((d) => d.from < run.to && d.to > run.from);
      assert.deepEqual(beside, [], 'no decode ran while a batch inferred');
    }
    for (const [n, { rows, checkpoints, predictions }] of [first, second].entries()) {
      assert.deepEqual(
        rows.map((r) => r.index),
        Array.from({ length: 12 }, (_, i) => n * 12 + i),
        'in input order, each once',
      );
      assert.deepEqual(
        rows.map((r) => r.path),
        s.inputs.slice(n * 12, n * 12 + 12),
      );
      const last = checkpoints.at(-1)!;
      assert.equal(last.itemsDone, 12);
      const bytes = (await fs.stat(predictions)).size;
      assert.equal(last.predictionsBytes, bytes, 'the checkpoint counts what was written');
      assert.deepEqual(
        checkpoints.map((c) => c.itemsDone),
        [2, 4, 6, 8, 10, 12],
      );
    }
  });
});
