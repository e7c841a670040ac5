/**
 * `inferctl score resume <name> --budget N`: starts again a batch job its budget stopped, under the same name
 * (workflow `score-<name>`), from the stopped run's carry-over: its done shards are skipped (their rows are
 * already in the output), its ledger is carried on (the budget is for the whole job, so N must be more than
 * what it has spent), its price table and every other setting are the job's. On aks a new GPU pool is added
 * for the rest and removed at the end, as for any job.
 */
import type { Command } from '@commander-js/extra-typings';
import { WorkflowNotFoundError } from '@temporalio/client';

import type { BatchOutcome } from '../../../workflows/batch-score';
import { batchWorkflowId } from '../../shared/batch-types';
import type { BudgetStop } from '../../shared/batch-types';
import { CONTROL_TASK_QUEUE } from '../../shared/deploy-types';
import type { GpuPoolBatchInput, GpuPoolBatchOutcome } from '../../shared/gpu-pool-types';
import { formatMoney } from '../../shared/price-table';
import { amount } from '../budget-flags';
import { budgetStopError } from '../batch-cost';
import { CliError } from '../cli-error';
import { withClient } from '../client-context';
import type { CommandContext } from '../client-context';
import { ExitCode } from '../exit-codes';
import { scoreOnAksCommand } from './score-aks';
import type { ScoreOnAksResult } from './score-aks';
import { followBatch, startBatchJob } from './score-run';
import type { ScoreCommandResult } from './score-run';

export function addScoreResumeCommand(score: Command): void {
  score
    .command('resume <name>')
    .description(
      'Finish a batch job its --budget stopped: the shards it scored are kept and skipped, the rest are scored ' +
        'under a raised budget (for the whole job: more than it has spent)',
    )
    .option('--budget <amount>', "the job's new budget, in its price table's currency (required)", amount('--budget'))
    .option('--task-queue <queue>', 'control worker task queue', CONTROL_TASK_QUEUE)
    .option('--detach', 'start and return at once')
    .option('--json', 'print one JSON document')
    .action(async (name, _o, cmd) => {
      // `score` has these flags too, and takes them wherever they are on the line: read them from both.
      const o = cmd.optsWithGlobals() as { budget?: number; taskQueue?: string; detach?: boolean; json?: boolean };
      if (o.budget === undefined) {
        throw new CliError('score resume needs --budget <amount>: more than the job has spent.', ExitCode.BadInput);
      }
      const budget = o.budget;
      await withClient(Boolean(o.json), async (ctx) => {
        const result = await scoreResumeCommand(ctx, {
          name,
          budget,
          taskQueue: o.taskQueue,
          detach: Boolean(o.detach),
        });
        ctx.out.result(result);
        if (result.summary?.stopped) throw budgetStopError(result.summary.name, result.summary.stopped);
      });
    });
}

export interface ScoreResumeOptions {
  name: string;
  budget: number;
  taskQueue?: string;
  detach: boolean;
}

/** What a stopped job left to resume from: a local job's outcome, or an aks job's (with its pool's input). */
interface Stopped {
  stopped: BudgetStop;
  aks?: GpuPoolBatchInput;
}

export async function scoreResumeCommand(
  ctx: CommandContext,
  opts: ScoreResumeOptions,
): Promise<ScoreCommandResult | ScoreOnAksResult> {
  const workflowId = opts.name.startsWith('score-') ? opts.name : batchWorkflowId(opts.name);
  const name = workflowId.replace(/^score-/, '');
  const { stopped, aks } = await stoppedJob(ctx, workflowId, name);
  const money = (n: number) => formatMoney(n, stopped.currency);
  if (opts.budget <= stopped.spent) {
    throw new CliError(
      `The budget is for the whole job, and "${name}" has spent ${money(stopped.spent)} already: ` +
        `--budget must be more than that (it was ${money(stopped.budget)}).`,
      ExitCode.BadInput,
    );
  }
  const { input, carry } = stopped.resume;
  const resumed = { ...input, cost: { ...input.cost!, budget: opts.budget } };
  ctx.out.line(
    `Resuming ${workflowId}: ${stopped.shardsLeft} shard(s) left, ${money(stopped.spent)} spent, budget now ${money(opts.budget)}`,
  );
  if (!aks) return startBatchJob(ctx, { input: resumed, taskQueue: opts.taskQueue, detach: opts.detach, carry });
  const { batch: _batch, pool, ...more } = aks;
  return scoreOnAksCommand(ctx, {
    input: { ...aks.batch, cost: resumed.cost },
    pool,
    more: { ...more, resume: carry },
    taskQueue: opts.taskQueue,
    detach: opts.detach,
    follow: (batch, out) => followBatch(batch, out, 'the job’s own GPU pool', { showCost: false }),
  });
}

/** The job's last run, which must have ended stopped by its budget; else a usage error saying what it is. */
async function stoppedJob(ctx: CommandContext, workflowId: string, name: string): Promise<Stopped> {
  const handle = ctx.client.workflow.getHandle(workflowId);
  let execution: string;
  try {
    execution = (await handle.describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new CliError(`No batch job named "${name}" (workflow ${workflowId}).`, ExitCode.BadInput);
    }
    throw err;
  }
  const notStopped = (what: string) =>
    new CliError(`Batch job "${name}" ${what}: only a job its budget stopped can be resumed.`, ExitCode.BadInput);
  if (execution !== 'COMPLETED') throw notStopped(`is ${execution.toLowerCase()}`);
  const result = (await handle.result()) as BatchOutcome | GpuPoolBatchOutcome<BatchOutcome>;
  if ('pool' in result) {
    if (!result.batch.stopped || !result.resume) throw notStopped('completed');
    return { stopped: result.batch.stopped, aks: result.resume };
  }
  if (!result.stopped) throw notStopped('completed');
  return { stopped: result.stopped };
}
