/**
 * The batchScore workflow: list the inputs into shards (control worker), score the shards on the GPU
 * task queue through a sliding window of at most `maxShardsInFlight`, then gather the outputs and
 * write summary.json. The workflow only ever sees counts and shard numbers.
 *
 * History stays small for any input size: after SHARDS_PER_RUN shards (or HISTORY_EVENTS_PER_RUN events,
 * whichever comes first) the workflow drains its window and continues as new, carrying only counters.
 * A `progress` query answers at any time; it counts the items done inside running shards too, which
 * each shard reports by signal every progressIntervalSeconds (SHARD_PROGRESS_SIGNAL).
 *
 * The job keeps a cost ledger (cost.ts); with a budget, once it is spent no shard is started, the shards in
 * flight finish, the done ones are gathered, and the job ends `stopped` with what a resume needs.
 */
import {
  ApplicationFailure,
  continueAsNew,
  defineQuery,
  defineSignal,
  log,
  proxyActivities,
  setHandler,
  setWorkflowOptions,
  workflowInfo,
} from '@temporalio/workflow';

import type { createBatchActivities } from '../../activities/batch';
import { SHARD_PROGRESS_SIGNAL } from '../../src/shared/batch-types';
import type {
  BatchCarryOver,
  BatchProgress,
  BatchScoreInput,
  BatchSummary,
  BudgetStop,
  ShardProgress,
} from '../../src/shared/batch-types';
import type { BatchCost } from '../../src/shared/cost-types';
import { rootMessage } from '../../src/shared/failure-message';
import { FailureType } from '../../src/shared/failure-types';
import { resolveOutputTemplate } from '../../src/shared/output-template';
import { TemporalScheduledStartTime } from '../../src/shared/search-attributes';
import { JobProgress } from './progress';
import { scoreShards, thresholdExceeded } from './window';

export const progressQuery = defineQuery<BatchProgress>('progress');
export const shardProgressSignal = defineSignal<[ShardProgress]>(SHARD_PROGRESS_SIGNAL);

export type BatchOutcome = Omit<BatchSummary, 'shardTimings'> & {
  /** The cost ledger summed at the end, and the budget (docs/costs.md). */
  cost?: BatchCost;
  /** Set when the budget stopped the job before every shard was scored. */
  stopped?: BudgetStop;
};

const control = proxyActivities<ReturnType<typeof createBatchActivities>>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});

// Auto-upgrade: a job moves to the current worker version at its next workflow task, and each
// continue-as-new run starts there; its changes are guarded with patched() and checked by the replay test.
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, batchScore);
export async function batchScore(rawInput: BatchScoreInput, carry?: BatchCarryOver): Promise<BatchOutcome> {
  // The output path may be a template of the *scheduled* time (a schedule's slot), so that a re-run or a
  // backfill of the same slot overwrites that slot's output. Resolved once; later runs carry the result.
  const input: BatchScoreInput = carry
    ? rawInput
    : { ...rawInput, outputDir: resolveOutputTemplate(rawInput.outputDir, slotTime()) };
  const job = new JobProgress(input, carry);
  setHandler(progressQuery, () => job.current());
  setHandler(shardProgressSignal, (p) => job.shardReported(p));
  job.show();

  const prepared = carry?.prepared ?? (await control.prepareBatch(input, workflowInfo().firstExecutionRunId));
  job.listed(prepared);

  const { next, failure } = await scoreShards(input, prepared, job, carry?.nextShard ?? 0);
  const stoppedByBudget = failure === undefined && job.cost.reached && next < prepared.shardCount;
  if (failure === undefined && !stoppedByBudget && !thresholdExceeded(job, input) && next < prepared.shardCount) {
    log.info('Continuing as new', { nextShard: next, shardsDone: job.progress.shardsDone });
    return continueAsNew<typeof batchScore>(input, job.carryOver(prepared, next));
  }

  job.setStage('summarising');
  const summary = await control.summariseBatch(input, prepared, job.startedAt, job.shardOwners);
  job.progress.summaryPath = summary.summaryFile;
  if (failure !== undefined) {
    job.setStage('failed');
    throw ApplicationFailure.create({
      type: FailureType.ShardFailed,
      message:
        `Batch job "${input.name}" stopped: a shard could not be scored (${rootMessage(failure)}). ` +
        `Finished shards are kept in ${input.outputDir}.`,
      nonRetryable: true,
      cause: failure instanceof Error ? failure : undefined,
    });
  }
  if (thresholdExceeded(job, input)) {
    job.setStage('failed');
    throw ApplicationFailure.nonRetryable(
      `Batch job "${input.name}" failed: ${job.progress.itemsFailed} input(s) could not be scored, over the error ` +
        `threshold (${describeThreshold(input.errorThreshold)}). See ${summary.errorsFile} for each input and its reason.`,
      FailureType.ErrorThresholdExceeded,
    );
  }
  if (stoppedByBudget) {
    job.setStage('stopped');
    const cost = job.cost.summary();
    const stopped: BudgetStop = {
      by: 'budget',
      spent: cost.total,
      budget: cost.budgetState!.budget,
      currency: cost.currency,
      shardsLeft: prepared.shardCount - next,
      resume: { input, carry: job.carryOver(prepared, next) },
    };
    log.warn('Stopped by budget', { spent: stopped.spent, budget: stopped.budget, shardsLeft: stopped.shardsLeft });
    return { ...summary, cost, stopped };
  }
  job.setStage('done');
  return { ...summary, cost: job.cost.summary() };
}

/** The scheduled time of this run's slot when a schedule started it, else when the workflow started. */
function slotTime(): Date {
  return workflowInfo().typedSearchAttributes.get(TemporalScheduledStartTime) ?? workflowInfo().runStartTime;
}

function describeThreshold(threshold: number): string {
  return threshold < 1 ? `${threshold * 100}% of inputs` : `${threshold} input(s)`;
}
