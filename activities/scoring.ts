/**
 * The GPU worker's activity: score one shard of a batch job. Idempotent and resumable:
 *  - a finished shard (its directory renamed into place) is returned as is;
 *  - each attempt writes into a directory of its own, `<shard>.attempt-<n>.partial/`; it first fences the
 *    earlier attempts (renames their directories away, so a lost attempt that wakes up cannot commit) and
 *    resumes from the checkpoint the previous attempt heartbeated: a copy of that attempt's files up to
 *    it, dropping whatever was written after, so every input appears exactly once in the shard's outputs;
 *  - the attempt's directory is renamed to `<shard>/` in one step at the end, with
 *    done.json: the result, plus the model output and preprocessing it scored with (for summary.json;
 *    they stay out of the result, hence out of the workflow's history).
 * On Blob Storage the same contract holds with attempt-scoped blobs (./blob-shard.ts).
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { MetricMeter } from '@temporalio/common';

import { assertInsideAllowedRoots } from '../src/allowed-roots';
import { isBlobLocation } from '../src/batch/blob-location';
import { withLocalModel } from '../src/batch/blob-model';
import { BlobBatchOutput } from '../src/batch/blob-output';
import { readShardManifest } from '../src/batch/input-listing';
import { batchModelRecord } from '../src/batch/model-record';
import { BatchLayout, SHARD_FILES } from '../src/batch/output-layout';
import { EMPTY_CHECKPOINT, scoreShard } from '../src/batch/shard-scorer';
import { fileExists } from '../src/file-exists';
import { readJsonFile } from '../src/json-file';
import { readOverrides } from '../src/model/model-info';
import type { ClassifierPool } from '../src/scoring/classifier-pool';
import type { ShardCheckpoint, ShardRecord, ShardResult, ShardTask } from '../src/shared/batch-types';
import { failingPermanently } from './failures';
import { scoreBlobShard } from './blob-shard';
import { shardCheckpointing } from './shard-progress';
import { FailureType } from '../src/shared/failure-types';

export interface ScoringActivityDeps {
  classifiers: ClassifierPool;
  /** Shown in results and logs; defaults to host:pid. */
  workerName?: string;
  /**
   * How often a shard heartbeats its last checkpoint between batches (default: a quarter of the
   * heartbeat timeout, at most 5 s). Inference runs off the main thread, so this goes on during a batch.
   */
  heartbeatEveryMs?: number;
}

export function createScoringActivities({
  classifiers,
  workerName = `${os.hostname()}:${process.pid}`,
  heartbeatEveryMs,
}: ScoringActivityDeps) {
  return {
    async scoreShard(task: ShardTask): Promise<ShardResult> {
      const ctx = Context.current();
      // This worker's own roots (it may have other ones than the control worker that validated the job).
      await failingPermanently(() => {
        if (!isBlobLocation(task.outputDir)) assertInsideAllowedRoots('output directory', task.outputDir);
        if (!isBlobLocation(task.modelPath)) assertInsideAllowedRoots('model', task.modelPath);
        if (task.labelsPath && !isBlobLocation(task.labelsPath))
          assertInsideAllowedRoots('labels file', task.labelsPath);
        return Promise.resolve();
      });
      const blob = isBlobLocation(task.outputDir) ? new BlobBatchOutput(task.outputDir) : undefined;
      const layout = new BatchLayout(task.outputDir);
      const finalDir = layout.shardDir(task.shard);
      const done = blob
        ? await failingPermanently(() => blob.anyDoneRecord(task.shard))
        : await readJsonFile<ShardRecord>(path.join(finalDir, SHARD_FILES.done));
      if (done) return withoutModel(done);

      const classifier = await failingPermanently(async () => {
        const local = await withLocalModel(task, ctx.cancellationSignal);
        return classifiers.get(local.modelPath, task.modelDigest, await readOverrides(local));
      });
      if (task.requireCuda && classifier.executionProvider !== 'cuda') {
        throw ApplicationFailure.nonRetryable(
          `Job "${task.jobName}" requires CUDA but worker ${workerName} runs the model on ${classifier.executionProvider}. ` +
            'Start GPU workers with --gpu (and the CUDA 12 provider installed), or drop --gpu from the job.',
          FailureType.CudaUnavailable,
        );
      }
      const metrics = scoringMetrics(ctx.metricMeter.withTags({ execution_provider: classifier.executionProvider }));
      metrics.provider.set(1);
      const onBatch = (batch: { ok: number; failed: number; inferMs: number }) => {
        metrics.items.withTags({ outcome: 'ok' }).add(batch.ok);
        if (batch.failed > 0) metrics.items.withTags({ outcome: 'failed' }).add(batch.failed);
        if (batch.ok > 0) metrics.inferenceLatency.record(batch.inferMs);
        metrics.batchSize.record(batch.ok);
      };
      const everyMs = heartbeatEveryMs ?? Math.min(5_000, Math.max(100, (ctx.info.heartbeatTimeoutMs ?? 20_000) / 4));
      if (blob) return scoreBlobShard({ task, output: blob, classifier, workerName, everyMs, onBatch });
      const inputs = await readShardManifest(layout.shardManifest(task.shard, task.manifestDir));

      // Fence the earlier attempts, then resume from the last checkpoint one of them heartbeated (a copy
      // of its files up to it), if those files are still there.
      const attempt = ctx.info.attempt;
      const partialDir = layout.shardPartialDir(task.shard, attempt);
      const previous = ctx.info.heartbeatDetails as ShardCheckpoint | undefined;
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
      if (from.itemsDone > 0) {
        log.info('Resuming shard from checkpoint', { shard: task.shard, itemsDone: from.itemsDone, attempt });
      }

      const predictions = await openAt(path.join(partialDir, SHARD_FILES.predictions), from.predictionsBytes);
      const errors = await openAt(path.join(partialDir, SHARD_FILES.errors), from.errorsBytes);
      const raw = task.rawOutputs ? await openAt(path.join(partialDir, SHARD_FILES.raw), from.rawBytes) : undefined;
      const started = performance.now();
      const checkpointing = shardCheckpointing(ctx, task, everyMs, from);
      let stats;
      try {
        stats = await scoreShard({
          classifier,
          inputs,
          baseIndex: task.baseIndex,
          batchSize: task.batchSize,
          topK: task.topK,
          sinks: { predictions, errors, raw },
          from,
          onCheckpoint: checkpointing.onCheckpoint,
          onBatch,
          signal: ctx.cancellationSignal,
        });
        await Promise.all([predictions.sync(), errors.sync(), raw?.sync()]);
      } finally {
        checkpointing.stop();
        await Promise.all([predictions.close(), errors.close(), raw?.close()]);
      }

      const result: ShardResult = {
        shard: task.shard,
        itemsOk: stats.checkpoint.itemsOk,
        itemsFailed: stats.checkpoint.itemsFailed,
        wallMs: Math.round(performance.now() - started),
        decodeMs: Math.round(stats.decodeWaitMs),
        inferMs: Math.round(stats.inferMs),
        attempts: ctx.info.attempt,
        executionProvider: classifier.executionProvider,
        worker: workerName,
      };
      // Values per output row: as seen in this attempt, else what the checkpointed raw rows hold, else one per label.
      const cp = stats.checkpoint;
      const classes =
        stats.outputClasses ?? (raw && cp.itemsOk > 0 ? cp.rawBytes / 4 / cp.itemsOk : classifier.info.labels.length);
      const record: ShardRecord = { ...result, model: batchModelRecord(classifier.info, classes) };
      await fs.writeFile(path.join(partialDir, SHARD_FILES.done), JSON.stringify(record));
      await fs.rm(finalDir, { recursive: true, force: true });
      await fs.rename(partialDir, finalDir);
      log.info('Shard scored', {
        shard: task.shard,
        ok: result.itemsOk,
        failed: result.itemsFailed,
        ms: result.wallMs,
      });
      return result;
    },
  };
}

/**
 * The GPU worker's own Prometheus metrics, next to the SDK's on the worker's metrics endpoint
 * (--metrics-port). Every series carries the execution provider as a tag.
 */
function scoringMetrics(meter: MetricMeter) {
  return {
    items: meter.createCounter('inferctl_items_scored', 'items', 'Inputs scored, by outcome (ok, failed)'),
    inferenceLatency: meter.createHistogram('inferctl_inference_latency', 'float', 'ms', 'onnxruntime time per batch'),
    batchSize: meter.createHistogram('inferctl_batch_size', 'int', 'items', 'Images per inference call'),
    provider: meter.createGauge(
      'inferctl_execution_provider',
      'int',
      '',
      '1 for the execution provider this worker runs',
    ),
  };
}

function withoutModel(record: ShardRecord): ShardResult {
  const { model: _model, ...result } = record as ShardRecord & { bytes?: unknown; attempt?: number };
  const { bytes: _bytes, attempt, ...rest } = result;
  // On blob storage the record names its attempt: the result says which attempt's output the shard's is.
  return attempt === undefined ? rest : { ...rest, attempts: attempt };
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
