/**
 * Starting a batch job on your own GPU workers and following it: a live progress bar from its `progress`
 * query, then its summary (with its cost) or why it failed. Used by `score` and `score resume`.
 */
import path from 'node:path';

import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';

import { batchScore, progressQuery } from '../../../workflows/batch-score';
import type { BatchOutcome } from '../../../workflows/batch-score';
import { batchWorkflowId } from '../../shared/batch-types';
import type { BatchCarryOver, BatchScoreInput } from '../../shared/batch-types';
import { CONTROL_TASK_QUEUE } from '../../shared/deploy-types';
import { formatDuration } from '../../shared/duration';
import { InferctlKind, ItemsDone, ModelName, Stage } from '../../shared/search-attributes';
import { webUiUrl } from '../../temporal/connection';
import { searchAttributeText } from '../../temporal/search-attribute-privacy';
import { batchCostLines } from '../batch-cost';
import { CliError } from '../cli-error';
import type { CommandContext } from '../client-context';
import { workflowFailureExitCode } from '../exit-codes';
import { describeFailure } from '../output';
import type { Output } from '../output';
import { createProgressRenderer } from '../progress';
import { ResultWatch } from '../result-watch';
import { startIndexed } from '../start-workflow';
import { skippedLine } from './score-jobs';

export interface ScoreCommandResult {
  workflowId: string;
  uiUrl: string;
  summary?: BatchOutcome;
}

export interface StartBatchOptions {
  input: BatchScoreInput;
  taskQueue?: string;
  detach: boolean;
  /** `score resume`: the stopped job's carry-over (its done shards are skipped, its ledger carried on). */
  carry?: BatchCarryOver;
}

/** Starts a job on your own GPU workers (workflow `score-<name>`) and follows it unless detached. */
export async function startBatchJob(ctx: CommandContext, opts: StartBatchOptions): Promise<ScoreCommandResult> {
  const { input } = opts;
  const name = input.name;
  const workflowId = batchWorkflowId(name);
  let handle: WorkflowHandle;
  try {
    handle = await startIndexed(
      ctx.client,
      batchScore,
      {
        taskQueue: opts.taskQueue ?? CONTROL_TASK_QUEUE,
        workflowId,
        args: opts.carry ? [input, opts.carry] : [input],
        staticSummary: `Score ${path.basename(input.inputPath)} with ${path.basename(input.modelPath)} → ${input.outputDir}`,
        staticDetails: [
          `- **Model:** ${input.modelPath}`,
          `- **Input:** ${input.inputPath}`,
          `- **Output:** ${input.outputDir}`,
          `- **Shards:** ${input.shardSize} inputs each, ${input.maxShardsInFlight} in flight, batches of ${input.batchSize}`,
          `- **GPU queue:** ${input.gpuTaskQueue}`,
        ].join('\n'),
      },
      [
        { key: InferctlKind, value: 'batch-score' },
        { key: ModelName, value: searchAttributeText(path.basename(input.modelPath)) },
        { key: Stage, value: 'listing' },
        { key: ItemsDone, value: 0 },
      ],
      ctx.out,
    );
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new CliError(
        `A batch job named "${name}" is already running (workflow ${workflowId}). Pick another --name.`,
      );
    }
    throw err;
  }
  const uiUrl = webUiUrl({ namespace: ctx.namespace, workflowId });
  ctx.out.line(`Started ${workflowId}`);
  ctx.out.line(`Web UI: ${uiUrl}`);
  if (opts.detach) {
    ctx.out.line(`Follow it with: inferctl score status ${name}`);
    return { workflowId, uiUrl };
  }
  const summary = await followBatch(handle, ctx.out, input.gpuTaskQueue!);
  return { workflowId, uiUrl, summary };
}

/** True once a GPU worker has picked up one of the job's shards (its activity has a start time). */
async function anyShardStarted(handle: WorkflowHandle): Promise<boolean> {
  const { raw } = await handle.describe();
  return (raw.pendingActivities ?? []).some((a) => a.lastStartedTime != null);
}

/** Polls `progress` and shows it (see ../progress) until the job ends; returns its summary or throws why it failed. */
export async function followBatch(
  handle: WorkflowHandle,
  out: Output,
  gpuQueue: string,
  { showCost = true }: { showCost?: boolean } = {},
): Promise<BatchOutcome> {
  const watch = new ResultWatch<BatchOutcome>(handle);
  const progress = createProgressRenderer(out);
  let nextHintCheck = Date.now() + 10_000;
  let hinted = false;
  let warned = false;
  try {
    while (!watch.ended) {
      try {
        const p = await handle.query(progressQuery);
        // The hint is for a job no GPU worker has picked up; looked for at most every 10 s.
        if (p.stage === 'scoring' && p.itemsDone === 0 && !hinted && Date.now() >= nextHintCheck) {
          nextHintCheck = Date.now() + 10_000;
          if (p.shardsDone === 0 && !(await anyShardStarted(handle))) {
            progress.note(
              `No shard has started yet. Is a GPU worker polling "${gpuQueue}"? Start one with: inferctl gpu-worker`,
            );
            hinted = true;
          }
        }
        const budget = p.cost?.budgetState;
        if (budget && budget.state !== 'ok' && !warned) {
          warned = true;
          progress.note(`WARNING: ${batchCostLines(p.cost)[1] ?? 'budget 80 % spent'}`);
        }
        progress.update(p);
      } catch {
        // No run answered yet (starting, or between continue-as-new runs).
      }
      await watch.pause(500);
    }
  } finally {
    progress.stop();
    watch.stop();
  }
  const outcome = watch.outcome;
  if (!outcome) throw new CliError(describeFailure(watch.failure), workflowFailureExitCode(watch.failure));
  out.line(
    `Scored ${outcome.itemsOk} of ${outcome.totalItems} inputs (${outcome.itemsFailed} failed) in ${formatDuration(outcome.wallSeconds * 1000)}: ` +
      `${outcome.itemsPerSecond} items/s on ${outcome.executionProvider}.`,
  );
  if (outcome.skippedFiles) out.line(skippedLine(outcome.skippedFiles));
  if (showCost) for (const line of batchCostLines(outcome.cost)) out.line(`${line[0]!.toUpperCase()}${line.slice(1)}`);
  out.line(`Predictions: ${outcome.predictionsFile}`);
  if (outcome.itemsFailed > 0) out.line(`Errors:      ${outcome.errorsFile}`);
  out.line(`Summary:     ${outcome.summaryFile}`);
  return outcome;
}
