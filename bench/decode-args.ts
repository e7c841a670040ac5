/** `npm run bench:decode`'s command line (bench/decode-bench.ts describes each flag at its top). */
import { DEFAULT_PREPROCESS } from '../src/preprocess/preprocess-spec';
import { DECODE_MODES } from '../src/shared/preprocess-types';
import type { DecodeMode } from '../src/shared/preprocess-types';
import type { FlagKind } from './bench-cli';

export const USAGE = `npm run bench:decode -- [--quick] [--decode fast|draft|exact] [--rounds N] [--corpus photos|small]
  [--regime a|b] [--photos N] [--shard-size N] [--shards-in-flight N]
Batch throughput of issue #28's two regimes against their limits and the Python peers; writes
bench/results/decode-<date>-<decode>[-quick].json and .md. The flags are described at the top of
bench/decode-bench.ts and in bench/README.md.`;

export const DECODE_BENCH_FLAGS: Record<string, FlagKind> = {
  '--quick': 'switch',
  '--decode': 'value',
  '--rounds': 'value',
  '--corpus': 'value',
  '--regime': 'value',
  '--photos': 'value',
  '--shard-size': 'value',
  '--shards-in-flight': 'value',
};

/** `--name value` from argv, one of `allowed`; all of them when absent. */
function choice<T extends string>(name: string, allowed: readonly T[]): T[] {
  const at = process.argv.indexOf(name);
  if (at < 0) return [...allowed];
  const value = process.argv[at + 1] as T;
  if (!allowed.includes(value)) throw new Error(`${name} must be one of ${allowed.join(', ')}`);
  return [value];
}

/** `--photos N`: regime (a)'s photo count (default 240). */
export function photoCount(): number {
  const at = process.argv.indexOf('--photos');
  const count = at >= 0 ? Number(process.argv[at + 1]) : 240;
  if (!Number.isInteger(count) || count < 8) throw new Error('--photos must be a whole number, at least 8');
  return count;
}

/**
 * (b)'s shard layout, where given: `--shard-size N` (each corpus's default otherwise) and `--shards-in-flight N`
 * (the job's window; the GPU worker keeps its CONCURRENCY slots, so the shards past them wait queued).
 */
function regimeBLayout(): { inFlight?: number; shardSizeB?: number } {
  const numberAfter = (flag: string) => {
    const at = process.argv.indexOf(flag);
    if (at < 0) return undefined;
    const n = Number(process.argv[at + 1]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number, at least 1`);
    return n;
  };
  const inFlight = numberAfter('--shards-in-flight');
  const shardSizeB = numberAfter('--shard-size');
  return { ...(inFlight ? { inFlight } : {}), ...(shardSizeB ? { shardSizeB } : {}) };
}

/** Every flag but `--photos` (read where the photo corpus is made, and not in quick runs). */
export function decodeBenchArgs() {
  const quick = process.argv.includes('--quick');
  const at = process.argv.indexOf('--decode');
  const decode = (at >= 0 ? process.argv[at + 1] : DEFAULT_PREPROCESS.decode) as DecodeMode;
  if (!DECODE_MODES.includes(decode)) throw new Error(`--decode must be one of ${DECODE_MODES.join(', ')}`);
  const roundsAt = process.argv.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(process.argv[roundsAt + 1]) : 1;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a whole number, at least 1');
  const which = choice('--corpus', ['photos', 'small'] as const);
  const regimes = choice('--regime', ['a', 'b'] as const);
  return { quick, decode, rounds, which, regimes, ...regimeBLayout() };
}
