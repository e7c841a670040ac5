/**
 * A GPU worker's decode splits (./decode-split.ts), one per thing they depend on, kept for the process's
 * lifetime: what a decode costs and what inference costs at each intra-op setting depend on the model, the
 * preprocessing spec it decodes to, the execution provider and the worker's cores and settings, not on the
 * shard or the job. So only the first shards of a model on a worker measure (their first batches take turns
 * at each intra-op setting); every later shard of it, in this job or the next, starts with the chosen split,
 * and a shard of another model (or spec, or provider) measures its own. Every splitter shares one PhaseGate:
 * in phases, no decode runs beside an inference in the process, whichever model each shard runs.
 */
import crypto from 'node:crypto';

import type { ResolvedPreprocess } from '../shared/preprocess-types';
import { DecodeSplitter } from './decode-split';
import type { DecodeSplit, SplitInputs, SplitterOptions } from './decode-split';
import { PhaseGate } from './phase-gate';

/** What a split depends on besides the worker's own cores and settings (which a registry holds). */
export interface SplitSubject {
  /** 'sha256:<hex>' of the model file. */
  modelDigest: string;
  /** The spec images decode to (size, resize, crop, decode mode: what a decode costs). */
  preprocess: ResolvedPreprocess;
  executionProvider: string;
}

/** The spec's fields (a model's info carries more: its path and labels, which a split does not depend on). */
const SPEC_FIELDS: Array<keyof ResolvedPreprocess> = [
  'width',
  'height',
  'resize',
  'crop',
  'channelOrder',
  'scale',
  'mean',
  'std',
  'layout',
  'interpolation',
  'orientation',
  'output',
  'decode',
];

/** The registry's key for a subject: the digest, a hash of the spec, the provider. */
export function splitKey(subject: SplitSubject): string {
  const fields = SPEC_FIELDS.map((field) => [field, subject.preprocess[field] ?? null]);
  const spec = crypto.createHash('sha256').update(JSON.stringify(fields)).digest('hex').slice(0, 16);
  return `${subject.modelDigest}#${spec}#${subject.executionProvider}`;
}

/** The most subjects a worker keeps splits for; past it the least recently used one is forgotten. */
export const MAX_SPLITS = 32;

export interface SplitRegistryOptions extends Omit<SplitterOptions, 'onChoice' | 'gate'> {
  /** Where each decision goes (the activity's log), with the key it was made for. */
  onChoice?: (split: DecodeSplit, measured: SplitInputs, key: string) => void;
}

export class SplitRegistry {
  /** The process's one gate, shared by every splitter. */
  readonly gate = new PhaseGate();
  private readonly splitters = new Map<string, DecodeSplitter>();

  constructor(private readonly opts: SplitRegistryOptions) {}

  /**
   * The splitter for a subject: the one this process already has (`reused` when it has decided: the shard
   * does no measurement batches), else a new one that measures in its first batches.
   */
  for(subject: SplitSubject): { splitter: DecodeSplitter; key: string; reused: boolean } {
    const key = splitKey(subject);
    let splitter = this.splitters.get(key);
    if (splitter) {
      this.splitters.delete(key); // re-inserted below: the map's order is the order of last use
    } else {
      const { onChoice, ...opts } = this.opts;
      splitter = new DecodeSplitter({
        ...opts,
        gate: this.gate,
        ...(onChoice ? { onChoice: (split, measured) => onChoice(split, measured, key) } : {}),
      });
    }
    this.splitters.set(key, splitter);
    for (const oldest of this.splitters.keys()) {
      if (this.splitters.size <= MAX_SPLITS) break;
      this.splitters.delete(oldest);
    }
    return { splitter, key, reused: splitter.chosen !== undefined };
  }
}
