/**
 * The decode split (src/batch/decode-split.ts) on measured inputs: every core decodes, overlapping inference,
 * where inference is on a GPU or a small share of the work; where both are on the CPU, the mode and thread
 * setting with the best predicted rate are kept: "phases" (a batch decodes on every core, then infers with
 * every thread, in turns) or "overlap" (decode on the cores the intra-op threads leave). The splitter runs in
 * phases while it measures (inference with no decode beside it), decides once, after one measured batch per
 * setting (each setting's session warmed up on one image first, not counted), and holds what it chose. (The real worker logs the choice:
 * test/workflows/batch-decode-split.test.ts; the pipeline's turns: test/batch/shard-phases.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  ConcurrencyLimit,
  DecodeSplitter,
  chooseDecodeSplit,
  intraOpLadder,
  intraOpSettingsToMeasure,
} from '../../src/batch/decode-split';
import type { DecodeSplit, SplitInputs, SplitterOptions } from '../../src/batch/decode-split';

/**
 * What a worker measured: `cores`, D (decode core-ms per image) and, per intra-op setting, [threads, wall ms
 * per image]; on the CPU with as many decode slots as cores unless `more` says otherwise.
 */
function measured(
  cores: number,
  decodeMsPerImage: number,
  settings: Array<[number, number]>,
  more: Partial<SplitInputs> = {},
): SplitInputs {
  const inference = settings.map(([intraOpThreads, msPerImage]) => ({ intraOpThreads, msPerImage }));
  return { cores, executionProvider: 'cpu', decodeMsPerImage, inference, ...more };
}

const splitOf = (...args: Parameters<typeof measured>): DecodeSplit => chooseDecodeSplit(measured(...args));

/** The split's mode, setting, concurrency and (to 1e-9) predicted rate, where given. */
function assertSplit(
  split: DecodeSplit,
  want: Partial<Pick<DecodeSplit, 'mode' | 'intraOpThreads' | 'decodeConcurrency' | 'predictedItemsPerSec'>>,
): void {
  const { predictedItemsPerSec, ...exact } = want;
  assert.deepEqual(
    Object.fromEntries(Object.keys(exact).map((k) => [k, split[k as keyof typeof exact]])),
    exact,
    split.reason,
  );
  if (predictedItemsPerSec !== undefined) {
    assert.ok(
      Math.abs(split.predictedItemsPerSec - predictedItemsPerSec) < 1e-9,
      `predicted ${split.predictedItemsPerSec}, want ${predictedItemsPerSec}`,
    );
  }
}

/** A splitter that keeps what it decides, with what it decided from. */
function recordingSplitter(opts: Omit<SplitterOptions, 'onChoice'>) {
  const choices: Array<[DecodeSplit, SplitInputs]> = [];
  const splitter = new DecodeSplitter({ ...opts, onChoice: (split, inputs) => choices.push([split, inputs]) });
  return { splitter, choices };
}

describe('chooseDecodeSplit', () => {
  test('inference on a GPU: decode on every core, the limit C / D', () => {
    const split = splitOf(4, 40, [], { executionProvider: 'cuda' });
    assertSplit(split, { mode: 'overlap', decodeConcurrency: 4, predictedItemsPerSec: 100 });
    assert.equal(split.inferenceShare, 0);
    assert.match(split.reason, /inference runs on cuda: decode on every core while it infers/);
  });

  test('decoding on every core (overlap beside a GPU or a tiny model, or in phases) uses every decode slot', () => {
    // 2 cores, libuv's default pool of 4: a decode also waits (its read, its hops to the main thread).
    const slots = { decodeSlots: 4 };
    const gpu = splitOf(2, 30, [], { ...slots, executionProvider: 'cuda' });
    assertSplit(gpu, { decodeConcurrency: 4, predictedItemsPerSec: 2000 / 30 }); // the limit is still C / D
    assertSplit(splitOf(2, 30, [[2, 0.3]], slots), { mode: 'overlap', decodeConcurrency: 4 }); // a tiny model
    // Inference 29% of the work: every core decodes beside it, 2000 / 7000 = 0.29 items/s (against 0.2
    // decoding only on the one core a thread leaves).
    assertSplit(splitOf(2, 5000, [[1, 2000]], slots), { mode: 'overlap', decodeConcurrency: 4 });
    assertSplit(splitOf(2, 1000, [[2, 2000]], slots), { mode: 'phases', decodeConcurrency: 4 });
    const { splitter, choices } = recordingSplitter({ cores: 2, decodeSlots: 4, intraOpSettings: [2] });
    assert.equal(splitter.decodes.limit, 4, 'every slot until it knows');
    // Four decodes at once on two cores took twice as long each: what one costs on a core is half that.
    for (const ms of [60, 62, 58]) splitter.recordDecode(ms, 4);
    splitter.recordBatch('cpu', 4, 40, 2);
    splitter.recordBatch('cpu', 4, 40, 2);
    assert.equal(choices[0]?.[1].decodeMsPerImage, 30);
  });

  test('a tiny model on the CPU (inference a small share): decode on every core', () => {
    const split = splitOf(2, 50, [[2, 0.5]]);
    assertSplit(split, { mode: 'overlap', decodeConcurrency: 2 });
    assert.ok(split.inferenceShare < 0.05);
    assert.match(split.reason, /inference is 2% of the CPU work: decode on every core while it infers/);
  });

  test('a ResNet-50-shaped model on 2 cores (the figures of issue #28): phases, at the sum-of-parts limit', () => {
    // D 50 ms; bare inference 9.3 items/s with two threads, the only setting: overlapping would take one of
    // its two cores from it. 1 / (D / C + I) = C / (D + C·I) = 2000 / 265 = 7.55 items/s; a batch decodes on
    // every core.
    const split = splitOf(2, 50, [[2, 107.5]]);
    assertSplit(split, { mode: 'phases', intraOpThreads: 2, decodeConcurrency: 2, predictedItemsPerSec: 2000 / 265 });
    assert.ok(split.inferenceShare > 0.8);
    assert.match(
      split.reason,
      /inference is 81% of the CPU work: decode a batch on every core, then infer it with 2 intra-op thread\(s\), in turns/,
    );
  });

  test('camera photos, ResNet-50-shaped, measured alone: phases; the same measured beside a decode: overlap', () => {
    // bench/results/decode-2026-12-06T20-12-fast.md: D 48 core-ms, bare onnxruntime 45.5 ms/image at 2
    // threads; one thread about 85. Phases at 2: 1000 / (24 + 45.5) = 14.4 items/s; overlap at 1:
    // min(1000 / 85, 1000 / 48) = 11.8.
    const slots = { decodeSlots: 4 };
    const alone = splitOf(
      2,
      48,
      [
        [2, 45.5],
        [1, 85],
      ],
      slots,
    );
    assertSplit(alone, { mode: 'phases', intraOpThreads: 2, decodeConcurrency: 4, predictedItemsPerSec: 1000 / 69.5 });
    // What the worker measured when a decode ran beside each inference (the same run's log: 115.8 and 101.3
    // ms/image, D 59.2): phases look worse than they are, and it kept one thread, overlapping, at 9.9 items/s.
    const beside = splitOf(
      2,
      59.2,
      [
        [2, 115.8],
        [1, 101.3],
      ],
      slots,
    );
    assertSplit(beside, { mode: 'overlap', intraOpThreads: 1, decodeConcurrency: 1 });
    assert.equal(beside.predictedItemsPerSec.toFixed(1), '9.9');
    assert.match(beside.reason, /decode on the 1 core\(s\) that 1 intra-op thread\(s\) leave, while it infers/);
  });

  test('one core: no core is left to overlap on, so phases unless inference is small', () => {
    const slots = { decodeSlots: 4 };
    assertSplit(splitOf(1, 20, [[1, 40]], slots), { mode: 'phases', predictedItemsPerSec: 1000 / 60 });
    assertSplit(splitOf(1, 20, [[1, 1]], slots), { mode: 'overlap', decodeConcurrency: 4 });
  });

  test('of several thread settings and modes, the best predicted rate; ties keep the first', () => {
    const split = splitOf(8, 40, [
      [8, 12], // phases 1000 / (5 + 12) = 58.8
      [4, 20], // phases 40; overlap min(50, 4000 / 40 = 100) = 50
      [6, 14], // phases 52.6; overlap min(71.4, 2000 / 40 = 50) = 50
    ]);
    assertSplit(split, { mode: 'phases', intraOpThreads: 8, decodeConcurrency: 8 });
    assertSplit(
      splitOf(8, 40, [
        [2, 10],
        [2, 10],
      ]),
      { intraOpThreads: 2 },
    );
  });

  test('overlap beside fewer threads: decode gets only what feeds inference; every core where decode binds', () => {
    // 4 cores, D 10: one thread 50 ms/image (20 items/s, fed by 0.2 of a core), four threads hardly faster
    // (49: phases 1000 / (2.5 + 49) = 19.4): one thread, one decode at a time.
    const fed = splitOf(4, 10, [
      [4, 49],
      [1, 50],
    ]);
    assertSplit(fed, { mode: 'overlap', intraOpThreads: 1, decodeConcurrency: 1, predictedItemsPerSec: 20 });
    // Where the cores inference leaves would bound the decode, decoding on every core beside it is at least as
    // fast (D ≥ (C - t)·I means C / (D + t·I) ≥ (C - t) / D), and inference is then under half the work.
    const medium = splitOf(4, 100, [[1, 20]]);
    assertSplit(medium, { mode: 'overlap', decodeConcurrency: 4, predictedItemsPerSec: 4000 / 120 });
  });
});

describe('intraOpLadder', () => {
  test('every core, then halving down to one', () => {
    assert.deepEqual(intraOpLadder(1), [1]);
    assert.deepEqual(intraOpLadder(2), [2, 1]);
    assert.deepEqual(intraOpLadder(6), [6, 3, 2, 1]);
    assert.deepEqual(intraOpLadder(16), [16, 8, 4, 2, 1]);
  });
});

describe('intraOpSettingsToMeasure', () => {
  const worker = { cores: 4, executionProvider: 'cpu', resolvedIntraOpThreads: 4 };
  test('the ladder where the operator left the setting to the worker', () => {
    assert.deepEqual(intraOpSettingsToMeasure(worker), [4, 2, 1]);
  });
  test('only the sessions’ own setting where the operator set it, ran several sessions, or the GPU infers', () => {
    assert.deepEqual(intraOpSettingsToMeasure({ ...worker, intraOpNumThreads: 3, resolvedIntraOpThreads: 3 }), [3]);
    assert.deepEqual(intraOpSettingsToMeasure({ ...worker, inferenceThreads: 2, resolvedIntraOpThreads: 2 }), [2]);
    assert.deepEqual(intraOpSettingsToMeasure({ ...worker, executionProvider: 'cuda' }), [4]);
  });
});

describe('DecodeSplitter', () => {
  test('one setting: warmed up on one image, measured on a batch, decides once, logs it, and holds the limit', () => {
    const { splitter, choices } = recordingSplitter({ cores: 2, intraOpSettings: [2], batches: 2 });
    assert.equal(splitter.decodes.limit, 2, 'every core until it knows');
    assert.equal(splitter.infers.limit, 1, 'runs one at a time while measuring');
    assert.equal(splitter.inPhases, true, 'in turns while measuring: no decode beside an inference');
    for (const ms of [50, 52, 48, 400]) splitter.recordDecode(ms); // the 400: a decode that waited
    const t = splitter.nextIntraOpThreads();
    assert.equal(splitter.warmUpDue('cpu', t), true, 'a cold setting is warmed up first');
    splitter.recordWarmUp(t);
    assert.equal(splitter.warmUpDue('cpu', t), false, 'once');
    splitter.recordBatch('cpu', 4, 430, t);
    assert.equal(choices.length, 0, 'two batches asked for');
    splitter.recordBatch('cpu', 4, 430, splitter.nextIntraOpThreads());
    assert.equal(choices.length, 1);
    assert.equal(splitter.measuredBatches, 2, 'no batch spent on the warm-up');
    const [split, measured] = choices[0]!;
    assert.equal(measured.decodeMsPerImage, 52, 'the median decode');
    assert.deepEqual(measured.inference, [{ intraOpThreads: 2, msPerImage: 107.5 }]);
    assertSplit(split, { mode: 'phases', decodeConcurrency: 2 });
    assert.equal(splitter.decodes.limit, 2);
    assert.equal(splitter.infers.limit, Infinity);
    assert.equal(splitter.inPhases, true, 'phases were chosen');
    splitter.recordBatch('cpu', 4, 10, 2);
    splitter.recordDecode(1);
    assert.equal(choices.length, 1, 'decided once');
  });

  test('several settings: batches take turns, each warmed up then measured once, the best one is kept', () => {
    // 2 cores, the ResNet-50-shaped model, 256x256 JPEGs: D 4 ms; one intra-op thread 160 ms per image, two
    // 95 ms. Phases at 2: 1000 / (2 + 95) = 10.3 items/s; at 1: 6.2; overlap at 1: min(6.25, 1000 / 4): 6.25.
    const { splitter, choices } = recordingSplitter({ cores: 2, intraOpSettings: [2, 1] });
    const perImage: Record<number, number> = { 2: 95, 1: 160 };
    const turns: number[] = [];
    for (let batch = 0; batch < 2; batch++) {
      for (let i = 0; i < 16; i++) splitter.recordDecode(4);
      const t = splitter.nextIntraOpThreads();
      turns.push(t);
      assert.equal(splitter.warmUpDue('cpu', t), true);
      splitter.recordWarmUp(t); // (the warm-up's time is never reported: a slow one cannot skew the choice)
      splitter.recordBatch('cpu', 16, 16 * perImage[t]!, t);
    }
    assert.deepEqual(turns, [2, 1], 'in turns');
    assert.equal(choices.length, 1, 'decided after one measured batch at each setting');
    const [split, measured] = choices[0]!;
    assert.deepEqual(measured.inference, [
      { intraOpThreads: 2, msPerImage: 95 },
      { intraOpThreads: 1, msPerImage: 160 },
    ]);
    assertSplit(split, { mode: 'phases', intraOpThreads: 2, decodeConcurrency: 2, predictedItemsPerSec: 1000 / 97 });
    assert.equal(splitter.nextIntraOpThreads(), 2, 'every later batch at the chosen setting');
    assert.equal(splitter.warmUpDue('cpu', 1), false, 'nothing to warm up once decided');

    // The same model where decode is dear (camera photos, D 60 ms) and two threads gain little (I(2) 140):
    // phases at 2: 1000 / (30 + 140) = 5.9; overlap at 1, decoding on the other core: min(6.25, 16.7): 6.25.
    const dear = splitOf(2, 60, [
      [2, 140],
      [1, 160],
    ]);
    assertSplit(dear, { mode: 'overlap', intraOpThreads: 1, decodeConcurrency: 1, predictedItemsPerSec: 6.25 });
  });

  test('a setting whose warm-up did not run (or failed): its first batch is the warm-up, not counted', () => {
    const { splitter, choices } = recordingSplitter({ cores: 2, intraOpSettings: [2, 1] });
    splitter.recordDecode(4);
    const perImage: Record<number, number> = { 2: 95, 1: 160 };
    const turns: number[] = [];
    for (let batch = 0; batch < 3; batch++) {
      const t = splitter.nextIntraOpThreads();
      turns.push(t);
      if (t === 2) splitter.recordWarmUp(t); // 1's warm-up failed: its first batch warms it, slowly
      splitter.recordBatch('cpu', 16, 16 * perImage[t]! * (batch === 1 ? 5 : 1), t);
    }
    assert.deepEqual(turns, [2, 1, 1]);
    assert.equal(choices.length, 1, 'decided once 1 had a batch counted');
    assert.deepEqual(choices[0]![1].inference, [
      { intraOpThreads: 2, msPerImage: 95 },
      { intraOpThreads: 1, msPerImage: 160 },
    ]);
  });

  test('on a GPU it decides at the first batch, with no warm-up: every core, the sessions’ own setting', () => {
    const { splitter, choices } = recordingSplitter({ cores: 3, intraOpSettings: [3, 2, 1] });
    splitter.recordDecode(30);
    const t = splitter.nextIntraOpThreads();
    assert.equal(splitter.warmUpDue('cuda', t), false);
    splitter.recordBatch('cuda', 8, 5, t);
    assert.equal(choices.length, 1);
    assertSplit(choices[0]![0], { mode: 'overlap', decodeConcurrency: 3 });
    assert.equal(splitter.inPhases, false, 'the next batch decodes while this one infers');
    assert.equal(splitter.nextIntraOpThreads(), 3);
  });
});

describe('ConcurrencyLimit', () => {
  test('runs at most the limit at once, and a new limit applies to the next task', async () => {
    const limit = new ConcurrencyLimit(2);
    let running = 0;
    let most = 0;
    const task = async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
    };
    await Promise.all(Array.from({ length: 8 }, () => limit.run(task)));
    assert.equal(most, 2);
    limit.limit = 1;
    most = 0;
    await Promise.all(Array.from({ length: 4 }, () => limit.run(task)));
    assert.equal(most, 1);
    await assert.rejects(
      limit.run(() => Promise.reject(new Error('boom'))),
      /boom/,
    );
    await limit.run(task); // a failed task released its place
  });
});
