/**
 * The files of a batch job under its output directory.
 *
 *   <out>/manifest/job.json            the job token and counts (listing is idempotent per job)
 *   <out>/manifest/shard-000000.jsonl  one input path per line, as a JSON string
 *   <out>/shards/shard-000000.attempt-2.partial/
 *                                      attempt 2 scoring the shard: predictions.jsonl, errors.jsonl, raw.f32
 *                                      (raw.f32: the shard's output rows, bare little-endian float32)
 *   <out>/shards/shard-000000.attempt-1.fenced-2/
 *                                      an earlier attempt's directory, renamed away by attempt 2 (fencing:
 *                                      that attempt can no longer commit), copied up to its checkpoint
 *   <out>/shards/shard-000000/         a finished shard (renamed atomically), with done.json
 *   <out>/predictions.jsonl            every input's top-k (a script's row), in input order, once the job ends
 *                                      (predictions.csv for a script job with the append_row output)
 *   <out>/errors.jsonl                 every input that could not be scored, with the reason
 *   <out>/raw.npy                      with --raw-outputs: every scored input's output row, NumPy float32
 *                                      [rows, classes]; row i belongs to line i of predictions.jsonl
 *   <out>/summary.json                 counts, timings, execution provider, model output, preprocessing
 */
import path from 'node:path';

import type { OutputAction, PreparedBatch } from '../shared/batch-types';

/** What manifest/job.json holds: the listing, and the job it is for. */
export interface JobFile extends PreparedBatch {
  jobToken: string;
}

export function shardName(shard: number): string {
  return `shard-${String(shard).padStart(6, '0')}`;
}

export class BatchLayout {
  /** `append_row` (a script job's Azure ML output shape) names the predictions predictions.csv. */
  constructor(
    readonly outputDir: string,
    readonly outputAction: OutputAction = 'jsonl',
  ) {}

  get manifestDir(): string {
    return path.join(this.outputDir, 'manifest');
  }

  get jobFile(): string {
    return path.join(this.manifestDir, 'job.json');
  }

  shardManifest(shard: number, manifestDir = this.manifestDir): string {
    return path.join(manifestDir, `${shardName(shard)}.jsonl`);
  }

  get shardsDir(): string {
    return path.join(this.outputDir, 'shards');
  }

  shardDir(shard: number): string {
    return path.join(this.shardsDir, shardName(shard));
  }

  /** Where attempt `attempt` (default 1) of a shard writes until it renames the directory into place. */
  shardPartialDir(shard: number, attempt = 1): string {
    return `${this.shardDir(shard)}.attempt-${attempt}.partial`;
  }

  get predictionsFile(): string {
    return path.join(this.outputDir, this.outputAction === 'append_row' ? 'predictions.csv' : 'predictions.jsonl');
  }

  get errorsFile(): string {
    return path.join(this.outputDir, 'errors.jsonl');
  }

  /** The job's raw outputs (with --raw-outputs), NumPy .npy. */
  get rawFile(): string {
    return path.join(this.outputDir, 'raw.npy');
  }

  get summaryFile(): string {
    return path.join(this.outputDir, 'summary.json');
  }
}

/** Files inside a shard directory (partial or finished). */
export const SHARD_FILES = {
  predictions: 'predictions.jsonl',
  errors: 'errors.jsonl',
  raw: 'raw.f32',
  done: 'done.json',
} as const;
