/**
 * A model's output row → the scores top-k ranks and answers carry, by the spec's `output`:
 *   probabilities  as is
 *   logits         softmax
 *   sigmoid        per-class sigmoid (multi-label: the scores need not sum to 1)
 *   auto           as is when the row is already a distribution (non-negative, sums to 1 within 1e-3),
 *                  else softmax
 */
import type { OutputScores } from '../shared/preprocess-types';

/** How far from 1 a row's sum may be and still count as a distribution under `auto`. */
export const DISTRIBUTION_TOLERANCE = 1e-3;

export function isDistribution(row: ArrayLike<number>): boolean {
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (!(v >= 0)) return false; // negative or NaN
    sum += v;
  }
  return Math.abs(sum - 1) <= DISTRIBUTION_TOLERANCE;
}

/** Softmax in float64, shifted by the maximum so large logits do not overflow. */
export function softmax(row: ArrayLike<number>): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]!);
  const exps = new Float64Array(row.length);
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    exps[i] = Math.exp(row[i]! - max);
    sum += exps[i]!;
  }
  return Float32Array.from(exps, (e) => e / sum);
}

export function sigmoid(row: ArrayLike<number>): Float32Array {
  return Float32Array.from(row, (x) => 1 / (1 + Math.exp(-x)));
}

export function outputScores(row: Float32Array, output: OutputScores): Float32Array {
  switch (output) {
    case 'probabilities':
      return row;
    case 'logits':
      return softmax(row);
    case 'sigmoid':
      return sigmoid(row);
    case 'auto':
      return isDistribution(row) ? row : softmax(row);
  }
}
