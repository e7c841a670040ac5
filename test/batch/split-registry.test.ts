/**
 * A worker's decode splits (src/batch/split-registry.ts): one per model, spec and provider, kept for the
 * process's lifetime. The first shards of a model measure in their first batches; a later shard of the same
 * model starts with the chosen split and does no measurement batch (every batch at the chosen intra-op
 * setting), its rows each written once, in order; another model, spec or provider measures its own; every
 * splitter takes turns through the process's one gate. (The worker's log line for a reused split:
 * test/workflows/batch-decode-split.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { DecodeSplit } from '../../src/batch/decode-split';
import { MAX_SPLITS, SplitRegistry, splitKey } from '../../src/batch/split-registry';
import type { SplitSubject } from '../../src/batch/split-registry';
import type { Classifier } from '../../src/scoring/classifier';
import { scoreSplitShard, splitShardsSuite } from '../helpers/split-shards';

const SHARD = 12;
const BATCH = 2;

describe('SplitRegistry', () => {
  const s = splitShardsSuite(2 * SHARD);

  const subjectOf = (c: Classifier): SplitSubject => ({
    modelDigest: c.info.digest,
    preprocess: c.info,
    executionProvider: 'cpu',
  });

  test('one split per model, spec and provider; kept once chosen; one gate for all', () => {
    const registry = new SplitRegistry({ cores: 2, intraOpSettings: [2] });
    const subject = subjectOf(s.classifier);
    const first = registry.for(subject);
    assert.equal(first.reused, false, 'nothing chosen yet: it measures');
    assert.equal(registry.for(subject).splitter, first.splitter, 'a shard beside it shares the measurement');
    first.splitter.recordDecode(5);
    first.splitter.recordWarmUp(2);
    first.splitter.recordBatch('cpu', 2, 20, 2);
    assert.ok(first.splitter.chosen);
    const again = registry.for(subject);
    assert.equal(again.splitter, first.splitter);
    assert.equal(again.reused, true);
    assert.equal(again.key, splitKey(subject));

    const others: SplitSubject[] = [
      { ...subject, modelDigest: 'sha256:other' },
      { ...subject, preprocess: { ...s.classifier.info, width: 32, height: 32 } },
      {
        ...subject,
        preprocess: { ...s.classifier.info, decode: s.classifier.info.decode === 'exact' ? 'fast' : 'exact' },
      },
      { ...subject, executionProvider: 'cuda' },
    ];
    for (const other of others) {
      const split = registry.for(other);
      assert.notEqual(split.key, first.key);
      assert.notEqual(split.splitter, first.splitter);
      assert.equal(split.reused, false, 'another model, spec or provider measures its own');
      assert.equal(split.splitter.gate, registry.gate, 'the process’s one gate');
    }
    assert.equal(first.splitter.gate, registry.gate);
    // What a split does not depend on: the model's path and labels.
    const elsewhere = { ...s.classifier.info, path: '/elsewhere', labels: ['x'] };
    assert.equal(splitKey({ ...subject, preprocess: elsewhere }), first.key);
  });

  test('at most MAX_SPLITS subjects; the least recently used one is forgotten', () => {
    const registry = new SplitRegistry({ cores: 2, intraOpSettings: [2] });
    const subject = (n: number): SplitSubject => ({ ...subjectOf(s.classifier), modelDigest: `sha256:${n}` });
    const kept = registry.for(subject(0)).splitter;
    const one = registry.for(subject(1)).splitter;
    for (let n = 2; n <= MAX_SPLITS; n++) {
      registry.for(subject(0)); // used again: the most recent
      registry.for(subject(n));
    }
    assert.equal(registry.for(subject(0)).splitter, kept, 'used recently: kept');
    assert.notEqual(registry.for(subject(1)).splitter, one, 'the least recently used: forgotten, then measured anew');
  });

  test('a later shard of the same model starts with the chosen split: no measurement batch; rows once each', async () => {
    const choices: DecodeSplit[] = [];
    const registry = new SplitRegistry({
      cores: 2,
      decodeSlots: 4,
      intraOpSettings: [2, 1],
      onChoice: (split) => choices.push(split),
    });
    // Which intra-op setting each real inference of a batch ran at (and each one-image warm-up's).
    const settings: number[] = [];
    const warmUps: number[] = [];
    const infer = s.classifier.infer.bind(s.classifier);
    s.classifier.infer = (batch, at) => {
      (batch.length === 1 ? warmUps : settings).push(at?.intraOpThreads ?? 0);
      return infer(batch, at);
    };
    const shard = async (n: number) => {
      const split = registry.for(subjectOf(s.classifier));
      const measuredBefore = split.splitter.measuredBatches;
      settings.length = 0;
      warmUps.length = 0;
      const { rows, checkpoints } = await scoreSplitShard(s, split.splitter, { n, size: SHARD, batchSize: BATCH });
      assert.deepEqual(
        rows.map((r) => r.index),
        Array.from({ length: SHARD }, (_, i) => n * SHARD + i),
        `shard ${n}: every row once, in input order`,
      );
      assert.equal(checkpoints.at(-1)?.itemsDone, SHARD);
      return {
        reused: split.reused,
        measured: split.splitter.measuredBatches - measuredBefore,
        settings: [...settings],
        warmUps: [...warmUps],
      };
    };

    const first = await shard(0);
    assert.equal(first.reused, false);
    // A one-image warm-up and a measured batch at each of the two settings, in turns; then the chosen one.
    assert.equal(first.measured, 2);
    assert.deepEqual(first.warmUps, [2, 1]);
    assert.deepEqual(first.settings.slice(0, 2), [2, 1]);
    assert.equal(choices.length, 1);
    const chosen = choices[0]!.intraOpThreads!;

    const second = await shard(1);
    assert.equal(second.reused, true, 'the second shard on the worker reuses the split');
    assert.equal(second.measured, 0, 'and does no measurement batch');
    assert.deepEqual(second.warmUps, [], 'nor a warm-up');
    assert.deepEqual(
      second.settings,
      Array.from({ length: SHARD / BATCH }, () => chosen),
      'every batch at the chosen setting',
    );
    assert.equal(choices.length, 1, 'chosen once');
  });
});
