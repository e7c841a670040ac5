/** When a mirror rollout's candidate is kept off: too few pairs, or too little agreement (naming the disagreements). */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { describeMirror, mirrorRefusal } from '../../src/shared/mirror-types';
import type { MirrorReport } from '../../src/shared/mirror-types';

const request = { percent: 100, compare: { mode: 'top1' as const }, minAgreement: 0.99, minPairs: 20 };
const report = (pairs: number, agreed: number, dropped = 0): MirrorReport => ({
  id: 'm',
  pairs,
  agreed,
  dropped,
  failed: 0,
  skipped: 0,
  disagreements:
    pairs > agreed
      ? [{ requestId: 'req-7', why: 'top label "red" vs "blue"', serving: '200 a', candidate: '200 b' }]
      : [],
});

test('too few pairs is a refusal that says how to get more, and counts the dropped copies', () => {
  assert.match(mirrorRefusal(report(5, 5, 3), request)!, /only 5 pair\(s\).*20 needed; 3 dropped.*lengthen --bake/);
});

test('agreement under the threshold names the first disagreements; at it, promoted', () => {
  const refusal = mirrorRefusal(report(100, 98), request)!;
  assert.match(refusal, /agreed on 98 of 100 pair\(s\) \(98\.0%, under the 99\.0% required\)/);
  assert.match(refusal, /\[req-7\] top label "red" vs "blue": serving 200 a \| candidate 200 b/);
  assert.equal(mirrorRefusal(report(100, 99), request), undefined);
  assert.equal(describeMirror(report(100, 99)), '100 pair(s) compared, 99.0% agree, 0 dropped');
});
