/**
 * The GPU worker's activity: score one shard of a batch job. Idempotent and resumable: a finished shard
 * is returned as is; otherwise the shard runner (./shard-runner.ts) runs a new attempt in the job's
 * store: the output directory's files (./file-shard.ts: fenced attempt directories, resumed from the last
 * heartbeated checkpoint) or Blob Storage (./blob-shard.ts: attempt-scoped blobs).
 */
import os from 'node:os';

import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { MetricMeter } from '@temporalio/common';

import { assertInsideAllowedRoots } from '../src/allowed-roots';
import type { DecodeSplit, SplitInputs } from '../src/batch/decode-split';
import { SplitRegistry } from '../src/batch/split-registry';
import { readOverrides } from '../src/model/model-info';
import type { ClassifierPool } from '../src/scoring/classifier-pool';
import type { ImageScript } from '../src/script/batch-app';
import type { ScriptProcessPool } from '../src/script/batch-pool';
import { cores, resolveThreading, uvThreadpoolSize } from '../src/scoring/thread-tuning';
import type { ShardRecord, ShardResult, ShardTask } from '../src/shared/batch-types';
import { FailureType } from '../src/shared/failure-types';
import { isBlobLocation } from '../src/storage/blob-location';
import { withLocalModel } from '../src/storage/blob-model';
import { BlobBatchOutput } from '../src/storage/blob-output';
import { blobShardStore } from './blob-shard';
import { failingPermanently } from './failures';
import { fileShardStore } from './file-shard';
import { runScriptShard } from './script-shard';
import { classifierScorer, runShard } from './shard-runner';

export interface ScoringActivityDeps {
  classifiers: ClassifierPool;
  /** Shown in results and logs; defaults to host:pid. */
  workerName?: string;
  /**
   * How often a shard heartbeats its last checkpoint between batches (default: a quarter of the
   * heartbeat timeout, at most 5 s). Inference runs off the main thread, so this goes on during a batch.
   */
  heartbeatEveryMs?: number;
  /** Script jobs' Python processes, one per scoring slot (absent: this worker refuses script jobs). */
  scripts?: ScriptProcessPool;
  /** Where script jobs' Python environments are built (INFERCTL_PYTHON_ENVS, else under the inferctl home). */
  pythonEnvs?: string;
  /** The script job built into this worker's image (gpu-worker --script-bundle), on a job-owned AKS pool. */
  imageScript?: ImageScript;
  /**
   * The onnxruntime intra-op thread settings the decode split measures in this process's first batches
   * (src/batch/decode-split.ts), the sessions' own first; default: only the sessions' own (resolveThreading's).
   * More than one needs a pool whose config allows intraOpVariants.
   */
  intraOpSettings?: number[];
}

export function createScoringActivities({
  classifiers,
  workerName = `${os.hostname()}:${process.pid}`,
  heartbeatEveryMs,
  scripts,
  pythonEnvs,
  imageScript,
  intraOpSettings,
}: ScoringActivityDeps) {
  // One decode split per model, spec and provider, kept while the process lives (src/batch/split-registry.ts).
  const decodeSplits = new SplitRegistry({
    cores: cores(),
    decodeSlots: uvThreadpoolSize(),
    intraOpSettings: intraOpSettings ?? [resolveThreading(classifiers.config).intraOpNumThreads],
    onChoice: logDecodeSplit,
  });
  return {
    async scoreShard(task: ShardTask): Promise<ShardResult> {
      const ctx = Context.current();
      // This worker's own roots (it may have other ones than the control worker that validated the job).
      await failingPermanently(() => {
        if (!isBlobLocation(task.outputDir)) assertInsideAllowedRoots('output directory', task.outputDir);
        // A script built into the image reads its model from there (the image's path, not the job's).
        if (!isBlobLocation(task.modelPath) && !task.script?.inImage) assertInsideAllowedRoots('model', task.modelPath);
        if (task.labelsPath && !isBlobLocation(task.labelsPath))
          assertInsideAllowedRoots('labels file', task.labelsPath);
        return Promise.resolve();
      });
      const store = isBlobLocation(task.outputDir)
        ? blobShardStore(new BlobBatchOutput(task.outputDir))
        : fileShardStore(task.outputDir);
      const done = await store.doneRecord(task.shard);
      if (done) return withoutModel(done);
      const everyMs = heartbeatEveryMs ?? Math.min(5_000, Math.max(100, (ctx.info.heartbeatTimeoutMs ?? 20_000) / 4));
      if (task.script) {
        if (!scripts || !pythonEnvs) {
          throw ApplicationFailure.nonRetryable(
            `Worker ${workerName} cannot run scoring scripts; start GPU workers with inferctl gpu-worker.`,
            FailureType.InvalidBatchJob,
          );
        }
        const metrics = scoringMetrics(ctx.metricMeter.withTags({ execution_provider: 'script' }));
        return runScriptShard(
          store,
          { ...task, script: task.script },
          {
            scripts,
            envCache: pythonEnvs,
            ...(imageScript ? { imageScript } : {}),
            workerName,
            everyMs,
            onBatch: countItems(metrics),
          },
        );
      }

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
      const split = decodeSplits.for({
        modelDigest: classifier.info.digest,
        preprocess: classifier.info,
        executionProvider: classifier.executionProvider,
      });
      if (split.reused) logSplitReused(task.shard, split.splitter.chosen!, split.key);
      const scorer = classifierScorer(task, classifier, countItems(metrics), split.splitter);
      return runShard(store, { task, scorer, workerName, everyMs });
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

/** What each batch adds to the worker's metrics. */
function countItems(metrics: ReturnType<typeof scoringMetrics>) {
  return (batch: { ok: number; failed: number; inferMs: number }) => {
    metrics.items.withTags({ outcome: 'ok' }).add(batch.ok);
    if (batch.failed > 0) metrics.items.withTags({ outcome: 'failed' }).add(batch.failed);
    if (batch.ok > 0) metrics.inferenceLatency.record(batch.inferMs);
    metrics.batchSize.record(batch.ok);
  };
}

function withoutModel(record: ShardRecord): ShardResult {
  const { model: _model, ...result } = record as ShardRecord & { bytes?: unknown; attempt?: number };
  const { bytes: _bytes, attempt, ...rest } = result;
  // On blob storage the record names its attempt: the result says which attempt's output the shard's is.
  return attempt === undefined ? rest : { ...rest, attempts: attempt };
}

/** The decode split, once per process and model, with what it was chosen from. */
function logDecodeSplit(split: DecodeSplit, measured: SplitInputs, key: string): void {
  log.info('Decode concurrency chosen', {
    key,
    mode: split.mode,
    decodeConcurrency: split.decodeConcurrency,
    ...(split.intraOpThreads !== undefined ? { intraOpThreads: split.intraOpThreads } : {}),
    reason: split.reason,
    cores: measured.cores,
    decodeSlots: measured.decodeSlots,
    executionProvider: measured.executionProvider,
    decodeMsPerImage: Math.round(measured.decodeMsPerImage * 10) / 10,
    inference: measured.inference.map((m) => ({ ...m, msPerImage: Math.round(m.msPerImage * 10) / 10 })),
    inferenceShare: Math.round(split.inferenceShare * 100) / 100,
    predictedItemsPerSec: Math.round(split.predictedItemsPerSec * 10) / 10,
  });
}

/** A shard that starts with the split this process already chose for its model: no measurement batches. */
function logSplitReused(shard: number, split: DecodeSplit, key: string): void {
  log.info('Decode split reused', {
    shard,
    key,
    mode: split.mode,
    decodeConcurrency: split.decodeConcurrency,
    ...(split.intraOpThreads !== undefined ? { intraOpThreads: split.intraOpThreads } : {}),
  });
}
