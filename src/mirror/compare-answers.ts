/**
 * One mirrored pair compared: the serving version's answer and the candidate's to the same request.
 *
 * - Statuses first: different statuses disagree; the same non-2xx status agrees (both refused it alike).
 * - Classifier answers (`{"predictions":[{"label","score"}…]}`, as inferctl's server and the how-to's script
 *   answer): the top-1 label must match; the difference is the largest score difference over the labels
 *   both answered; `tolerance:X` also needs that difference ≤ X.
 * - Open Inference Protocol (V2/KServe) answers (`{"outputs":[{"name","shape","data"}…]}`): the outputs by
 *   name, with the same shape; `top1` compares each row's argmax (the last dimension), `tolerance:X` every
 *   element within X (absolute below 1, relative above, as the V2 smoke query); BYTES elements must be equal.
 * - Any other JSON: the same structure, strings and booleans equal, numbers equal (`top1`) or within X.
 * - Bodies that are not JSON (either side): byte for byte.
 */
import { isDeepStrictEqual } from 'node:util';

import type { MirrorCompare } from '../shared/mirror-types';

export interface Answer {
  status: number;
  body: Buffer;
}

export interface Verdict {
  agree: boolean;
  /** Why they disagree, in a phrase. */
  why?: string;
  /** The largest score or number difference found. */
  difference?: number;
}

interface Prediction {
  label: string;
  score: number;
}

interface V2Output {
  name: string;
  shape?: unknown;
  datatype?: unknown;
  data: unknown[];
}

export function compareAnswers(serving: Answer, candidate: Answer, how: MirrorCompare): Verdict {
  if (serving.status !== candidate.status) {
    return { agree: false, why: `status ${serving.status} vs ${candidate.status}` };
  }
  if (serving.status < 200 || serving.status > 299) return { agree: true };
  const a = parseJson(serving.body);
  const b = parseJson(candidate.body);
  if (a === undefined || b === undefined) {
    if (a !== undefined || b !== undefined) return { agree: false, why: 'one answer is JSON, the other is not' };
    return serving.body.equals(candidate.body)
      ? { agree: true }
      : { agree: false, why: 'the bodies differ (not JSON)' };
  }
  const tolerance = how.mode === 'tolerance' ? how.tolerance : 0;
  const pa = predictionsOf(a);
  const pb = predictionsOf(b);
  if (pa && pb) return comparePredictions(pa, pb, how.mode, tolerance);
  const oa = outputsOf(a);
  const ob = outputsOf(b);
  if (oa && ob) return compareOutputs(oa, ob, how.mode, tolerance);
  const found = { difference: 0 };
  const where = jsonDifference(a, b, tolerance, '$', found);
  return where === undefined
    ? { agree: true, difference: found.difference }
    : { agree: false, why: `the answers differ at ${where}`, difference: found.difference };
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function predictionsOf(value: unknown): Prediction[] | undefined {
  const predictions = (value as { predictions?: unknown } | null)?.predictions;
  if (!Array.isArray(predictions) || predictions.length === 0) return undefined;
  const ok = predictions.every(
    (p: unknown) => typeof (p as Prediction)?.label === 'string' && typeof (p as Prediction).score === 'number',
  );
  return ok ? (predictions as Prediction[]) : undefined;
}

function comparePredictions(a: Prediction[], b: Prediction[], mode: MirrorCompare['mode'], tolerance: number): Verdict {
  const topA = top(a);
  const topB = top(b);
  const scores = new Map(b.map((p) => [p.label, p.score]));
  let difference = 0;
  for (const p of a) {
    const other = scores.get(p.label);
    if (other !== undefined) difference = Math.max(difference, Math.abs(p.score - other));
  }
  if (topA.label !== topB.label) {
    return { agree: false, why: `top label "${topA.label}" vs "${topB.label}"`, difference };
  }
  if (mode === 'tolerance' && difference > tolerance) {
    return { agree: false, why: `scores differ by ${difference.toPrecision(3)} (over ${tolerance})`, difference };
  }
  return { agree: true, difference };
}

function top(predictions: Prediction[]): Prediction {
  return predictions.reduce((best, p) => (p.score > best.score ? p : best));
}

function outputsOf(value: unknown): V2Output[] | undefined {
  const outputs = (value as { outputs?: unknown } | null)?.outputs;
  if (!Array.isArray(outputs) || outputs.length === 0) return undefined;
  const ok = outputs.every(
    (o: unknown) => typeof (o as V2Output)?.name === 'string' && Array.isArray((o as V2Output).data),
  );
  return ok ? (outputs as V2Output[]) : undefined;
}

function compareOutputs(a: V2Output[], b: V2Output[], mode: MirrorCompare['mode'], tolerance: number): Verdict {
  let difference = 0;
  const byName = new Map(b.map((o) => [o.name, o]));
  for (const out of a) {
    const other = byName.get(out.name);
    if (!other) return { agree: false, why: `output "${out.name}" missing from the candidate's answer` };
    if (!isDeepStrictEqual(out.shape, other.shape) || out.data.length !== other.data.length) {
      return {
        agree: false,
        why: `output "${out.name}" has shape ${JSON.stringify(out.shape)} vs ${JSON.stringify(other.shape)}`,
      };
    }
    const numeric = out.data.every((x) => typeof x === 'number') && other.data.every((x) => typeof x === 'number');
    if (!numeric) {
      if (!isDeepStrictEqual(out.data, other.data)) return { agree: false, why: `output "${out.name}" differs` };
      continue;
    }
    const x = out.data as number[];
    const y = other.data as number[];
    for (let i = 0; i < x.length; i++) difference = Math.max(difference, scaledDifference(x[i]!, y[i]!));
    if (mode === 'top1') {
      const shape = Array.isArray(out.shape) ? (out.shape as number[]) : [x.length];
      const row = Math.max(1, shape[shape.length - 1] ?? x.length);
      for (let start = 0; start < x.length; start += row) {
        const i = argmax(x, start, row);
        const j = argmax(y, start, row);
        if (i !== j) {
          return { agree: false, why: `output "${out.name}" row ${start / row}: argmax ${i} vs ${j}`, difference };
        }
      }
    } else if (difference > tolerance) {
      return {
        agree: false,
        why: `output "${out.name}" differs by ${difference.toPrecision(3)} (over ${tolerance})`,
        difference,
      };
    }
  }
  return { agree: true, difference };
}

function argmax(data: number[], start: number, length: number): number {
  let best = 0;
  for (let k = 1; k < length && start + k < data.length; k++) if (data[start + k]! > data[start + best]!) best = k;
  return best;
}

/** |a − b|, relative to |a| above 1 (as the V2 smoke query's tolerance). */
function scaledDifference(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(1, Math.abs(a));
}

/** The JSON path where `a` and `b` first differ beyond `tolerance`, or undefined; the largest number difference in `found`. */
function jsonDifference(
  a: unknown,
  b: unknown,
  tolerance: number,
  at: string,
  found: { difference: number },
): string | undefined {
  if (typeof a === 'number' && typeof b === 'number') {
    const d = scaledDifference(a, b);
    found.difference = Math.max(found.difference, d);
    return d > tolerance ? at : undefined;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${at} (length ${a.length} vs ${b.length})`;
    for (let i = 0; i < a.length; i++) {
      const where = jsonDifference(a[i], b[i], tolerance, `${at}[${i}]`, found);
      if (where !== undefined) return where;
    }
    return undefined;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const key of keys) {
      const where = jsonDifference(
        (a as Record<string, unknown>)[key],
        (b as Record<string, unknown>)[key],
        tolerance,
        `${at}.${key}`,
        found,
      );
      if (where !== undefined) return where;
    }
    return undefined;
  }
  return a === b ? undefined : at;
}
