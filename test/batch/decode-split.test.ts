/**
 * The decode split (src/batch/decode-split.ts) on measured inputs: every core decodes where inference is on a
 * GPU or a small share of the work; where both are on the CPU, the thread setting with the best predicted
 * rate is kept and decode gets only the concurrency that feeds it. The splitter decides once, from its first
 * batches after a warm-up one, and holds the limit it chose. (The real worker logs the choice:
 * test/workflows/batch-decode-split.test.ts.)
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
    assert.equal(split.decodeConcurrency, 4);
    assert.equal(split.inferenceShare, 0);
    assert.equal(split.predictedItemsPerSec, 100);
    assert.match(split.reason, /inference runs on cuda: decode on every core/);
  });

  test('decoding on every core uses every decode slot; feeding inference stays within the cores', () => {
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
    const heavy = chooseDecodeSplit({
      cores: 2,
      decodeSlots: 4,
      executionProvider: 'cpu',
      decodeMsPerImage: 5000,
      inference: [{ intraOpThreads: 1, msPerImage: 2000 }],
    });
    assert.equal(heavy.decodeConcurrency, 2);
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
    assert.equal(split.decodeConcurrency, 2);
    assert.ok(split.inferenceShare < 0.05);
    assert.match(split.reason, /inference is 2% of the CPU work: decode on every core/);
  });

  test('a ResNet-50-shaped model on 2 cores (the figures of issue #28): one decode at a time feeds it', () => {
    // D 50 ms; bare inference 9.3 items/s with two threads.
    const split = chooseDecodeSplit({
      cores: 2,
      executionProvider: 'cpu',
      decodeMsPerImage: 50,
      inference: [{ intraOpThreads: 2, msPerImage: 107.5 }],
    });
    assert.equal(split.intraOpThreads, 2);
    // C / (D + C·I) = 2000 / 265 = 7.55 items/s; 7.55 × 50 ms = 0.38 of a core decoding.
    assert.ok(Math.abs(split.predictedItemsPerSec - 2000 / 265) < 1e-9);
    assert.equal(split.decodeConcurrency, 1);
    assert.ok(split.inferenceShare > 0.8);
  });

  test('of several thread settings, the one with the best predicted rate; ties keep the first', () => {
    const base: SplitInputs = { cores: 8, executionProvider: 'cpu', decodeMsPerImage: 40, inference: [] };
    const split = chooseDecodeSplit({
      ...base,
      inference: [
        { intraOpThreads: 8, msPerImage: 12 }, // 8000 / 136 = 58.8, 1000 / 12 = 83: 58.8
        { intraOpThreads: 4, msPerImage: 20 }, // 8000 / 120 = 66.7, 50: 50
        { intraOpThreads: 6, msPerImage: 14 }, // 8000 / 124 = 64.5, 71.4: 64.5
      ],
    });
    assert.equal(split.intraOpThreads, 6);
    // 64.5 items/s × 40 ms = 2.6: three decodes at once.
    assert.equal(split.decodeConcurrency, 3);
    const tie = chooseDecodeSplit({
      ...base,
      inference: [
        { intraOpThreads: 2, msPerImage: 10 },
        { intraOpThreads: 2, msPerImage: 10 },
      ],
    });
    assert.equal(tie.intraOpThreads, 2);
  });

  test('decode concurrency stays within 1 and the cores', () => {
    const slowDecode = chooseDecodeSplit({
      cores: 2,
      executionProvider: 'cpu',
      decodeMsPerImage: 5000,
      inference: [{ intraOpThreads: 1, msPerImage: 2000 }],
    });
    // 0.29 items/s × 5 s of decode each: more than the 2 cores, capped at 2.
    assert.equal(slowDecode.decodeConcurrency, 2);
    const cheap = chooseDecodeSplit({
      cores: 3,
      executionProvider: 'cpu',
      decodeMsPerImage: 0,
      inference: [{ intraOpThreads: 3, msPerImage: 100 }],
    });
    assert.equal(cheap.decodeConcurrency, 1);
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
    for (const ms of [50, 52, 48, 400]) splitter.recordDecode(ms); // the 400: a decode that waited
    splitter.recordBatch('cpu', 4, 4000, splitter.nextIntraOpThreads()); // warm-up: not counted
    splitter.recordBatch('cpu', 4, 430, splitter.nextIntraOpThreads());
    assert.equal(choices.length, 0);
    splitter.recordBatch('cpu', 4, 430, splitter.nextIntraOpThreads());
    assert.equal(choices.length, 1);
    const [split, measured] = choices[0]!;
    assert.equal(measured.decodeMsPerImage, 52, 'the median decode');
    assert.deepEqual(measured.inference, [{ intraOpThreads: 2, msPerImage: 107.5 }]);
    assert.equal(split.decodeConcurrency, 1);
    assert.equal(splitter.decodes.limit, 1);
    assert.equal(splitter.infers.limit, Infinity);
    splitter.recordBatch('cpu', 4, 10, 2);
    splitter.recordDecode(1);
    assert.equal(choices.length, 1, 'decided once');
  });

  test('several settings: batches take turns, each setting is measured, the best one is kept', () => {
    // Measured on this machine's kind (2 cores, the ResNet-50-shaped model, 256x256 JPEGs): D 4 ms; one
    // intra-op thread 160 ms per image, two 95 ms. Work per image: 4 + 160 = 164 core-ms (12.2 items/s on
    // 2 cores, at most 6.25 from one session) against 4 + 2 x 95 = 194 (10.3, at most 10.5): two threads.
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
    assert.equal(split.intraOpThreads, 2);
    assert.ok(Math.abs(split.predictedItemsPerSec - 2000 / 194) < 1e-9);
    assert.equal(split.decodeConcurrency, 1);
    assert.equal(splitter.nextIntraOpThreads(), 2, 'every later batch at the chosen setting');

    // The same model where decode is dear (camera photos, D 60 ms) and two threads gain little (I(2) 140):
    // 60 + 160 = 220 core-ms (9.1 items/s, at most 6.25) against 60 + 280 = 340 (5.9, at most 7.1): one thread.
    const dear = chooseDecodeSplit({
      cores: 2,
      executionProvider: 'cpu',
      decodeMsPerImage: 60,
      inference: measured.inference.map((m) => (m.intraOpThreads === 2 ? { ...m, msPerImage: 140 } : m)),
    });
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
