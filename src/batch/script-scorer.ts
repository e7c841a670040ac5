/**
 * One shard through a user's batch scoring script: the shard's inputs in mini-batches of local paths, each
 * handed to the script's run() in its long-lived Python process (src/script/batch-process.ts), its rows
 * written after the mini-batch's in input order at explicit offsets, then the checkpoint reported, exactly
 * like the ONNX pipeline (./shard-scorer.ts): resuming from a checkpoint yields every input exactly once.
 *
 * The next mini-batch's inputs are made ready while run() works on this one.
 * Per mini-batch: an input that cannot be given to the script (outside the allowed roots, not a regular
 * file, a blob that cannot be read) is its own error and is left out of the list; run() raising fails the
 * mini-batch's inputs (each with the exception's last line); a row count other than the list's fails them
 * too, saying so; a run() past the timeout is killed, fails them as 'timeout', and the next mini-batch gets
 * a fresh process (init() again). The process dying otherwise is thrown: the attempt fails and is retried.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { allowedRoots, assertInsideAllowedRoots } from '../allowed-roots';
import { ImageError, InvalidInputError } from '../errors';
import type { ScriptProcess } from '../script/batch-process';
import type { OutputAction } from '../shared/batch-types';
import type { ShardCheckpoint } from '../shared/batch-types';
import { appendRowLine } from './append-row';
import type { ShardScoringStats, ShardSinks } from './shard-scorer';
import { appendRows } from './shard-scorer';

export interface ScriptShardOptions {
  /** The process to use; `replace` gives a fresh one (after a timeout killed it). */
  process: () => Promise<ScriptProcess>;
  replace: () => Promise<ScriptProcess>;
  inputs: string[];
  baseIndex: number;
  miniBatchSize: number;
  miniBatchTimeoutMs: number;
  outputAction: OutputAction;
  sinks: ShardSinks;
  from: ShardCheckpoint;
  onCheckpoint?: (checkpoint: ShardCheckpoint) => void;
  onBatch?: (batch: { size: number; ok: number; failed: number; inferMs: number }) => void;
  signal?: AbortSignal;
  /** Reads a non-local input (a blob, fetched ahead); it is written to a temporary file for the script. */
  readInput?: (file: string, position: number) => Promise<Buffer>;
}

interface Given {
  /** What the script is given, or why the input could not be. */
  local?: string;
  error?: { reason: string; message: string };
}

export async function scoreScriptShard(opts: ScriptShardOptions): Promise<ShardScoringStats> {
  const { inputs, sinks } = opts;
  const cp: ShardCheckpoint = { ...opts.from };
  let inferMs = 0;
  const roots = allowedRoots();
  const scratch = opts.readInput
    ? await fs.mkdtemp(path.join(os.tmpdir(), `inferctl-script-inputs-${crypto.randomBytes(3).toString('hex')}-`))
    : undefined;
  // A mini-batch's inputs (checked paths, or blobs written to scratch files), made ready while run() works
  // on the one before, so the script's process does not wait on them between mini-batches.
  const prepare = (start: number): Promise<Given[]> => {
    const ready = Promise.all(
      inputs
        .slice(start, start + opts.miniBatchSize)
        .map((file, i) => giveInput(file, start + i, opts, roots, scratch)),
    );
    ready.catch(() => undefined); // awaited below; a failure there fails the shard, as before
    return ready;
  };
  let next = cp.itemsDone < inputs.length ? prepare(cp.itemsDone) : undefined;
  try {
    for (let start = cp.itemsDone; start < inputs.length; start += opts.miniBatchSize) {
      opts.signal?.throwIfAborted();
      const files = inputs.slice(start, start + opts.miniBatchSize);
      const given = await next!;
      next = start + opts.miniBatchSize < inputs.length ? prepare(start + opts.miniBatchSize) : undefined;
      const paths = given.flatMap((g) => (g.local ? [g.local] : []));
      const started = performance.now();
      const outcome = paths.length > 0 ? await runOnce(opts, paths) : { rows: [] };
      inferMs += performance.now() - started;

      const predictionRows: string[] = [];
      const errorRows: string[] = [];
      let r = 0;
      given.forEach((g, i) => {
        const index = opts.baseIndex + start + i;
        const file = files[i]!;
        const failed = g.error ?? ('rows' in outcome ? undefined : outcome);
        if (failed) {
          errorRows.push(JSON.stringify({ index, path: file, reason: failed.reason, message: failed.message }));
          return;
        }
        const row = (outcome as { rows: unknown[] }).rows[r++];
        predictionRows.push(
          opts.outputAction === 'append_row' ? appendRowLine(row) : JSON.stringify({ index, path: file, result: row }),
        );
      });
      cp.predictionsBytes += await appendRows(sinks.predictions, predictionRows, cp.predictionsBytes);
      cp.errorsBytes += await appendRows(sinks.errors, errorRows, cp.errorsBytes);
      cp.itemsDone += files.length;
      cp.itemsOk += predictionRows.length;
      cp.itemsFailed += errorRows.length;
      opts.onCheckpoint?.({ ...cp });
      opts.onBatch?.({
        size: files.length,
        ok: predictionRows.length,
        failed: errorRows.length,
        inferMs: performance.now() - started,
      });
      if (scratch) await Promise.all(paths.map((p) => fs.rm(p, { force: true })));
    }
  } finally {
    await next?.catch(() => undefined); // a mini-batch made ready ahead writes nothing once the scratch folder goes
    if (scratch) await fs.rm(scratch, { recursive: true, force: true });
  }
  return { checkpoint: cp, decodeWaitMs: 0, inferMs };
}

/** run(paths) once: its rows when there is one per path, else why the mini-batch failed. */
async function runOnce(
  opts: ScriptShardOptions,
  paths: string[],
): Promise<{ rows: unknown[] } | { reason: string; message: string }> {
  const answer = await (await opts.process()).run(paths, opts.miniBatchTimeoutMs);
  if ('timedOut' in answer) {
    await opts.replace();
    return {
      reason: 'timeout',
      message: `run() took longer than the mini-batch timeout (${opts.miniBatchTimeoutMs / 1000} s); it was stopped`,
    };
  }
  if ('error' in answer) return { reason: 'run-raised', message: answer.error };
  if (answer.rows.length !== paths.length) {
    return {
      reason: 'row-count',
      message:
        `run() returned ${answer.rows.length} row(s) for a mini-batch of ${paths.length} input(s); ` +
        'return one row per input, in order',
    };
  }
  return { rows: answer.rows };
}

/**
 * The path the script is given for input `file`: a local file resolved (links followed) and checked
 * against the allowed roots, a regular file only; a blob written to the scratch folder.
 */
async function giveInput(
  file: string,
  position: number,
  opts: ScriptShardOptions,
  roots: string[] | undefined,
  scratch: string | undefined,
): Promise<Given> {
  try {
    if (opts.readInput && scratch) {
      const local = path.join(scratch, `${position}-${path.basename(file).replace(/[^\w.-]/g, '_')}`);
      await fs.writeFile(local, await opts.readInput(file, position));
      return { local };
    }
    const real = await fs.realpath(file);
    assertInsideAllowedRoots('input', real, roots);
    const stat = await fs.stat(real);
    if (!stat.isFile()) return { error: { reason: 'not-a-file', message: `${file} is not a regular file` } };
    return { local: real };
  } catch (err) {
    if (err instanceof ImageError) return { error: { reason: err.reason, message: err.message } };
    if (err instanceof InvalidInputError) return { error: { reason: 'not-allowed', message: err.message } };
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return { error: { reason: 'unreadable', message: `${code}: cannot read ${file}` } };
    throw err;
  }
}
