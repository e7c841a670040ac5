/**
 * The autoscaling rule (src/shared/autoscale-decision.ts) on its own: the HPA's ceil(current × observed /
 * target) with its tolerance, the bounds, up at once, down only once the scale-down window holds nothing
 * higher, and a reading that could not be taken holding the count.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { decideReplicas } from '../../src/shared/autoscale-decision';
import type { AutoscaleInput, LoadReading, Recommendation } from '../../src/shared/autoscale-types';

const settings: AutoscaleInput = {
  minReplicas: 1,
  maxReplicas: 3,
  targetConcurrency: 2,
  periodSeconds: 15,
  scaleUpWindowSeconds: 0,
  scaleDownWindowSeconds: 300,
  tolerance: 0.1,
};

function reading(meanInFlight: number): LoadReading {
  return { samples: 75, meanInFlight, maxInFlight: Math.ceil(meanInFlight), requests: 40, seconds: 15 };
}

const T0 = Date.parse('2026-12-06T12:00:00Z');

test('up at once to ceil(current × observed / target), capped at --max-replicas', () => {
  const up = decideReplicas(settings, 1, reading(5), [], T0);
  assert.equal(up.decision.recommended, 3);
  assert.equal(up.decision.to, 3);
  assert.equal(up.decision.perReplica, 5);
  assert.match(up.decision.reason, /5 in flight \(5 per replica, target 2.*ceil\(1 × 5 \/ 2\) = 3\); scale up 1 → 3/);
  const capped = decideReplicas(settings, 1, reading(12), [], T0);
  assert.equal(capped.decision.to, 3);
  assert.match(capped.decision.reason, /= 6, capped at --max-replicas 3/);
});

test('within the tolerance nothing changes; floating point does not add a replica', () => {
  const near = decideReplicas(settings, 3, reading(6.5), [], T0); // 2.17 per replica: 8 % over
  assert.equal(near.decision.to, 3);
  assert.match(near.decision.reason, /within the 10% tolerance.*hold 3/);
  const exact = decideReplicas(
    { ...settings, targetConcurrency: 0.2, maxReplicas: 10, tolerance: 0 },
    1,
    reading(0.6),
    [],
    T0,
  );
  assert.equal(exact.decision.recommended, 3);
});

test('down only after the scale-down window: the highest recommendation in it wins', () => {
  let recs: Recommendation[] = decideReplicas(settings, 1, reading(6), [], T0).recommendations;
  // Quiet from now on: recommendations of 1, but the 3 from T0 is in the window for 300 s.
  for (let s = 15; s < 300; s += 15) {
    const r = decideReplicas(settings, 3, reading(0), recs, T0 + s * 1000);
    assert.equal(r.decision.to, 3, `still 3 at ${s}s`);
    assert.equal(r.decision.recommended, 1);
    assert.match(r.decision.reason, /hold 3: the 300s scale-down window recommended 3 or more/);
    recs = r.recommendations;
  }
  const down = decideReplicas(settings, 3, reading(0), recs, T0 + 301_000);
  assert.equal(down.decision.to, 1);
  assert.match(down.decision.reason, /scale down 3 → 1/);
  assert.ok(
    down.recommendations.every((r) => r.atMs > T0),
    'recommendations older than the window are dropped',
  );
});

test('a scale-up window takes the lowest recommendation in it', () => {
  const slowUp = { ...settings, maxReplicas: 5, scaleUpWindowSeconds: 30 };
  const first = decideReplicas(slowUp, 1, reading(2), [], T0); // recommends 1
  const second = decideReplicas(slowUp, 1, reading(8), first.recommendations, T0 + 15_000); // recommends 4
  assert.equal(second.decision.recommended, 4);
  assert.equal(second.decision.to, 1);
  const third = decideReplicas(slowUp, 1, reading(8), second.recommendations, T0 + 31_000);
  assert.equal(third.decision.to, 4);
});

test('min 0 (scale to zero) still keeps one replica while warm; unread counters hold', () => {
  const zero = decideReplicas({ ...settings, minReplicas: 0, scaleDownWindowSeconds: 0 }, 2, reading(0), [], T0);
  assert.equal(zero.decision.to, 1);
  assert.match(zero.decision.reason, /raised to the floor of 1/);
  const unread = decideReplicas(settings, 2, { ...reading(0), samples: 0 }, [], T0);
  assert.equal(unread.decision.to, 2);
  assert.match(unread.decision.reason, /could not be read: holding 2/);
});
