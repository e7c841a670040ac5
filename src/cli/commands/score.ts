/**
 * `inferctl score`: start a batch scoring job and show a live progress bar from its `progress` query;
 * `inferctl score status <name>` and `inferctl score list`: where jobs stand (score-jobs.ts).
 */
import path from 'node:path';

import type { Command } from '@commander-js/extra-typings';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';

import { progressQuery } from '../../../workflows/batch-score';
import { batchScore } from '../../../workflows/batch-score';
import type { BatchOutcome } from '../../../workflows/batch-score';
import { GPU_TASK_QUEUE, batchWorkflowId } from '../../shared/batch-types';
import type { BatchScoreInput } from '../../shared/batch-types';
import { CONTROL_TASK_QUEUE } from '../../shared/deploy-types';
import { webUiUrl } from '../../temporal/connection';
import { InferctlKind, ItemsDone, ModelName, Stage } from '../../shared/search-attributes';
import { searchAttributeText } from '../../temporal/search-attribute-privacy';
import { formatDuration } from '../../shared/duration';
import { addBatchJobOptions, batchJobFlags, jobLocation } from '../batch-flags';
import type { BatchJobFlags } from '../batch-flags';
import { CliError } from '../cli-error';
import { workflowFailureExitCode } from '../exit-codes';
import { withClient } from '../client-context';
import type { CommandContext } from '../client-context';
import { createOutput, describeFailure, type Output } from '../output';
import { createProgressRenderer } from '../progress';
import { ResultWatch } from '../result-watch';
import { startIndexed } from '../start-workflow';
import { nameFromModel } from '../deployment-name';
import { gpuPoolFlags, scoreOnAksCommand, scoreOnAksDryRun } from './score-aks';
import { addScoreJobCommands, skippedLine } from './score-jobs';

/** `inferctl score` and `inferctl score status`: flags in, command functions out. */
export function addScoreCommands(program: Command): void {
  const score = addBatchJobOptions(
    program
      .command('score')
      .description('Score a directory or manifest of images with a model on the GPU workers, with a live progress bar'),
    'where predictions.jsonl, errors.jsonl and summary.json go: a directory, or a blob prefix az://<account>/<container>/<prefix>',
  )
    .option('-n, --name <name>', 'job name; the workflow id is score-<name> (default: from the input and the time)')
    .option('--task-queue <queue>', 'control worker task queue', CONTROL_TASK_QUEUE)
    .option('--detach', 'start and return at once')
    .option('--keep-shards', 'keep the per-shard outputs and the manifest copy after the merge (default: removed)')
    .option('--json', 'print one JSON document')
    .option('--target <target>', 'where the GPU workers run: local (yours) or aks (a GPU pool the job adds)', 'local')
    .option('--cluster <name>', '--target aks: the AKS cluster to add the GPU pool to (it is kept)')
    .option('--resource-group <group>', "--target aks: the cluster's resource group (default: the worker's)")
    .option('--gpu-nodes <n>', '--target aks: GPU nodes in the pool, one GPU worker each')
    .option('--gpu-vm-size <size>', '--target aks: GPU VM size (default Standard_NC4as_T4_v3)')
    .option('--dry-run', '--target aks: print the requests and the estimated GPU cost, create nothing')
    .option('--expected-hours <h>', '--dry-run: hours the job is expected to run, for its cost', Number)
    .action(async (o) => {
      const flags = batchJobFlags(o, 'score');
      if (o.target === 'aks' || o.dryRun) {
        // A job on an AKS GPU pool (score-aks.ts): the pool's lifecycle lives there.
        if (o.target !== 'aks')
          throw new CliError('--dry-run is for --target aks (local GPU workers cost nothing).', 2);
        const pool = gpuPoolFlags(o);
        const name = o.name ?? `${nameFromModel(flags.inputPath).slice(0, 24)}-${Date.now().toString(36)}`;
        const input = { ...batchJobInput(flags, name), ...(o.keepShards ? { keepShards: true } : {}) };
        delete input.gpuTaskQueue;
        if (o.dryRun) {
          await scoreOnAksDryRun({ out: createOutput(Boolean(o.json)) }, { input, pool, hours: o.expectedHours });
          return;
        }
        await withClient(Boolean(o.json), async (ctx) => {
          ctx.out.result(
            await scoreOnAksCommand(ctx, {
              input,
              pool,
              taskQueue: o.taskQueue,
              detach: Boolean(o.detach),
              follow: (batch, out) => followBatch(batch, out, 'the job’s own GPU pool'),
            }),
          );
        });
        return;
      }
      await withClient(Boolean(o.json), async (ctx) => {
        const result = await scoreCommand(ctx, {
          ...flags,
          keepShards: Boolean(o.keepShards),
          name: o.name,
          taskQueue: o.taskQueue,
          detach: Boolean(o.detach),
        });
        ctx.out.result(result);
      });
    });
  addScoreJobCommands(score);
}

export interface ScoreCommandOptions extends BatchJobFlags {
  taskQueue?: string;
  detach: boolean;
  /** Keep `<output>/shards/` and `<output>/manifest/` after a successful merge. */
  keepShards?: boolean;
}

/** The workflow input for a job; paths are made absolute here, where the user typed them. */
export function batchJobInput(flags: BatchJobFlags, name: string): BatchScoreInput {
  return {
    name,
    modelPath: jobLocation(flags.modelPath),
    inputPath: jobLocation(flags.inputPath),
    outputDir: jobLocation(flags.outputDir),
    shardSize: flags.shardSize,
    batchSize: flags.batchSize,
    maxShardsInFlight: flags.concurrency,
    errorThreshold: flags.errorThreshold,
    topK: flags.topK,
    rawOutputs: flags.rawOutputs,
    requireCuda: flags.requireCuda,
    gpuTaskQueue: flags.gpuTaskQueue ?? GPU_TASK_QUEUE,
    ...(flags.preprocess ? { preprocess: flags.preprocess } : {}),
    ...(flags.labelsPath ? { labelsPath: jobLocation(flags.labelsPath) } : {}),
    ...(flags.allFiles ? { allFiles: true } : {}),
    ...(flags.script ? { script: flags.script } : {}),
  };
}

export interface ScoreCommandResult {
  workflowId: string;
  uiUrl: string;
  summary?: BatchOutcome;
}

export async function scoreCommand(ctx: CommandContext, opts: ScoreCommandOptions): Promise<ScoreCommandResult> {
  const name = opts.name ?? `${nameFromModel(opts.inputPath).slice(0, 24)}-${Date.now().toString(36)}`;
  const input: BatchScoreInput = { ...batchJobInput(opts, name), ...(opts.keepShards ? { keepShards: true } : {}) };
  const workflowId = batchWorkflowId(name);
  let handle: WorkflowHandle;
  try {
    handle = await startIndexed(
      ctx.client,
      batchScore,
      {
        taskQueue: opts.taskQueue ?? CONTROL_TASK_QUEUE,
        workflowId,
        args: [input],
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
export async function followBatch(handle: WorkflowHandle, out: Output, gpuQueue: string): Promise<BatchOutcome> {
  const watch = new ResultWatch<BatchOutcome>(handle);
  const progress = createProgressRenderer(out);
  let nextHintCheck = Date.now() + 10_000;
  let hinted = false;
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
  out.line(`Predictions: ${outcome.predictionsFile}`);
  if (outcome.itemsFailed > 0) out.line(`Errors:      ${outcome.errorsFile}`);
  out.line(`Summary:     ${outcome.summaryFile}`);
  return outcome;
}
