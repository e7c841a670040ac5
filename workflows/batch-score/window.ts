/**
 * The sliding window over a batch job's shards: at most `maxShardsInFlight` shards scored at once on the GPU
 * task queue, a new one started as each finishes, until this run's share of the shards is scheduled, a
 * shard fails, the error threshold is crossed, the budget is spent (checked before each shard: shards in
 * flight finish), or the run's history is full (then the job continues as new).
 */
import { condition, proxyActivities, workflowInfo } from '@temporalio/workflow';

import type { createScoringActivities } from '../../activities/scoring';
import { GPU_TASK_QUEUE } from '../../src/shared/batch-types';
import type { BatchScoreInput, PreparedBatch, ShardResult, ShardTask } from '../../src/shared/batch-types';
import type { JobProgress } from './progress';

/** Shards scheduled per run before continue-as-new: ~6 history events each keeps a run well under 10k. */
export const SHARDS_PER_RUN = 500;
/** A run that has this many events schedules no more shards (progress signals add events as time passes). */
export const HISTORY_EVENTS_PER_RUN = 7_000;

/** Where the window stopped: the first shard not scheduled, and the first shard failure if any. */
export interface WindowEnd {
  next: number;
  failure: unknown;
}

/** Like Azure ML batch's error_threshold: -1 ignores errors, (0, 1) is a fraction of all inputs, ≥ 1 a count. */
export function overThreshold(failed: number, total: number, threshold: number): boolean {
  if (threshold < 0) return false;
  if (threshold < 1) return failed > threshold * total;
  return failed > threshold;
}

/** The job's failed inputs (finished shards) are over its error threshold. */
export function thresholdExceeded(job: JobProgress, input: BatchScoreInput): boolean {
  return overThreshold(job.progress.itemsFailed, job.progress.totalItems, input.errorThreshold);
}

/** Scores shards `first`… through the window; returns once every shard it started has settled. */
export async function scoreShards(
  input: BatchScoreInput,
  prepared: PreparedBatch,
  job: JobProgress,
  first: number,
): Promise<WindowEnd> {
  const gpu = gpuActivities(input);
  const stopAt = Math.min(prepared.shardCount, first + SHARDS_PER_RUN);
  let next = first;
  let failure: unknown;
  const historyFull = () => workflowInfo().historyLength >= HISTORY_EVENTS_PER_RUN;
  const stop = () => {
    job.cost.check();
    return failure !== undefined || thresholdExceeded(job, input) || job.cost.reached || historyFull();
  };
  const running: Promise<void>[] = [];
  while (next < stopAt && !stop()) {
    await condition(() => job.progress.shardsInFlight < input.maxShardsInFlight);
    if (stop()) break;
    const shard = next++;
    job.shardStarted(shard);
    running.push(
      gpu
        .scoreShard(shardTask(input, prepared, shard))
        .then(
          (r: ShardResult) => job.shardScored(shard, r),
          (err: unknown) => {
            failure ??= err;
          },
        )
        .finally(() => job.shardSettled(shard)),
    );
  }
  await Promise.all(running);
  return { next, failure };
}

function gpuActivities(input: BatchScoreInput) {
  return proxyActivities<ReturnType<typeof createScoringActivities>>({
    taskQueue: input.gpuTaskQueue ?? GPU_TASK_QUEUE,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: `${input.heartbeatTimeoutSeconds ?? 30}s`,
    retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 },
    summary: 'Score one shard',
  });
}

/** What a GPU worker needs to score one shard: file references and settings, never the data. */
function shardTask(input: BatchScoreInput, prepared: PreparedBatch, shard: number): ShardTask {
  return {
    jobName: input.name,
    shard,
    baseIndex: shard * input.shardSize,
    manifestDir: prepared.manifestDir,
    outputDir: input.outputDir,
    modelPath: input.onWorkers?.modelPath ?? input.modelPath,
    modelDigest: prepared.modelDigest,
    batchSize: input.batchSize,
    topK: input.topK,
    rawOutputs: input.rawOutputs ?? false,
    requireCuda: input.requireCuda ?? false,
    ...(input.progressIntervalSeconds !== undefined ? { progressIntervalSeconds: input.progressIntervalSeconds } : {}),
    ...(input.preprocess ? { preprocess: input.preprocess } : {}),
    ...(input.labelsPath ? { labelsPath: input.onWorkers?.labelsPath ?? input.labelsPath } : {}),
    ...(input.script
      ? { script: input.onWorkers?.scriptInImage ? { ...input.script, inImage: true } : input.script }
      : {}),
  };
}
