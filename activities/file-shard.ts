/**
 * A job's shards in its output directory (the shard runner's file store, ./shard-runner.ts):
 *  - a finished shard is its directory renamed into place, `<shard>/`, with done.json: the result, plus
 *    the model output and preprocessing it scored with (for summary.json; they stay out of the result,
 *    hence out of the workflow's history);
 *  - each attempt writes into a directory of its own, `<shard>.attempt-<n>.partial/`; it first fences the
 *    earlier attempts (renames their directories away, so a lost attempt that wakes up cannot commit) and
 *    resumes from the checkpoint the previous attempt heartbeated: a copy of that attempt's files up to
 *    it, dropping whatever was written after, so every input appears exactly once in the shard's outputs;
 *  - the attempt's directory is renamed to `<shard>/` in one step at the end.
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import { readShardManifest } from '../src/batch/input-listing';
import { BatchLayout, SHARD_FILES } from '../src/batch/output-layout';
import { EMPTY_CHECKPOINT } from '../src/batch/shard-scorer';
import { fileExists } from '../src/file-exists';
import { readJsonFile } from '../src/json-file';
import type { ShardCheckpoint, ShardRecord } from '../src/shared/batch-types';
import type { ShardStore } from './shard-runner';

export function fileShardStore(outputDir: string): ShardStore {
  const layout = new BatchLayout(outputDir);
  return {
    doneRecord: (shard) => readJsonFile<ShardRecord>(path.join(layout.shardDir(shard), SHARD_FILES.done)),

    async open(task, attempt, previous) {
      const inputs = await readShardManifest(layout.shardManifest(task.shard, task.manifestDir));
      // Fence the earlier attempts, then resume from the last checkpoint one of them heartbeated (a copy
      // of its files up to it), if those files are still there.
      const partialDir = layout.shardPartialDir(task.shard, attempt);
      const fenced = await fenceEarlierAttempts(layout, task.shard, attempt);
      const source = previous ? fenced.get(previous.attempt ?? attempt - 1) : undefined;
      await fs.rm(partialDir, { recursive: true, force: true });
      await fs.mkdir(partialDir, { recursive: true });
      let from: ShardCheckpoint = EMPTY_CHECKPOINT;
      if (previous && source && (await sizesAtLeast(source, previous))) {
        await copyUpTo(source, partialDir, previous);
        from = previous;
      }
      for (const dir of fenced.values()) await fs.rm(dir, { recursive: true, force: true });
      from = { ...from, attempt };

      const predictions = await openAt(path.join(partialDir, SHARD_FILES.predictions), from.predictionsBytes);
      const errors = await openAt(path.join(partialDir, SHARD_FILES.errors), from.errorsBytes);
      const raw = task.rawOutputs ? await openAt(path.join(partialDir, SHARD_FILES.raw), from.rawBytes) : undefined;
      const finalDir = layout.shardDir(task.shard);
      return {
        inputs,
        from,
        sinks: { predictions, errors, raw },
        flush: async () => {
          await Promise.all([predictions.sync(), errors.sync(), raw?.sync()]);
        },
        close: async () => {
          await Promise.all([predictions.close(), errors.close(), raw?.close()]);
        },
        commit: async (result, model) => {
          const record: ShardRecord = { ...result, model };
          await fs.writeFile(path.join(partialDir, SHARD_FILES.done), JSON.stringify(record));
          await fs.rm(finalDir, { recursive: true, force: true });
          await fs.rename(partialDir, finalDir);
        },
      };
    },
  };
}

/** True when the partial files hold at least the checkpointed bytes (else the checkpoint is unusable). */
async function sizesAtLeast(dir: string, cp: ShardCheckpoint): Promise<boolean> {
  const size = async (name: string) => {
    try {
      return (await fs.stat(path.join(dir, name))).size;
    } catch {
      return -1;
    }
  };
  return (
    (await size(SHARD_FILES.predictions)) >= cp.predictionsBytes &&
    (await size(SHARD_FILES.errors)) >= cp.errorsBytes &&
    (cp.rawBytes === 0 || (await size(SHARD_FILES.raw)) >= cp.rawBytes)
  );
}

/**
 * Fencing on the file system: renames every earlier attempt's directory of this shard away (atomic),
 * so an attempt that lost the shard (paused past its heartbeat timeout, then resumed) can no longer
 * write its done.json nor rename its output into place: both name a path that is gone. Its open files
 * now belong to the renamed directory, which this attempt only copies from. Returns the fenced
 * directories by attempt (ones an earlier fencing left too).
 */
async function fenceEarlierAttempts(layout: BatchLayout, shard: number, attempt: number): Promise<Map<number, string>> {
  const base = path.basename(layout.shardDir(shard));
  const pattern = new RegExp(`^${base}\\.attempt-(\\d+)\\.(partial|fenced-\\d+)$`);
  const fenced = new Map<number, string>();
  const names = await fs.readdir(layout.shardsDir).catch(() => [] as string[]);
  for (const name of names) {
    const m = pattern.exec(name);
    const earlier = Number(m?.[1]);
    if (!m || !(earlier < attempt)) continue;
    let dir = path.join(layout.shardsDir, name);
    if (m[2] === 'partial') {
      const away = path.join(layout.shardsDir, `${base}.attempt-${earlier}.fenced-${attempt}`);
      await fs.rename(dir, away);
      dir = away;
    }
    fenced.set(earlier, dir);
  }
  return fenced;
}

/** Copies the first bytes of each output file, as many as the checkpoint counts, from `source` to `dir`. */
async function copyUpTo(source: string, dir: string, cp: ShardCheckpoint): Promise<void> {
  for (const [name, bytes] of [
    [SHARD_FILES.predictions, cp.predictionsBytes],
    [SHARD_FILES.errors, cp.errorsBytes],
    [SHARD_FILES.raw, cp.rawBytes],
  ] as const) {
    const from = path.join(source, name);
    if (bytes === 0 && !(await fileExists(from))) continue;
    const to = path.join(dir, name);
    await fs.copyFile(from, to);
    await fs.truncate(to, bytes);
  }
}

/** Opens (creating) a file for writing at explicit offsets, truncated to `length`. */
async function openAt(file: string, length: number): Promise<fs.FileHandle> {
  const handle = await fs.open(file, fsConstants.O_RDWR | fsConstants.O_CREAT);
  await handle.truncate(length);
  return handle;
}
