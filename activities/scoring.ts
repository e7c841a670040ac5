/**
 * The GPU worker's activity: score one shard of a batch job. Idempotent and resumable:
 *  - a finished shard (its directory renamed into place) is returned as is;
 *  - an attempt resumes from the checkpoint the previous attempt heartbeated, truncating whatever that
 *    attempt wrote after it, so every input appears exactly once in the shard's outputs;
 *  - outputs are written into `<shard>.partial/` and renamed to `<shard>/` in one step at the end, with
 *    done.json: the result, plus the model output and preprocessing it scored with (for summary.json;
 *    they stay out of the result, hence out of the workflow's history).
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { MetricMeter } from '@temporalio/common';

import { readShardManifest } from '../src/batch/input-listing';
import { batchModelRecord } from '../src/batch/model-record';
import { BatchLayout, SHARD_FILES } from '../src/batch/output-layout';
import { EMPTY_CHECKPOINT, scoreShard } from '../src/batch/shard-scorer';
import { readJsonFile } from '../src/json-file';
import { readOverrides } from '../src/model/model-info';
import type { ClassifierPool } from '../src/scoring/classifier-pool';
import type { ShardCheckpoint, ShardRecord, ShardResult, ShardTask } from '../src/shared/batch-types';
import { failingPermanently } from './failures';
import { HeartbeatKeeper } from './heartbeat';
import { ShardProgressReporter } from './shard-progress';
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
      const layout = new BatchLayout(task.outputDir);
      const finalDir = layout.shardDir(task.shard);
      const done = await readJsonFile<ShardRecord>(path.join(finalDir, SHARD_FILES.done));
      if (done) return withoutModel(done);

      const classifier = await failingPermanently(async () =>
        classifiers.get(task.modelPath, task.modelDigest, await readOverrides(task)),
      );
      if (task.requireCuda && classifier.executionProvider !== 'cuda') {
        throw ApplicationFailure.nonRetryable(
          `Job "${task.jobName}" requires CUDA but worker ${workerName} runs the model on ${classifier.executionProvider}. ` +
            'Start GPU workers with --gpu (and the CUDA 12 provider installed), or drop --gpu from the job.',
          FailureType.CudaUnavailable,
        );
      }
      const metrics = scoringMetrics(ctx.metricMeter.withTags({ execution_provider: classifier.executionProvider }));
      metrics.provider.set(1);
      const inputs = await readShardManifest(layout.shardManifest(task.shard, task.manifestDir));

      // Resume from the last checkpoint this shard heartbeated, if the partial outputs are still there.
      const partialDir = layout.shardPartialDir(task.shard);
      const previous = ctx.info.heartbeatDetails as ShardCheckpoint | undefined;
      const from = previous && (await sizesAtLeast(partialDir, previous)) ? previous : EMPTY_CHECKPOINT;
      if (from === EMPTY_CHECKPOINT) await fs.rm(partialDir, { recursive: true, force: true });
      await fs.mkdir(partialDir, { recursive: true });
      if (from.itemsDone > 0) {
        log.info('Resuming shard from checkpoint', {
          shard: task.shard,
          itemsDone: from.itemsDone,
          attempt: ctx.info.attempt,
        });
      }

      const predictions = await openAt(path.join(partialDir, SHARD_FILES.predictions), from.predictionsBytes);
      const errors = await openAt(path.join(partialDir, SHARD_FILES.errors), from.errorsBytes);
      const raw = task.rawOutputs ? await openAt(path.join(partialDir, SHARD_FILES.raw), from.rawBytes) : undefined;
      const started = performance.now();
      const reporter = new ShardProgressReporter(ctx, task.shard, (task.progressIntervalSeconds ?? 10) * 1000);
      const everyMs = heartbeatEveryMs ?? Math.min(5_000, Math.max(100, (ctx.info.heartbeatTimeoutMs ?? 20_000) / 4));
      let latest = from;
      const keeper = new HeartbeatKeeper(ctx, everyMs, () => latest);
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
          onCheckpoint: (checkpoint) => {
            latest = checkpoint;
            keeper.beat(checkpoint);
            reporter.update(checkpoint);
          },
          onBatch: (batch) => {
            metrics.items.withTags({ outcome: 'ok' }).add(batch.ok);
            if (batch.failed > 0) metrics.items.withTags({ outcome: 'failed' }).add(batch.failed);
            if (batch.ok > 0) metrics.inferenceLatency.record(batch.inferMs);
            metrics.batchSize.record(batch.ok);
          },
          signal: ctx.cancellationSignal,
        });
        await Promise.all([predictions.sync(), errors.sync(), raw?.sync()]);
      } finally {
        keeper.stop();
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

function withoutModel({ model: _model, ...result }: ShardRecord): ShardResult {
  return result;
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

/** Opens (creating) a file for writing at explicit offsets, truncated to `length`. */
async function openAt(file: string, length: number): Promise<fs.FileHandle> {
  const handle = await fs.open(file, fsConstants.O_RDWR | fsConstants.O_CREAT);
  await handle.truncate(length);
  return handle;
}
