/**
 * `inferctl score`: start a batch scoring job and show a live progress bar from its `progress` query;
 * `inferctl score status <name>` and `inferctl score list`: where jobs stand (score-jobs.ts).
 */
import type { Command } from '@commander-js/extra-typings';

import { GPU_TASK_QUEUE } from '../../shared/batch-types';
import type { BatchScoreInput } from '../../shared/batch-types';
import { CONTROL_TASK_QUEUE } from '../../shared/deploy-types';
import { addBatchJobOptions, batchJobFlags, jobLocation } from '../batch-flags';
import type { BatchJobFlags } from '../batch-flags';
import { batchCostInput, budgetStopError } from '../batch-cost';
import { CliError } from '../cli-error';
import { withClient } from '../client-context';
import type { CommandContext } from '../client-context';
import { createOutput } from '../output';
import { nameFromModel } from '../deployment-name';
import { gpuPoolFlags, scoreOnAksCommand, scoreOnAksDryRun } from './score-aks';
import { addScoreJobCommands } from './score-jobs';
import { addScoreResumeCommand } from './score-resume';
import { followBatch, startBatchJob } from './score-run';
import type { ScoreCommandResult } from './score-run';

export type { ScoreCommandResult } from './score-run';

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
        const input = { ...batchJobInput(flags, name, 'aks'), ...(o.keepShards ? { keepShards: true } : {}) };
        delete input.gpuTaskQueue;
        if (o.dryRun) {
          await scoreOnAksDryRun({ out: createOutput(Boolean(o.json)) }, { input, pool, hours: o.expectedHours });
          return;
        }
        await withClient(Boolean(o.json), async (ctx) => {
          const result = await scoreOnAksCommand(ctx, {
            input,
            pool,
            taskQueue: o.taskQueue,
            detach: Boolean(o.detach),
            follow: (batch, out) => followBatch(batch, out, 'the job’s own GPU pool', { showCost: false }),
          });
          ctx.out.result(result);
          if (result.summary?.stopped) throw budgetStopError(name, result.summary.stopped);
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
        if (result.summary?.stopped)
          throw budgetStopError(result.workflowId.replace(/^score-/, ''), result.summary.stopped);
      });
    });
  addScoreJobCommands(score);
  addScoreResumeCommand(score);
}

export interface ScoreCommandOptions extends BatchJobFlags {
  taskQueue?: string;
  detach: boolean;
  /** Keep `<output>/shards/` and `<output>/manifest/` after a successful merge. */
  keepShards?: boolean;
}

/** The workflow input for a job; paths are made absolute here, where the user typed them. */
export function batchJobInput(flags: BatchJobFlags, name: string, target: 'local' | 'aks' = 'local'): BatchScoreInput {
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
    cost: batchCostInput(flags, target),
  };
}

export async function scoreCommand(ctx: CommandContext, opts: ScoreCommandOptions): Promise<ScoreCommandResult> {
  const name = opts.name ?? `${nameFromModel(opts.inputPath).slice(0, 24)}-${Date.now().toString(36)}`;
  const input: BatchScoreInput = { ...batchJobInput(opts, name), ...(opts.keepShards ? { keepShards: true } : {}) };
  return startBatchJob(ctx, { input, taskQueue: opts.taskQueue, detach: opts.detach });
}
