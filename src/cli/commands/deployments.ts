/**
 * `inferctl status | list | teardown | extend`: look at and steer running deployments.
 */
import { setTimeout as delay } from 'node:timers/promises';

import { WorkflowNotFoundError } from '@temporalio/client';
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';

import { extendTtlSignal, statusQuery, teardownSignal } from '../../../workflows/deploy';
import { DEPLOY_WORKFLOW_TYPE, deployWorkflowId } from '../../shared/deploy-types';
import type { DeployOutcome, DeployStatus } from '../../shared/deploy-types';
import { Stage, Target } from '../../shared/search-attributes';
import { webUiUrl } from '../../temporal/connection';
import { CliError } from '../cli-error';
import { formatDuration } from '../../shared/duration';
import { describeFailure, type Output } from '../output';

interface Ctx {
  client: Client;
  namespace: string;
  out: Output;
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
  ctx: Ctx,
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

export async function statusCommand(ctx: Ctx, name: string): Promise<DeploymentView> {
  const { view } = await describeDeployment(ctx, name);
  const s = view.status;
  ctx.out.line(`${view.name}: ${view.execution.toLowerCase()}${s ? `, stage ${s.stage}` : ''}`);
  if (s) {
    ctx.out.line(`  target ${s.target}, ${s.replicas} replica(s)${s.endpoint ? `, endpoint ${s.endpoint}` : ''}`);
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
  ctx: Ctx,
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
  ctx: Ctx,
  name: string,
  opts: { wait: boolean; reason?: string },
): Promise<DeploymentView> {
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

export async function extendCommand(ctx: Ctx, name: string, seconds: number): Promise<DeployStatus> {
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
