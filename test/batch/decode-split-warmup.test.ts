/**
 * A fresh worker's decode-split measurement through the real pipeline (src/batch/shard-scorer.ts), with real
 * decodes and real onnxruntime inference at two intra-op settings: each setting's session is warmed up on one
 * image just before its first measured batch, in the same turn (no decode beside it), untimed; the split is
 * chosen after one measured batch per setting, so a slow warm-up cannot skew it; a warm-up that fails leaves
 * that setting's next batch to warm it (not counted) and the shard scores every input. (The splitter's
 * bookkeeping on given figures: test/batch/decode-split.test.ts.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { DecodeSplitter } from '../../src/batch/decode-split';
import type { DecodeSplit, SplitInputs } from '../../src/batch/decode-split';
import type { Classifier } from '../../src/scoring/classifier';
import { readJsonl } from '../helpers/jsonl';
import { scoreSplitShard, splitShardsSuite } from '../helpers/split-shards';

const SHARD = 12;
const BATCH = 4;
/** What a slow warm-up adds: were it counted, a setting would read at least SLOW_MS / BATCH ms per image. */
const SLOW_MS = 800;

/** One run of the real classifier, as the probe saw it. */
interface Run {
  intraOpThreads: number;
  images: number;
  decodesAtStart: number;
}

/**
 * Wraps the real classifier's `infer` with `probe`, which sees each run (before it starts) and may delay or
 * fail it; returns the runs seen and a function that restores the classifier.
 */
function probeInfer(
  classifier: Classifier,
  splitter: DecodeSplitter,
  probe: (run: Run, firstAtSetting: boolean) => Promise<void> = () => Promise.resolve(),
): { runs: Run[]; restore: () => void } {
  const runs: Run[] = [];
  const infer = classifier.infer.bind(classifier);
  classifier.infer = async (batch, at) => {
    const run = {
      intraOpThreads: at?.intraOpThreads ?? 0,
      images: batch.length,
      decodesAtStart: splitter.decodes.active,
    };
    const first = !runs.some((r) => r.intraOpThreads === run.intraOpThreads);
    runs.push(run);
    await probe(run, first);
    return infer(batch, at);
  };
  return { runs, restore: () => (classifier.infer = infer) };
}

function recordingSplitter() {
  const choices: Array<[DecodeSplit, SplitInputs]> = [];
  const splitter = new DecodeSplitter({
    cores: 2,
    decodeSlots: 4,
    intraOpSettings: [2, 1],
    onChoice: (split, measured) => choices.push([split, measured]),
  });
  return { splitter, choices };
}

describe('the decode split’s warm-up', () => {
  const s = splitShardsSuite(SHARD);

  test('one image warms each setting up, untimed; decided after one measured batch per setting', async () => {
    const { splitter, choices } = recordingSplitter();
    // The first run at each setting (the warm-up) is slow, as a cold session is.
    const { runs, restore } = probeInfer(s.classifier, splitter, async (_, first) => {
      if (first) await new Promise((resolve) => setTimeout(resolve, SLOW_MS));
    });
    try {
      const { rows } = await scoreSplitShard(s, splitter, { n: 0, size: SHARD, batchSize: BATCH });
      assert.deepEqual(
        rows.map((r) => r.index),
        Array.from({ length: SHARD }, (_, i) => i),
        'every input once, in order',
      );
    } finally {
      restore();
    }
    assert.equal(choices.length, 1, 'decided once');
    assert.deepEqual(
      runs.slice(0, 4).map((r) => [r.intraOpThreads, r.images]),
      [
        [2, 1],
        [2, BATCH],
        [1, 1],
        [1, BATCH],
      ],
      'a one-image warm-up just before each setting’s measured batch',
    );
    assert.ok(
      runs.slice(0, 4).every((r) => r.decodesAtStart === 0),
      'no decode beside a warm-up or a measured run',
    );
    const chosen = choices[0]![0].intraOpThreads!;
    assert.ok(
      runs.slice(4).every((r) => r.intraOpThreads === chosen && r.images === BATCH),
      'after one measured batch per setting, every batch at the chosen setting, no warm-up',
    );
    assert.equal(runs.length, 4 + SHARD / BATCH - 2);
    const [, measured] = choices[0]!;
    assert.deepEqual(
      measured.inference.map((m) => m.intraOpThreads),
      [2, 1],
    );
    for (const m of measured.inference) {
      assert.ok(
        m.msPerImage < SLOW_MS / BATCH / 2,
        `${m.intraOpThreads} thread(s): ${m.msPerImage} ms per image; the slow warm-up was not counted`,
      );
    }
  });

  test('a failed warm-up or a corrupt first image does not break the shard; the next batch warms up', async () => {
    const { splitter, choices } = recordingSplitter();
    // The warm-up at one thread fails (as a run can); the other goes through.
    const { runs, restore } = probeInfer(s.classifier, splitter, (run, first) =>
      first && run.intraOpThreads === 1 && run.images === 1
        ? Promise.reject(new Error('warm-up failed'))
        : Promise.resolve(),
    );
    const corrupt = path.join(s.dir, 'corrupt.jpg');
    const good = await fs.readFile(s.inputs[0]!);
    await fs.writeFile(corrupt, good.subarray(0, 40)); // a JPEG cut short: it fails to decode
    const inputs = [corrupt, ...s.inputs.slice(0, SHARD - 1)];
    try {
      const { rows } = await scoreSplitShard({ ...s, inputs }, splitter, { n: 0, size: SHARD, batchSize: BATCH });
      assert.deepEqual(
        rows.map((r) => r.path),
        inputs.slice(1),
        'every readable input scored once, in order',
      );
    } finally {
      restore();
    }
    const errors = await readJsonl<{ index: number; path: string }>(path.join(s.dir, 'errors-0.jsonl'));
    assert.deepEqual(
      errors.map((e) => [e.index, e.path]),
      [[0, corrupt]],
      'the corrupt image is an error row',
    );
    assert.equal(choices.length, 1, 'decided');
    assert.deepEqual(
      runs.slice(0, 5).map((r) => [r.intraOpThreads, r.images]),
      [
        [2, 1],
        [2, BATCH - 1], // the first batch: the corrupt image is not in it
        [1, 1], // the warm-up that failed
        [1, BATCH], // then the setting's first batch: its warm-up, not counted
        [1, BATCH], // the measured one
      ],
    );
    assert.deepEqual(
      choices[0]![1].inference.map((m) => m.intraOpThreads),
      [2, 1],
    );
  });
});
