/**
 * bench:serve's script path, how sure a cell's comparison is (script-front-bench.ts): the paths alternate in
 * slices, one slice per path per round, so a round is a paired sample of the machine's state. A block
 * bootstrap over rounds (draw the rounds with replacement, pool each path's requests from the drawn rounds,
 * recompute) gives a 95 % interval for the throughput ratio and the p50 difference of two paths that carries
 * the slice-to-slice drift of a loaded machine, which a bootstrap over single requests would hide. The draws
 * are seeded, so a result file's intervals can be recomputed from its run.
 */

import { seededRandom } from '../src/demo/seeded-random';

/** One path's slice: its wall time and the latencies of its answered requests. */
export interface SliceSample {
  seconds: number;
  latencies: number[];
}

/** A point estimate and its 95 % interval (2.5th and 97.5th percentiles of the bootstrap). */
export interface Interval {
  estimate: number;
  low: number;
  high: number;
}

export interface PairedComparison {
  /** Throughput of `path` over throughput of the baseline. */
  ratio: Interval;
  /** p50 of `path` minus p50 of the baseline, ms. */
  addedP50Ms: Interval;
  /** Rounds the interval was drawn from. */
  rounds: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function pooled(slices: SliceSample[], picks: number[]): { throughput: number; p50: number } {
  let seconds = 0;
  let count = 0;
  for (const i of picks) count += slices[i]!.latencies.length;
  const latencies = new Float64Array(count);
  let at = 0;
  for (const i of picks) {
    seconds += slices[i]!.seconds;
    latencies.set(slices[i]!.latencies, at);
    at += slices[i]!.latencies.length;
  }
  latencies.sort(); // a typed array sorts numerically
  const p50 = count === 0 ? NaN : latencies[Math.min(count - 1, Math.ceil(count / 2) - 1)]!;
  return { throughput: count / seconds, p50 };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/**
 * `path` against `baseline`, both given as their slices in round order (slice i of each from round i).
 * Percentile intervals of `draws` block-bootstrap resamples over rounds.
 */
export function compareRounds(path: SliceSample[], baseline: SliceSample[], draws = 400): PairedComparison {
  const rounds = Math.min(path.length, baseline.length);
  const all = Array.from({ length: rounds }, (_, i) => i);
  const point = (picks: number[]) => {
    const a = pooled(path, picks);
    const b = pooled(baseline, picks);
    return { ratio: a.throughput / b.throughput, added: a.p50 - b.p50 };
  };
  const estimate = point(all);
  const random = seededRandom(25);
  const ratios: number[] = [];
  const added: number[] = [];
  for (let d = 0; d < draws; d++) {
    const picks = all.map(() => Math.floor(random() * rounds));
    const { ratio, added: diff } = point(picks);
    ratios.push(ratio);
    added.push(diff);
  }
  ratios.sort((a, b) => a - b);
  added.sort((a, b) => a - b);
  const interval = (point: number, sorted: number[]): Interval => ({
    estimate: round2(point),
    low: round2(percentile(sorted, 2.5)),
    high: round2(percentile(sorted, 97.5)),
  });
  return { ratio: interval(estimate.ratio, ratios), addedP50Ms: interval(estimate.added, added), rounds };
}
