/**
 * A mirror bake's counts across restarts of the process that counts (the aks front, the local gateway): the
 * bake keeps the last reading of each run (epoch) and adds them up, so a candidate that disagreed before a
 * restart is still kept off after it, and the pairs required count every run's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  MIRROR_KEPT_DISAGREEMENTS,
  describeMirror,
  mergeMirrorReports,
  mirrorRefusal,
  observeMirror,
} from '../../src/shared/mirror-types';
import type { MirrorDisagreement, MirrorReport } from '../../src/shared/mirror-types';

const request = { percent: 100, compare: { mode: 'top1' as const }, minAgreement: 0.99, minPairs: 20 };

function reading(epoch: string | undefined, pairs: number, agreed: number, more: Partial<MirrorReport> = {}) {
  const disagreements: MirrorDisagreement[] = [];
  for (let i = agreed; i < pairs && disagreements.length < MIRROR_KEPT_DISAGREEMENTS; i++) {
    disagreements.push({
      requestId: `${epoch}-${i}`,
      why: 'top label "red" vs "blue"',
      serving: '200 a',
      candidate: '200 b',
    });
  }
  return {
    id: 'm',
    ...(epoch !== undefined ? { epoch } : {}),
    pairs,
    agreed,
    dropped: 0,
    failed: 0,
    skipped: 0,
    disagreements,
    ...more,
  } satisfies MirrorReport;
}

/** The bake's loop over readings, as mirror-bake.ts runs it. */
function bake(readings: MirrorReport[]): MirrorReport {
  let runs: MirrorReport[] = [];
  for (const r of readings) runs = observeMirror(runs, r);
  return mergeMirrorReports('m', runs);
}

test('a restart mid-bake: the run before it keeps its last reading, and its disagreements keep the candidate off', () => {
  // Run a disagreed on 10 of its 12 pairs, then restarted (run b counts from zero) and agreed on all 30 after.
  const total = bake([reading('a', 4, 1), reading('a', 12, 2), reading('b', 5, 5), reading('b', 30, 30)]);
  assert.equal(total.pairs, 42);
  assert.equal(total.agreed, 32);
  assert.equal(total.runs, 2);
  assert.deepEqual(
    total.disagreements.map((d) => d.requestId),
    ['a-2', 'a-3', 'a-4', 'a-5', 'a-6'],
    'the earliest disagreements are the ones kept, the pre-restart run first',
  );
  const refusal = mirrorRefusal(total, request)!;
  assert.match(refusal, /agreed on 32 of 42 pair\(s\) \(76\.2%/);
  assert.match(refusal, /\[a-2\] top label "red" vs "blue"/);
  // The post-restart run alone would have been promoted: the defect this guards against.
  assert.equal(mirrorRefusal(bake([reading('b', 30, 30)]), request), undefined);
  assert.match(describeMirror(total), /added up over 2 runs of the mirror's process \(it restarted 1 time\(s\); pairs/);
});

test("the pairs required count every run's pairs; dropped, failed and skipped add up too", () => {
  const a = reading('a', 12, 12, { dropped: 2, failed: 0, skipped: 1 });
  const b = reading('b', 9, 9, { dropped: 1, skipped: 2 });
  const total = bake([a, b]);
  assert.deepEqual([total.pairs, total.agreed, total.dropped, total.skipped, total.runs], [21, 21, 3, 3, 2]);
  assert.equal(mirrorRefusal(total, request), undefined, '21 pairs over two runs meet --min-pairs 20');
  assert.match(mirrorRefusal(bake([b]), request)!, /only 9 pair\(s\)/);
});

test('the worst difference is the largest of any run, and a run without one leaves it', () => {
  const total = bake([
    reading('a', 3, 3, { maxDifference: 0.004 }),
    reading('b', 3, 3),
    reading('c', 3, 3, { maxDifference: 0.0007 }),
  ]);
  assert.equal(total.maxDifference, 0.004);
  assert.equal(total.runs, 3);
  assert.equal(bake([reading('a', 3, 3)]).maxDifference, undefined);
});

test('one run read again: the later reading replaces the earlier one, never added twice; a smaller one is ignored', () => {
  const total = bake([reading('a', 5, 5), reading('a', 9, 8), reading('a', 7, 7)]);
  assert.deepEqual([total.pairs, total.agreed, total.runs, total.epoch], [9, 8, undefined, 'a']);
  assert.equal(describeMirror(total), '9 pair(s) compared, 88.9% agree, 0 dropped');
});

test("a reading of several processes at once (an aks front rolling) keeps each one's run", () => {
  const old = reading('old', 10, 6);
  const both = { ...mergeMirrorReports('m', [old, reading('new', 2, 2)]), parts: [old, reading('new', 2, 2)] };
  // The old pod goes; the new one alone is read after: the old one's count stays.
  const total = bake([reading('old', 8, 5), both, reading('new', 15, 15)]);
  assert.deepEqual([total.pairs, total.agreed, total.runs], [25, 21, 2]);
  assert.deepEqual(
    total.disagreements.map((d) => d.requestId),
    ['old-6', 'old-7', 'old-8', 'old-9'],
  );
});

test('readings without an epoch (a process older than epochs) behave as before: the latest stands alone', () => {
  assert.deepEqual(bake([reading(undefined, 10, 3), reading(undefined, 4, 4)]), {
    ...reading(undefined, 4, 4),
  });
  // Once the process has epochs, the epoch-less reading goes: it was the same count, read under its old shape.
  const total = bake([reading(undefined, 10, 3), reading('a', 12, 5)]);
  assert.deepEqual([total.pairs, total.agreed, total.runs], [12, 5, undefined]);
});

test('observeMirror leaves its input alone (the bake keeps it between readings)', () => {
  const runs = [reading('a', 3, 3)];
  const copy = structuredClone(runs);
  observeMirror(runs, reading('a', 5, 5));
  observeMirror(runs, reading('b', 1, 1));
  assert.deepEqual(runs, copy);
});
