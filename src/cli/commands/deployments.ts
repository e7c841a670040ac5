/**
 * `inferctl status | list | teardown | extend`: look at and steer running deployments.
 */
import { setTimeout as delay } from 'node:timers/promises';

import { Option } from '@commander-js/extra-typings';
import type { Command } from '@commander-js/extra-typings';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { WorkflowExecutionDescription } from '@temporalio/client';

import { extendTtlSignal, statusQuery, teardownSignal } from '../../../workflows/deploy';
import { DEPLOY_STAGES, DEPLOY_WORKFLOW_TYPE, deployWorkflowId } from '../../shared/deploy-types';
import type { DeployOutcome, DeployStatus } from '../../shared/deploy-types';
import { Stage, Target } from '../../shared/search-attributes';
import { webUiUrl } from '../../temporal/connection';
import { CliError } from '../cli-error';
import { withClient } from '../client-context';
import type { CommandContext } from '../client-context';
import { formatDuration } from '../../shared/duration';
import { duration, int } from '../flag-parsers';
import { describeFailure } from '../output';

/** `inferctl status | list | teardown | extend`: flags in, command functions out. */
export function addDeploymentCommands(program: Command): void {
  program
    .command('status <name>')
    .description('Show a deployment: stage, endpoint, per-step timings, last error, Web UI link')
    .option('--json', 'print one JSON document')
    .action(async (name, o) => {
      await withClient(Boolean(o.json), (ctx) => statusCommand(ctx, { name }));
    });

  program
    .command('list')
    .description('List running deployments (a Temporal visibility query)')
    .option('-a, --all', 'include ended deployments')
    .addOption(new Option('--stage <stage>', 'only deployments in this stage').choices(DEPLOY_STAGES))
    .addOption(new Option('--target <target>', 'only deployments on this target').choices(['local', 'aks']))
    .option('--limit <n>', 'at most this many', int('--limit', 1), 50)
    .option('--json', 'print one JSON document')
    .action(async (o) => {
      await withClient(Boolean(o.json), (ctx) =>
        listCommand(ctx, { all: Boolean(o.all), limit: o.limit, stage: o.stage, target: o.target }),
      );
    });

  program
    .command('teardown <name>')
    .description('Stop serving now and delete everything the deployment created')
    .option('--no-wait', 'return once the request is sent')
    .option('--reason <text>', 'recorded in the workflow log')
    .option('--json', 'print one JSON document')
    .action(async (name, o) => {
      await withClient(Boolean(o.json), (ctx) => teardownCommand(ctx, { name, wait: o.wait, reason: o.reason }));
    });

  program
    .command('extend <name>')
    .description('Keep a deployment serving longer')
    .requiredOption('--ttl <duration>', 'serve at least this long from now (e.g. 30m)', duration('--ttl'))
    .option('--json', 'print one JSON document')
    .action(async (name, o) => {
      await withClient(Boolean(o.json), (ctx) => extendCommand(ctx, { name, ttlSeconds: o.ttl }));
    });
}

export interface DeploymentView {
  name: string;
  workflowId: string;
  runId: string;
  execution: string;
  startedAt?: string;
  closedAt?: string;
  uiUrl: string;
  status?: DeployStatus | DeployOutcome;
  failure?: string;
}

async function describeDeployment(
  ctx: CommandContext,
  name: string,
): Promise<{ view: DeploymentView; desc: WorkflowExecutionDescription }> {
  const workflowId = deployWorkflowId(name);
  const handle = ctx.client.workflow.getHandle(workflowId);
  let desc: WorkflowExecutionDescription;
  try {
    desc = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new CliError(
        `No deployment named "${name}" (workflow ${workflowId}). See running ones with: inferctl list`,
      );
    }
    throw err;
  }
  const view: DeploymentView = {
    name,
    workflowId,
    runId: desc.runId,
    execution: desc.status.name,
    startedAt: desc.startTime.toISOString(),
    closedAt: desc.closeTime?.toISOString(),
    uiUrl: webUiUrl({ namespace: ctx.namespace, workflowId, runId: desc.runId }),
  };
  if (desc.status.name === 'RUNNING') {
    view.status = await handle.query(statusQuery);
  } else if (desc.status.name === 'COMPLETED') {
    view.status = (await handle.result()) as DeployOutcome;
  } else {
    try {
      await handle.result();
    } catch (err) {
      view.failure = describeFailure(err);
    }
  }
  return { view, desc };
}

export async function statusCommand(ctx: CommandContext, opts: { name: string }): Promise<DeploymentView> {
  const { view } = await describeDeployment(ctx, opts.name);
  const s = view.status;
  ctx.out.line(`${view.name}: ${view.execution.toLowerCase()}${s ? `, stage ${s.stage}` : ''}`);
  if (s) {
    const protocol = s.protocol === 'v2' ? `, V2 only (/v2/models/${s.v2ModelName}/infer)` : '';
    ctx.out.line(
      `  target ${s.target}, ${s.replicas} replica(s)${s.endpoint ? `, endpoint ${s.endpoint}` : ''}${protocol}`,
    );
    if (s.expiresAt) ctx.out.line(`  serving until ${s.expiresAt}`);
    if (s.smoke)
      ctx.out.line(`  smoke answer: ${s.smoke.predictions[0]?.label} (${s.smoke.predictions[0]?.score.toFixed(3)})`);
    for (const step of s.steps) {
      const mark = step.ok === undefined ? '…' : step.ok ? '✔' : '✘';
      const took = step.durationMs !== undefined ? ` ${formatDuration(step.durationMs)}` : '';
      ctx.out.line(`  ${mark} ${step.step}${took}${step.detail ? `: ${step.detail}` : ''}`);
    }
    if (s.lastError) ctx.out.line(`  last error: ${s.lastError}`);
  }
  if (view.failure) ctx.out.line(`  failure: ${view.failure}`);
  ctx.out.line(`  Web UI: ${view.uiUrl}`);
  ctx.out.result(view);
  return view;
}

export interface ListedDeployment {
  name: string;
  workflowId: string;
  execution: string;
  startedAt: string;
  stage?: string;
  endpoint?: string;
}

export async function listCommand(
  ctx: CommandContext,
  opts: { all: boolean; limit: number; stage?: string; target?: string },
): Promise<ListedDeployment[]> {
  // A visibility query over the search attributes the deploy workflow keeps up to date.
  const clauses = [`WorkflowType = '${DEPLOY_WORKFLOW_TYPE}'`];
  if (!opts.all) clauses.push(`ExecutionStatus = 'Running'`);
  if (opts.stage) clauses.push(`${Stage.name} = '${opts.stage}'`);
  if (opts.target) clauses.push(`${Target.name} = '${opts.target}'`);
  const query = clauses.join(' AND ');
  const rows: ListedDeployment[] = [];
  for await (const wf of ctx.client.workflow.list({ query })) {
    const row: ListedDeployment = {
      name: wf.workflowId.replace(/^deploy-/, ''),
      workflowId: wf.workflowId,
      execution: wf.status.name,
      startedAt: wf.startTime.toISOString(),
    };
    if (wf.status.name === 'RUNNING') {
      try {
        const s = await ctx.client.workflow.getHandle(wf.workflowId, wf.runId).query(statusQuery);
        row.stage = s.stage;
        row.endpoint = s.endpoint;
      } catch {
        row.stage = 'unknown (no worker answered)';
      }
    }
    rows.push(row);
    if (rows.length >= opts.limit) break;
  }
  if (rows.length === 0)
    ctx.out.line(opts.all ? 'No deployments.' : 'No running deployments (use --all to see ended ones).');
  for (const r of rows) {
    ctx.out.line(
      `${r.name.padEnd(24)} ${r.execution.toLowerCase().padEnd(11)} ${(r.stage ?? '').padEnd(14)} ${r.endpoint ?? ''}`,
    );
  }
  ctx.out.result(rows);
  return rows;
}

export async function teardownCommand(
  ctx: CommandContext,
  opts: { name: string; wait: boolean; reason?: string },
): Promise<DeploymentView> {
  const { name } = opts;
  const { view, desc } = await describeDeployment(ctx, name);
  if (desc.status.name !== 'RUNNING') {
    ctx.out.line(`${name} is already ${desc.status.name.toLowerCase()}; its teardown has run.`);
    ctx.out.result(view);
    return view;
  }
  const handle = ctx.client.workflow.getHandle(view.workflowId, view.runId);
  await handle.signal(teardownSignal, { reason: opts.reason ?? 'inferctl teardown' });
  ctx.out.line(`Teardown requested for ${name}.`);
  if (opts.wait) {
    try {
      const outcome = (await handle.result()) as DeployOutcome;
      view.status = outcome;
      view.execution = 'COMPLETED';
      ctx.out.line(`Torn down: ${outcome.teardownRemoved?.length ?? 0} resource(s) removed.`);
    } catch (err) {
      view.failure = describeFailure(err);
      ctx.out.result(view);
      throw new CliError(view.failure);
    }
  }
  ctx.out.result(view);
  return view;
}

export async function extendCommand(
  ctx: CommandContext,
  opts: { name: string; ttlSeconds: number },
): Promise<DeployStatus> {
  const { name, ttlSeconds: seconds } = opts;
  const { view, desc } = await describeDeployment(ctx, name);
  if (desc.status.name !== 'RUNNING') {
    throw new CliError(
      `${name} has ended (${desc.status.name.toLowerCase()}); a TTL can only be extended while it runs.`,
    );
  }
  const handle = ctx.client.workflow.getHandle(view.workflowId, view.runId);
  const wanted = Date.now() + seconds * 1000 - 5000;
  await handle.signal(extendTtlSignal, { seconds });
  // A query may be answered before the signal is processed: look again briefly until it shows.
  let status = await handle.query(statusQuery);
  for (let i = 0; i < 20 && status.expiresAt && Date.parse(status.expiresAt) < wanted; i++) {
    await delay(150);
    status = await handle.query(statusQuery);
  }
  ctx.out.line(
    status.expiresAt
      ? `${name} now serves until ${status.expiresAt}.`
      : `${name} will serve for at least ${formatDuration(seconds * 1000)} once it is ready (stage: ${status.stage}).`,
  );
  ctx.out.result(status);
  return status;
}
