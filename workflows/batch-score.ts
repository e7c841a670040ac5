/**
 * The batchScore workflow: list the inputs into shards (control worker), score the shards on the GPU
 * task queue through a sliding window of at most `maxShardsInFlight`, then gather the outputs and
 * write summary.json. The workflow only ever sees counts and shard numbers.
 *
 * History stays small for any input size: after SHARDS_PER_RUN shards (or HISTORY_EVENTS_PER_RUN events,
 * whichever comes first) the workflow drains its window and continues as new, carrying only counters.
 * A `progress` query answers at any time; it counts the items done inside running shards too, which
 * each shard reports by signal every progressIntervalSeconds (SHARD_PROGRESS_SIGNAL).
 */
import {
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  setWorkflowOptions,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';

import type { createBatchActivities } from '../activities/batch';
import type { createScoringActivities } from '../activities/scoring';
import { rootMessage } from '../src/shared/failure-message';
import { resolveOutputTemplate } from '../src/shared/output-template';
import {
  InferctlKind,
  ItemsDone,
  ItemsTotal,
  Stage,
  TemporalScheduledStartTime,
} from '../src/shared/search-attributes';
import { GPU_TASK_QUEUE, SHARD_PROGRESS_SIGNAL } from '../src/shared/batch-types';
import type {
  BatchCarryOver,
  BatchProgress,
  BatchScoreInput,
  BatchSummary,
  ShardProgress,
  ShardResult,
} from '../src/shared/batch-types';
import { FailureType } from '../src/shared/failure-types';

type BatchActivities = ReturnType<typeof createBatchActivities>;
type ScoringActivities = ReturnType<typeof createScoringActivities>;

export const progressQuery = defineQuery<BatchProgress>('progress');
export const shardProgressSignal = defineSignal<[ShardProgress]>(SHARD_PROGRESS_SIGNAL);

/** Shards scheduled per run before continue-as-new: ~6 history events each keeps a run well under 10k. */
export const SHARDS_PER_RUN = 500;
/** A run that has this many events schedules no more shards (progress signals add events as time passes). */
export const HISTORY_EVENTS_PER_RUN = 7_000;

export type BatchOutcome = Omit<BatchSummary, 'shardTimings'>;

// Auto-upgrade: a job moves to the current worker version at its next workflow task, and each
// continue-as-new run starts there; its changes are guarded with patched() and checked by the replay test.
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, batchScore);
export async function batchScore(rawInput: BatchScoreInput, carry?: BatchCarryOver): Promise<BatchOutcome> {
  // The output path may be a template of the *scheduled* time (a schedule's slot), so that a re-run or a
  // backfill of the same slot overwrites that slot's output. Resolved once; later runs carry the result.
  const input: BatchScoreInput = carry
    ? rawInput
    : { ...rawInput, outputDir: resolveOutputTemplate(rawInput.outputDir, slotTime()) };
  const control = proxyActivities<BatchActivities>({
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '2 minutes',
    retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
  });
  const gpu = proxyActivities<ScoringActivities>({
    taskQueue: input.gpuTaskQueue ?? GPU_TASK_QUEUE,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: `${input.heartbeatTimeoutSeconds ?? 30}s`,
    retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 },
    summary: 'Score one shard',
  });

  const startedAt = carry?.startedAt ?? new Date(Date.now()).toISOString();
  const progress: BatchProgress = {
    name: input.name,
    stage: carry ? 'scoring' : 'listing',
    totalItems: carry?.prepared.totalItems ?? 0,
    itemsDone: (carry?.itemsOk ?? 0) + (carry?.itemsFailed ?? 0),
    itemsFailed: carry?.itemsFailed ?? 0,
    shardCount: carry?.prepared.shardCount ?? 0,
    shardsDone: carry?.shardsDone ?? 0,
    shardsInFlight: 0,
    startedAt,
    executionProvider: carry?.executionProvider,
  };
  const indexed = workflowInfo().typedSearchAttributes.get(InferctlKind) !== undefined;
  let indexedTenth = -1;
  /** Upserts stage and counts, at most once per 10% of progress (each upsert is a history event). */
  const index = (force = false) => {
    if (!indexed) return;
    const tenth = progress.totalItems > 0 ? Math.floor((10 * progress.itemsDone) / progress.totalItems) : 0;
    if (!force && tenth === indexedTenth) return;
    indexedTenth = tenth;
    upsertSearchAttributes([
      { key: Stage, value: progress.stage },
      { key: ItemsTotal, value: progress.totalItems },
      { key: ItemsDone, value: progress.itemsDone },
    ]);
  };
  // Items done inside each running shard, by shard number (only shards this run has in flight).
  const inShard = new Map<number, ShardProgress>();
  const inFlight = new Set<number>();
  const countInShards = () => {
    let done = 0;
    let failed = 0;
    for (const p of inShard.values()) {
      done += p.itemsDone;
      failed += p.itemsFailed;
    }
    return { done, failed };
  };
  /** Progress as answered: finished shards' counts plus what running shards reported. */
  const current = (): BatchProgress => {
    const { done, failed } = countInShards();
    return {
      ...progress,
      itemsDone: progress.itemsDone + done,
      itemsFailed: progress.itemsFailed + failed,
      itemsInRunningShards: done,
    };
  };
  const show = (force = false) => {
    setCurrentDetails(describe(current()));
    index(force);
  };
  setHandler(progressQuery, current);
  setHandler(shardProgressSignal, (p) => {
    if (!inFlight.has(p.shard)) return; // finished already, or not this run's
    if ((inShard.get(p.shard)?.itemsDone ?? -1) >= p.itemsDone) return; // an older report, arriving late
    inShard.set(p.shard, p);
    show();
  });
  show();

  const prepared = carry?.prepared ?? (await control.prepareBatch(input, workflowInfo().firstExecutionRunId));
  progress.totalItems = prepared.totalItems;
  progress.shardCount = prepared.shardCount;
  progress.stage = 'scoring';
  show(true);

  let next = carry?.nextShard ?? 0;
  const stopAt = Math.min(prepared.shardCount, next + SHARDS_PER_RUN);
  let itemsOk = carry?.itemsOk ?? 0;
  // Which attempt's output is each shard's: the attempt whose result Temporal accepted (a lost attempt's
  // completion is refused). Only shards not done by attempt 1 are listed, so this stays small.
  const shardOwners: Record<string, number> = { ...carry?.shardOwners };
  let shardFailure: unknown;
  const exceeded = () => overThreshold(progress.itemsFailed, prepared.totalItems, input.errorThreshold);

  const running: Promise<void>[] = [];
  const historyFull = () => workflowInfo().historyLength >= HISTORY_EVENTS_PER_RUN;
  while (next < stopAt && shardFailure === undefined && !exceeded() && !historyFull()) {
    await condition(() => progress.shardsInFlight < input.maxShardsInFlight);
    if (shardFailure !== undefined || exceeded() || historyFull()) break;
    const shard = next++;
    progress.shardsInFlight++;
    inFlight.add(shard);
    running.push(
      gpu
        .scoreShard({
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
          ...(input.progressIntervalSeconds !== undefined
            ? { progressIntervalSeconds: input.progressIntervalSeconds }
            : {}),
          ...(input.preprocess ? { preprocess: input.preprocess } : {}),
          ...(input.labelsPath ? { labelsPath: input.onWorkers?.labelsPath ?? input.labelsPath } : {}),
        })
        .then(
          (r: ShardResult) => {
            itemsOk += r.itemsOk;
            if (r.attempts !== 1) shardOwners[String(shard)] = r.attempts;
            progress.itemsFailed += r.itemsFailed;
            progress.itemsDone += r.itemsOk + r.itemsFailed;
            progress.shardsDone++;
            progress.executionProvider ??= r.executionProvider;
          },
          (err: unknown) => {
            shardFailure ??= err;
          },
        )
        .finally(() => {
          progress.shardsInFlight--;
          inFlight.delete(shard);
          inShard.delete(shard);
          show();
        }),
    );
  }
  await Promise.all(running);

  if (shardFailure === undefined && !exceeded() && next < prepared.shardCount) {
    log.info('Continuing as new', { nextShard: next, shardsDone: progress.shardsDone });
    return continueAsNew<typeof batchScore>(input, {
      prepared,
      nextShard: next,
      shardsDone: progress.shardsDone,
      itemsOk,
      itemsFailed: progress.itemsFailed,
      startedAt,
      executionProvider: progress.executionProvider,
      ...(Object.keys(shardOwners).length > 0 ? { shardOwners } : {}),
    });
  }

  progress.stage = 'summarising';
  show(true);
  const summary = await control.summariseBatch(input, prepared, startedAt, shardOwners);
  progress.summaryPath = summary.summaryFile;

  if (shardFailure !== undefined) {
    progress.stage = 'failed';
    show(true);
    throw ApplicationFailure.create({
      type: FailureType.ShardFailed,
      message:
        `Batch job "${input.name}" stopped: a shard could not be scored (${rootMessage(shardFailure)}). ` +
        `Finished shards are kept in ${input.outputDir}.`,
      nonRetryable: true,
      cause: shardFailure instanceof Error ? shardFailure : undefined,
    });
  }
  if (exceeded()) {
    progress.stage = 'failed';
    show(true);
    throw ApplicationFailure.nonRetryable(
      `Batch job "${input.name}" failed: ${progress.itemsFailed} input(s) could not be scored, over the error threshold ` +
        `(${describeThreshold(input.errorThreshold)}). See ${summary.errorsFile} for each input and its reason.`,
      FailureType.ErrorThresholdExceeded,
    );
  }
  progress.stage = 'done';
  show(true);
  return summary;
}

/** The scheduled time of this run's slot when a schedule started it, else when the workflow started. */
function slotTime(): Date {
  return workflowInfo().typedSearchAttributes.get(TemporalScheduledStartTime) ?? workflowInfo().runStartTime;
}

/** Like Azure ML batch's error_threshold: -1 ignores errors, (0, 1) is a fraction of all inputs, ≥ 1 a count. */
export function overThreshold(failed: number, total: number, threshold: number): boolean {
  if (threshold < 0) return false;
  if (threshold < 1) return failed > threshold * total;
  return failed > threshold;
}

function describeThreshold(threshold: number): string {
  return threshold < 1 ? `${threshold * 100}% of inputs` : `${threshold} input(s)`;
}

function describe(p: BatchProgress): string {
  const pct = p.totalItems > 0 ? ((100 * p.itemsDone) / p.totalItems).toFixed(1) : '0.0';
  const lines = [
    `- **Stage:** ${p.stage}`,
    `- **Items:** ${p.itemsDone} / ${p.totalItems} (${pct}%), ${p.itemsFailed} failed`,
    `- **Shards:** ${p.shardsDone} / ${p.shardCount} done, ${p.shardsInFlight} in flight`,
  ];
  if (p.executionProvider) lines.push(`- **Execution provider:** ${p.executionProvider}`);
  if (p.summaryPath) lines.push(`- **Summary:** ${p.summaryPath}`);
  return lines.join('\n');
}
