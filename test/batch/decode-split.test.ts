/**
 * The decode split (src/batch/decode-split.ts) on measured inputs: every core decodes where inference is on a
 * GPU or a small share of the work; where both are on the CPU, the thread setting with the best predicted
 * rate is kept and decode gets only the concurrency that feeds it. The splitter decides once, from its first
 * batches after a warm-up one, and holds the limit it chose. (The real worker logs the choice:
 * test/workflows/batch-decode-split.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ConcurrencyLimit, DecodeSplitter, chooseDecodeSplit } from '../../src/batch/decode-split';
import type { DecodeSplit, SplitInputs } from '../../src/batch/decode-split';

describe('chooseDecodeSplit', () => {
  test('inference on a GPU: decode on every core, the limit C / D', () => {
    const split = chooseDecodeSplit({ cores: 4, executionProvider: 'cuda', decodeMsPerImage: 40, inference: [] });
    assert.equal(split.decodeConcurrency, 4);
    assert.equal(split.inferenceShare, 0);
    assert.equal(split.predictedItemsPerSec, 100);
    assert.match(split.reason, /inference runs on cuda: decode on every core/);
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

describe('DecodeSplitter', () => {
  test('measures after a warm-up batch, decides once, logs it, and holds the limit', () => {
    const choices: Array<[DecodeSplit, SplitInputs]> = [];
    const splitter = new DecodeSplitter({
      cores: 2,
      intraOpThreads: 2,
      batches: 2,
      onChoice: (split, measured) => choices.push([split, measured]),
    });
    assert.equal(splitter.decodes.limit, 2, 'every core until it knows');
    for (const ms of [50, 52, 48, 400]) splitter.recordDecode(ms); // the 400: a decode that waited
    splitter.recordBatch('cpu', 4, 4000); // warm-up: not counted
    splitter.recordBatch('cpu', 4, 430);
    assert.equal(choices.length, 0);
    splitter.recordBatch('cpu', 4, 430);
    assert.equal(choices.length, 1);
    const [split, measured] = choices[0]!;
    assert.equal(measured.decodeMsPerImage, 52, 'the median decode');
    assert.deepEqual(measured.inference, [{ intraOpThreads: 2, msPerImage: 107.5 }]);
    assert.equal(split.decodeConcurrency, 1);
    assert.equal(splitter.decodes.limit, 1);
    splitter.recordBatch('cpu', 4, 10);
    splitter.recordDecode(1);
    assert.equal(choices.length, 1, 'decided once');
  });

  test('on a GPU it decides at the first batch: every core', () => {
    const choices: DecodeSplit[] = [];
    const splitter = new DecodeSplitter({ cores: 3, intraOpThreads: 3, onChoice: (s) => choices.push(s) });
    splitter.recordDecode(30);
    splitter.recordBatch('cuda', 8, 5);
    assert.equal(choices.length, 1);
    assert.equal(choices[0]!.decodeConcurrency, 3);
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
