/**
 * `inferctl score status <name>` and `inferctl score list`: where batch jobs stand. Status answers for one
 * job (progress while it runs; its files, or why it failed, once it ended) and exits 1 for a job that did
 * not complete; list is a visibility query over the jobs, running and ended, newest first.
 */
import type { Command } from '@commander-js/extra-typings';
import { WorkflowNotFoundError } from '@temporalio/client';

import { progressQuery } from '../../../workflows/batch-score';
import type { BatchOutcome } from '../../../workflows/batch-score';
import { BATCH_WORKFLOW_TYPE, batchWorkflowId } from '../../shared/batch-types';
import type { BatchProgress } from '../../shared/batch-types';
import { ItemsDone, ItemsTotal, ModelName, Stage } from '../../shared/search-attributes';
import { webUiUrl } from '../../temporal/connection';
import type { GpuPoolBatchOutcome } from '../../shared/gpu-pool-types';
import { batchCostLines, budgetStopError, budgetStopMessage } from '../batch-cost';
import { CliError } from '../cli-error';
import { withClient } from '../client-context';
import type { CommandContext } from '../client-context';
import { ExitCode, executionExitCode } from '../exit-codes';
import { int } from '../flag-parsers';
import { describeFailure } from '../output';
import { progressLine } from '../progress';
import { table } from '../table';

/** `score status` and `score list` under `score`. `--json` is read from `score` too (it has its own). */
export function addScoreJobCommands(score: Command): void {
  score
    .command('status <name>')
    .description(
      'Show a batch job: progress while it runs, its files (predictions, errors, summary) or why it failed once it ' +
        'ended; exits 1 for a job that failed',
    )
    .option('--json', 'print one JSON document')
    .action(async (name, _o, cmd) => {
      await withClient(Boolean(cmd.optsWithGlobals().json), (ctx) => scoreStatusCommand(ctx, { name }));
    });
  score
    .command('list')
    .description('List batch jobs, running and ended, newest first (a Temporal visibility query)')
    .option('--running', 'only running jobs')
    .option('--limit <n>', 'at most this many', int('--limit', 1), 20)
    .option('--json', 'print one JSON document')
    .action(async (o, cmd) => {
      await withClient(Boolean(cmd.optsWithGlobals().json), (ctx) =>
        scoreListCommand(ctx, { running: Boolean(o.running), limit: o.limit }),
      );
    });
}

export interface BatchStatusView {
  name: string;
  workflowId: string;
  execution: string;
  uiUrl: string;
  progress?: BatchProgress;
  summary?: BatchOutcome;
  failure?: string;
}

export async function scoreStatusCommand(ctx: CommandContext, opts: { name: string }): Promise<BatchStatusView> {
  const { name } = opts;
  const workflowId = name.startsWith('score-') ? name : batchWorkflowId(name);
  const handle = ctx.client.workflow.getHandle(workflowId);
  let execution: string;
  try {
    execution = (await handle.describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new CliError(
        `No batch job named "${name}" (workflow ${workflowId}). See the jobs with: inferctl score list`,
        ExitCode.BadInput,
      );
    }
    throw err;
  }
  const view: BatchStatusView = {
    name: workflowId.replace(/^score-/, ''),
    workflowId,
    execution,
    uiUrl: webUiUrl({ namespace: ctx.namespace, workflowId }),
  };
  if (execution === 'RUNNING') {
    // An aks job (gpuPoolBatchScore) answers through its child batch, once the pool's workers run.
    view.progress = await handle
      .query(progressQuery)
      .catch(() => ctx.client.workflow.getHandle(`${workflowId}-batch`).query(progressQuery))
      .catch(() => undefined);
    ctx.out.line(`${workflowId}: running${view.progress ? `, ${progressLine(view.progress)}` : ''}`);
    for (const line of batchCostLines(view.progress?.cost)) ctx.out.line(`  ${line}`);
  } else if (execution === 'COMPLETED') {
    const result = (await handle.result()) as BatchOutcome | GpuPoolBatchOutcome<BatchOutcome>;
    const summary = 'pool' in result ? result.batch : result;
    view.summary = summary;
    ctx.out.line(
      `${workflowId}: ${summary.stopped ? 'stopped by budget' : 'completed'}, ${summary.itemsOk}/${summary.totalItems} scored, ${summary.itemsFailed} failed`,
    );
    if (summary.stopped) ctx.out.line(`  ${budgetStopMessage(view.name, summary.stopped)}`);
    for (const line of batchCostLines(summary.cost)) ctx.out.line(`  ${line}`);
    if (summary.skippedFiles) ctx.out.line(`  ${skippedLine(summary.skippedFiles)}`);
    ctx.out.line(`  predictions: ${summary.predictionsFile}`);
    ctx.out.line(
      `  errors:      ${summary.errorsFile} (${summary.itemsFailed === 0 ? 'empty' : `${summary.itemsFailed} input(s) that could not be scored, one JSON line each`})`,
    );
    ctx.out.line(`  summary:     ${summary.summaryFile}`);
  } else {
    try {
      await handle.result();
    } catch (err) {
      view.failure = describeFailure(err);
    }
    ctx.out.line(`${workflowId}: ${execution.toLowerCase()}${view.failure ? `: ${view.failure}` : ''}`);
  }
  ctx.out.line(`  Web UI: ${view.uiUrl}`);
  ctx.out.result(view);
  if (view.summary?.stopped) throw budgetStopError(view.name, view.summary.stopped);
  const code = executionExitCode(execution);
  if (code !== ExitCode.Ok) throw new CliError(`batch job ${view.name} ${execution.toLowerCase()}`, code);
  return view;
}

/** The line that says how many files of the input were not scored for their names. */
export function skippedLine(count: number): string {
  return `Skipped ${count} file(s) whose names are not images (--all-files scores every file).`;
}

export interface ListedJob {
  name: string;
  workflowId: string;
  execution: string;
  stage?: string;
  itemsDone?: number;
  itemsTotal?: number;
  model?: string;
  startedAt: string;
  closedAt?: string;
}

export async function scoreListCommand(
  ctx: CommandContext,
  opts: { running: boolean; limit: number },
): Promise<ListedJob[]> {
  // One row per job: the runs a long job continued-as-new from are left out.
  const clauses = [`WorkflowType = '${BATCH_WORKFLOW_TYPE}'`, `ExecutionStatus != 'ContinuedAsNew'`];
  if (opts.running) clauses.push(`ExecutionStatus = 'Running'`);
  const rows: ListedJob[] = [];
  for await (const wf of ctx.client.workflow.list({ query: clauses.join(' AND ') })) {
    const attrs = wf.typedSearchAttributes;
    rows.push({
      name: wf.workflowId.replace(/^score-/, ''),
      workflowId: wf.workflowId,
      execution: wf.status.name,
      stage: attrs.get(Stage),
      itemsDone: attrs.get(ItemsDone),
      itemsTotal: attrs.get(ItemsTotal),
      model: attrs.get(ModelName),
      startedAt: wf.startTime.toISOString(),
      closedAt: wf.closeTime?.toISOString(),
    });
    if (rows.length >= opts.limit) break;
  }
  if (rows.length === 0) {
    ctx.out.line(opts.running ? 'No running batch jobs (drop --running to see ended ones).' : 'No batch jobs.');
  } else {
    const items = (r: ListedJob) =>
      r.itemsTotal !== undefined
        ? `${r.itemsDone ?? 0}/${r.itemsTotal}`
        : r.itemsDone !== undefined
          ? `${r.itemsDone}`
          : '';
    for (const line of table(
      ['NAME', 'STATUS', 'STAGE', 'ITEMS', 'MODEL', 'STARTED', 'ENDED'],
      rows.map((r) => [
        r.name,
        r.execution.toLowerCase(),
        r.stage ?? '',
        items(r),
        r.model ?? '',
        r.startedAt,
        r.closedAt ?? '',
      ]),
    )) {
      ctx.out.line(line);
    }
    ctx.out.line('Details: inferctl score status <name>');
  }
  ctx.out.result(rows);
  return rows;
}
