/**
 * Gathers finished shards into the job's output files, in shard order, each written to a temp name,
 * fsynced and renamed into place, then the directory fsynced (a retry of the summary rewrites them whole; a
 * reader never sees half a file; after a power loss the shards are only gone once the outputs are on disk).
 *
 * raw.npy: the shards' raw.f32 files are bare float32 rows (appended at checkpoints, so a resumed shard
 * holds each row once); the merge writes the .npy header, which needs the total row count, then streams
 * every shard's rows after it. A shard whose raw bytes are not exactly (rows scored) × classes float32
 * values would shift every later row off its predictions line, so it fails the merge instead.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import path from 'node:path';

import { StepFailedError } from '../errors';
import { FailureType } from '../shared/failure-types';
import { npyHeader } from './npy';
import { SHARD_FILES } from './output-layout';
import type { BatchLayout } from './output-layout';
import { fileExists } from '../file-exists';
import { syncDirectory, syncFile } from '../json-file';

const FLOAT32_BYTES = 4;

export interface ConcatOptions {
  /** Bytes written before the first file (a header). */
  prefix?: Buffer;
  /** Called after each file is copied (heartbeat it). */
  onFile?: () => void;
  /** Skip files that do not exist (true) or fail on them (false, default). */
  skipMissing?: boolean;
}

/** Writes `files`, in order, into `target` (temp name, fsync, rename, fsync of the directory), streaming. */
export async function concatFiles(files: string[], target: string, opts: ConcatOptions = {}): Promise<void> {
  const tmp = `${target}.${process.pid}.tmp`;
  const out = createWriteStream(tmp);
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  try {
    if (opts.prefix && !out.write(opts.prefix)) await Promise.race([once(out, 'drain'), failed]);
    for (const file of files) {
      if (opts.skipMissing && !(await fileExists(file))) continue;
      // Copy chunk by chunk into the one output stream (no per-file listeners on it), honouring backpressure.
      for await (const chunk of createReadStream(file)) {
        if (!out.write(chunk as Buffer)) await Promise.race([once(out, 'drain'), failed]);
      }
      opts.onFile?.();
    }
    const ended = new Promise<void>((resolve, reject) =>
      out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    await Promise.race([ended, failed]);
  } catch (err) {
    out.destroy();
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await syncFile(tmp);
  await fs.rename(tmp, target);
  await syncDirectory(path.dirname(target));
}

/** A finished shard as the merge sees it: its number and how many inputs it scored (its raw rows). */
export interface RawShard {
  shard: number;
  itemsOk: number;
}

/**
 * Writes `<out>/raw.npy`: float32, shape [sum of itemsOk, classes], rows in shard order. Returns the shape.
 * Throws a StepFailedError (BatchOutputsInconsistent) when a shard's raw.f32 is missing or the wrong size.
 */
export async function mergeRawOutputs(
  layout: BatchLayout,
  shards: readonly RawShard[],
  classes: number,
  onShard?: () => void,
): Promise<[number, number]> {
  const files: string[] = [];
  let rows = 0;
  for (const { shard, itemsOk } of shards) {
    const file = path.join(layout.shardDir(shard), SHARD_FILES.raw);
    const size = (await fs.stat(file).catch(() => undefined))?.size;
    const want = itemsOk * classes * FLOAT32_BYTES;
    if (size !== want) {
      throw new StepFailedError(
        `Shard ${shard}'s raw outputs (${file}) hold ${size === undefined ? 'nothing' : `${size} bytes`}, not ` +
          `${itemsOk} rows × ${classes} float32 values (${want} bytes), so raw.npy cannot line up with ` +
          `predictions.jsonl. Remove ${layout.shardDir(shard)} and run the job again to rescore that shard.`,
        FailureType.BatchOutputsInconsistent,
      );
    }
    files.push(file);
    rows += itemsOk;
  }
  const shape: [number, number] = [rows, classes];
  await concatFiles(files, layout.rawFile, { prefix: npyHeader(shape, '<f4'), onFile: onShard });
  return shape;
}
