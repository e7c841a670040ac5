/**
 * The decode split (src/batch/decode-split.ts) on measured inputs: every core decodes, overlapping inference,
 * where inference is on a GPU or a small share of the work; where both are on the CPU, the mode and thread
 * setting with the best predicted rate are kept: "phases" (a batch decodes on every core, then infers with
 * every thread, in turns) or "overlap" (decode on the cores the intra-op threads leave). The splitter runs in
 * phases while it measures (inference with no decode beside it), decides once, from its first batches after a
 * warm-up one, and holds what it chose. (The real worker logs the choice:
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
import type { DecodeSplit, SplitInputs } from '../../src/batch/decode-split';

describe('chooseDecodeSplit', () => {
  test('inference on a GPU: decode on every core, the limit C / D', () => {
    const split = chooseDecodeSplit({ cores: 4, executionProvider: 'cuda', decodeMsPerImage: 40, inference: [] });
    assert.equal(split.mode, 'overlap');
    assert.equal(split.decodeConcurrency, 4);
    assert.equal(split.inferenceShare, 0);
    assert.equal(split.predictedItemsPerSec, 100);
    assert.match(split.reason, /inference runs on cuda: decode on every core while it infers/);
  });

  test('decoding on every core (overlap beside a GPU or a tiny model, or in phases) uses every decode slot', () => {
    // 2 cores, libuv's default pool of 4: a decode also waits (its read, its hops to the main thread).
    const gpu = chooseDecodeSplit({
      cores: 2,
      decodeSlots: 4,
      executionProvider: 'cuda',
      decodeMsPerImage: 30,
      inference: [],
    });
    assert.equal(gpu.decodeConcurrency, 4);
    assert.ok(Math.abs(gpu.predictedItemsPerSec - 2000 / 30) < 1e-9, 'the limit is still C / D');
    const tiny = chooseDecodeSplit({
      cores: 2,
      decodeSlots: 4,
      executionProvider: 'cpu',
      decodeMsPerImage: 30,
      inference: [{ intraOpThreads: 2, msPerImage: 0.3 }],
    });
    assert.equal(tiny.decodeConcurrency, 4);
    assert.equal(tiny.mode, 'overlap');
    const heavy = chooseDecodeSplit({
      cores: 2,
      decodeSlots: 4,
      executionProvider: 'cpu',
      decodeMsPerImage: 5000,
      inference: [{ intraOpThreads: 1, msPerImage: 2000 }],
    });
    // Inference 29% of the work: every core decodes beside it, 2000 / 7000 = 0.29 items/s (against 0.2
    // decoding only on the one core a thread leaves).
    assert.equal(heavy.mode, 'overlap');
    assert.equal(heavy.decodeConcurrency, 4);
    const heavier = chooseDecodeSplit({
      cores: 2,
      decodeSlots: 4,
      executionProvider: 'cpu',
      decodeMsPerImage: 1000,
      inference: [{ intraOpThreads: 2, msPerImage: 2000 }],
    });
    assert.equal(heavier.mode, 'phases');
    assert.equal(heavier.decodeConcurrency, 4);
    const choices: SplitInputs[] = [];
    const splitter = new DecodeSplitter({
      cores: 2,
      decodeSlots: 4,
      intraOpSettings: [2],
      onChoice: (_, measured) => choices.push(measured),
    });
    assert.equal(splitter.decodes.limit, 4, 'every slot until it knows');
    // Four decodes at once on two cores took twice as long each: what one costs on a core is half that.
    for (const ms of [60, 62, 58]) splitter.recordDecode(ms, 4);
    splitter.recordBatch('cpu', 4, 40, 2);
    splitter.recordBatch('cpu', 4, 40, 2);
    assert.equal(choices[0]?.decodeMsPerImage, 30);
  });

  test('a tiny model on the CPU (inference a small share): decode on every core', () => {
    const split = chooseDecodeSplit({
      cores: 2,
      executionProvider: 'cpu',
      decodeMsPerImage: 50,
      inference: [{ intraOpThreads: 2, msPerImage: 0.5 }],
    });
    assert.equal(split.mode, 'overlap');
    assert.equal(split.decodeConcurrency, 2);
    assert.ok(split.inferenceShare < 0.05);
    assert.match(split.reason, /inference is 2% of the CPU work: decode on every core while it infers/);
  });

  test('a ResNet-50-shaped model on 2 cores (the figures of issue #28): phases, at the sum-of-parts limit', () => {
    // D 50 ms; bare inference 9.3 items/s with two threads, the only setting: overlapping would take one of
    // its two cores from it.
    const split = chooseDecodeSplit({
      cores: 2,
      executionProvider: 'cpu',
      decodeMsPerImage: 50,
      inference: [{ intraOpThreads: 2, msPerImage: 107.5 }],
    });
    assert.equal(split.mode, 'phases');
    assert.equal(split.intraOpThreads, 2);
    // 1 / (D / C + I) = C / (D + C·I) = 2000 / 265 = 7.55 items/s.
    assert.ok(Math.abs(split.predictedItemsPerSec - 2000 / 265) < 1e-9);
    assert.equal(split.decodeConcurrency, 2, 'a batch decodes on every core');
    assert.ok(split.inferenceShare > 0.8);
    assert.match(
      split.reason,
      /inference is 81% of the CPU work: decode a batch on every core, then infer it with 2 intra-op thread\(s\), in turns/,
    );
  });

  test('camera photos, ResNet-50-shaped, measured alone: phases; the same measured beside a decode: overlap', () => {
    // bench/results/decode-2026-12-06T20-12-fast.md: D 48 core-ms, bare onnxruntime 45.5 ms/image at 2
    // threads; one thread about 85.
    const alone = chooseDecodeSplit({
      cores: 2,
      decodeSlots: 4,
      executionProvider: 'cpu',
      decodeMsPerImage: 48,
      inference: [
        { intraOpThreads: 2, msPerImage: 45.5 },
        { intraOpThreads: 1, msPerImage: 85 },
      ],
    });
    // Phases at 2: 1000 / (24 + 45.5) = 14.4 items/s; overlap at 1: min(1000 / 85, 1000 / 48) = 11.8.
    assert.equal(alone.mode, 'phases');
    assert.equal(alone.intraOpThreads, 2);
    assert.equal(alone.decodeConcurrency, 4);
    assert.ok(Math.abs(alone.predictedItemsPerSec - 1000 / 69.5) < 1e-9);
    // What the worker measured when a decode ran beside each inference (the same run's log: 115.8 and 101.3
    // ms/image, D 59.2): phases look worse than they are, and it kept one thread, overlapping, at 9.9 items/s.
    const beside = chooseDecodeSplit({
      cores: 2,
      decodeSlots: 4,
      executionProvider: 'cpu',
      decodeMsPerImage: 59.2,
      inference: [
        { intraOpThreads: 2, msPerImage: 115.8 },
        { intraOpThreads: 1, msPerImage: 101.3 },
      ],
    });
    assert.equal(beside.mode, 'overlap');
    assert.equal(beside.intraOpThreads, 1);
    assert.equal(beside.decodeConcurrency, 1);
    assert.equal(beside.predictedItemsPerSec.toFixed(1), '9.9');
    assert.match(beside.reason, /decode on the 1 core\(s\) that 1 intra-op thread\(s\) leave, while it infers/);
  });

  test('one core: no core is left to overlap on, so phases unless inference is small', () => {
    const heavy = chooseDecodeSplit({
      cores: 1,
      decodeSlots: 4,
      executionProvider: 'cpu',
      decodeMsPerImage: 20,
      inference: [{ intraOpThreads: 1, msPerImage: 40 }],
    });
    assert.equal(heavy.mode, 'phases');
    assert.ok(Math.abs(heavy.predictedItemsPerSec - 1000 / 60) < 1e-9);
    const small = chooseDecodeSplit({ ...heavyInputs(), inference: [{ intraOpThreads: 1, msPerImage: 1 }] });
    assert.equal(small.mode, 'overlap');
    assert.equal(small.decodeConcurrency, 4);
  });

  test('of several thread settings and modes, the best predicted rate; ties keep the first', () => {
    const base: SplitInputs = { cores: 8, executionProvider: 'cpu', decodeMsPerImage: 40, inference: [] };
    const split = chooseDecodeSplit({
      ...base,
      inference: [
        { intraOpThreads: 8, msPerImage: 12 }, // phases 1000 / (5 + 12) = 58.8
        { intraOpThreads: 4, msPerImage: 20 }, // phases 40; overlap min(50, 4000 / 40 = 100) = 50
        { intraOpThreads: 6, msPerImage: 14 }, // phases 52.6; overlap min(71.4, 2000 / 40 = 50) = 50
      ],
    });
    assert.equal(split.mode, 'phases');
    assert.equal(split.intraOpThreads, 8);
    assert.equal(split.decodeConcurrency, 8);
    const tie = chooseDecodeSplit({
      ...base,
      inference: [
        { intraOpThreads: 2, msPerImage: 10 },
        { intraOpThreads: 2, msPerImage: 10 },
      ],
    });
    assert.equal(tie.intraOpThreads, 2);
  });

  test('overlap beside fewer threads: decode gets only what feeds inference; every core where decode binds', () => {
    // 4 cores, D 10: one thread 50 ms/image (20 items/s, fed by 0.2 of a core), four threads hardly faster
    // (49: phases 1000 / (2.5 + 49) = 19.4): one thread, one decode at a time.
    const fed = chooseDecodeSplit({
      cores: 4,
      executionProvider: 'cpu',
      decodeMsPerImage: 10,
      inference: [
        { intraOpThreads: 4, msPerImage: 49 },
        { intraOpThreads: 1, msPerImage: 50 },
      ],
    });
    assert.equal(fed.mode, 'overlap');
    assert.equal(fed.intraOpThreads, 1);
    assert.equal(fed.decodeConcurrency, 1);
    assert.equal(fed.predictedItemsPerSec, 20);
    // Where the cores inference leaves would bound the decode, decoding on every core beside it is at least as
    // fast (D ≥ (C - t)·I means C / (D + t·I) ≥ (C - t) / D), and inference is then under half the work.
    const medium = chooseDecodeSplit({
      cores: 4,
      executionProvider: 'cpu',
      decodeMsPerImage: 100,
      inference: [{ intraOpThreads: 1, msPerImage: 20 }],
    });
    assert.equal(medium.mode, 'overlap');
    assert.equal(medium.decodeConcurrency, 4);
    assert.ok(Math.abs(medium.predictedItemsPerSec - 4000 / 120) < 1e-9);
  });
});

function heavyInputs(): SplitInputs {
  return { cores: 1, decodeSlots: 4, executionProvider: 'cpu', decodeMsPerImage: 20, inference: [] };
}

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
  test('one setting: measures after a warm-up batch, decides once, logs it, and holds the limit', () => {
    const choices: Array<[DecodeSplit, SplitInputs]> = [];
    const splitter = new DecodeSplitter({
      cores: 2,
      intraOpSettings: [2],
      batches: 2,
      onChoice: (split, measured) => choices.push([split, measured]),
    });
    assert.equal(splitter.decodes.limit, 2, 'every core until it knows');
    assert.equal(splitter.infers.limit, 1, 'runs one at a time while measuring');
    assert.equal(splitter.inPhases, true, 'in turns while measuring: no decode beside an inference');
    for (const ms of [50, 52, 48, 400]) splitter.recordDecode(ms); // the 400: a decode that waited
    splitter.recordBatch('cpu', 4, 4000, splitter.nextIntraOpThreads()); // warm-up: not counted
    splitter.recordBatch('cpu', 4, 430, splitter.nextIntraOpThreads());
    assert.equal(choices.length, 0);
    splitter.recordBatch('cpu', 4, 430, splitter.nextIntraOpThreads());
    assert.equal(choices.length, 1);
    const [split, measured] = choices[0]!;
    assert.equal(measured.decodeMsPerImage, 52, 'the median decode');
    assert.deepEqual(measured.inference, [{ intraOpThreads: 2, msPerImage: 107.5 }]);
    assert.equal(split.mode, 'phases');
    assert.equal(split.decodeConcurrency, 2);
    assert.equal(splitter.decodes.limit, 2);
    assert.equal(splitter.infers.limit, Infinity);
    assert.equal(splitter.inPhases, true, 'phases were chosen');
    splitter.recordBatch('cpu', 4, 10, 2);
    splitter.recordDecode(1);
    assert.equal(choices.length, 1, 'decided once');
  });

  test('several settings: batches take turns, each setting is measured, the best one is kept', () => {
    // 2 cores, the ResNet-50-shaped model, 256x256 JPEGs: D 4 ms; one intra-op thread 160 ms per image, two
    // 95 ms. Phases at 2: 1000 / (2 + 95) = 10.3 items/s; at 1: 6.2; overlap at 1: min(6.25, 1000 / 4): 6.25.
    const choices: Array<[DecodeSplit, SplitInputs]> = [];
    const splitter = new DecodeSplitter({
      cores: 2,
      intraOpSettings: [2, 1],
      onChoice: (split, measured) => choices.push([split, measured]),
    });
    const perImage: Record<number, number> = { 2: 95, 1: 160 };
    const turns: number[] = [];
    for (let batch = 0; batch < 4; batch++) {
      for (let i = 0; i < 16; i++) splitter.recordDecode(4);
      const t = splitter.nextIntraOpThreads();
      turns.push(t);
      // The first batch at each setting is slow (the session warms up): not counted.
      splitter.recordBatch('cpu', 16, 16 * perImage[t]! * (batch < 2 ? 3 : 1), t);
    }
    assert.deepEqual(turns, [2, 1, 2, 1], 'in turns');
    assert.equal(choices.length, 1, 'decided after a warm-up and one measured batch at each setting');
    const [split, measured] = choices[0]!;
    assert.deepEqual(measured.inference, [
      { intraOpThreads: 2, msPerImage: 95 },
      { intraOpThreads: 1, msPerImage: 160 },
    ]);
    assert.equal(split.mode, 'phases');
    assert.equal(split.intraOpThreads, 2);
    assert.ok(Math.abs(split.predictedItemsPerSec - 1000 / 97) < 1e-9);
    assert.equal(split.decodeConcurrency, 2);
    assert.equal(splitter.nextIntraOpThreads(), 2, 'every later batch at the chosen setting');

    // The same model where decode is dear (camera photos, D 60 ms) and two threads gain little (I(2) 140):
    // phases at 2: 1000 / (30 + 140) = 5.9; overlap at 1, decoding on the other core: min(6.25, 16.7): 6.25.
    const dear = chooseDecodeSplit({
      cores: 2,
      executionProvider: 'cpu',
      decodeMsPerImage: 60,
      inference: measured.inference.map((m) => (m.intraOpThreads === 2 ? { ...m, msPerImage: 140 } : m)),
    });
    assert.equal(dear.mode, 'overlap');
    assert.equal(dear.intraOpThreads, 1);
    assert.equal(dear.predictedItemsPerSec, 6.25);
    assert.equal(dear.decodeConcurrency, 1);
  });

  test('on a GPU it decides at the first batch: every core, the sessions’ own setting', () => {
    const choices: DecodeSplit[] = [];
    const splitter = new DecodeSplitter({ cores: 3, intraOpSettings: [3, 2, 1], onChoice: (s) => choices.push(s) });
    splitter.recordDecode(30);
    splitter.recordBatch('cuda', 8, 5, splitter.nextIntraOpThreads());
    assert.equal(choices.length, 1);
    assert.equal(choices[0]!.decodeConcurrency, 3);
    assert.equal(choices[0]!.mode, 'overlap');
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
