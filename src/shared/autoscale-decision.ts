/**
 * The autoscaling rule, the Kubernetes HPA's (kubernetes.io, "Horizontal Pod Autoscaling", algorithm
 * details), as a pure function the deploy workflow calls after each reading of the endpoint's counters:
 *
 *   recommended = ceil(current × observed / target), kept at `current` while observed/target is within
 *                 1 ± tolerance, then within [max(1, min), max];
 *   scale up    to the lowest recommendation over the scale-up window (0 s: at once);
 *   scale down  to the highest recommendation over the scale-down window (300 s: after five quiet minutes).
 *
 * `observed` is the mean number of requests in flight (answered or queued) per replica. Deterministic: the
 * caller passes the time.
 */
import type { AutoscaleDecision, AutoscaleInput, LoadReading, Recommendation } from './autoscale-types';

export interface DecisionResult {
  decision: AutoscaleDecision;
  /** The recommendations still inside the longer window, this one included. */
  recommendations: Recommendation[];
}

/** Decides the replicas after one reading taken at `current` replicas, ending at `nowMs`. */
export function decideReplicas(
  a: AutoscaleInput,
  current: number,
  reading: LoadReading,
  earlier: readonly Recommendation[],
  nowMs: number,
): DecisionResult {
  const floor = Math.max(1, a.minReplicas);
  const at = new Date(nowMs).toISOString();
  const base = { at, from: current, reading };
  if (reading.samples === 0) {
    const reason = `the endpoint's counters could not be read: holding ${current} replica(s)`;
    return {
      decision: { ...base, to: current, recommended: current, perReplica: 0, reason },
      recommendations: [...earlier],
    };
  }
  const perReplica = reading.meanInFlight / current;
  const ratio = perReplica / a.targetConcurrency;
  const read = `${round(reading.meanInFlight)} in flight (${round(perReplica)} per replica, target ${a.targetConcurrency}, peak ${reading.maxInFlight}, ${reading.requests} request(s) in ${round(reading.seconds)}s)`;

  let raw: number;
  let rule: string;
  if (Math.abs(ratio - 1) <= a.tolerance) {
    raw = current;
    rule = `within the ${Math.round(a.tolerance * 100)}% tolerance`;
  } else {
    // A hair under a whole number stays that number (0.6 / 0.2 is 2.9999999999999996 in floating point).
    raw = Math.ceil(current * ratio - 1e-9);
    rule = `ceil(${current} × ${round(perReplica)} / ${a.targetConcurrency}) = ${raw}`;
  }
  const recommended = Math.min(a.maxReplicas, Math.max(floor, raw));
  const bound =
    raw > a.maxReplicas
      ? `, capped at --max-replicas ${a.maxReplicas}`
      : raw < floor
        ? `, raised to the floor of ${floor}`
        : '';

  const longest = Math.max(a.scaleUpWindowSeconds, a.scaleDownWindowSeconds) * 1000;
  const recommendations = [...earlier.filter((r) => r.atMs > nowMs - longest), { atMs: nowMs, replicas: recommended }];
  const within = (seconds: number) => recommendations.filter((r) => r.atMs >= nowMs - seconds * 1000);
  const upTo = Math.min(...within(a.scaleUpWindowSeconds).map((r) => r.replicas));
  const downTo = Math.max(...within(a.scaleDownWindowSeconds).map((r) => r.replicas));

  let to = current;
  let outcome: string;
  if (upTo > current) {
    to = upTo;
    outcome = `scale up ${current} → ${to}`;
    if (to < recommended) outcome += ` (the lowest recommendation in the ${a.scaleUpWindowSeconds}s scale-up window)`;
  } else if (downTo < current) {
    to = downTo;
    outcome = `scale down ${current} → ${to}`;
    if (to > recommended)
      outcome += ` (the highest recommendation in the ${a.scaleDownWindowSeconds}s scale-down window)`;
  } else if (recommended > current) {
    outcome = `hold ${current}: the ${a.scaleUpWindowSeconds}s scale-up window recommended ${upTo} or fewer`;
  } else if (recommended < current) {
    outcome = `hold ${current}: the ${a.scaleDownWindowSeconds}s scale-down window recommended ${downTo} or more`;
  } else {
    outcome = `hold ${current}`;
  }
  const reason = `${read}: recommends ${recommended} (${rule}${bound}); ${outcome}`;
  return { decision: { ...base, to, recommended, perReplica, reason }, recommendations };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
