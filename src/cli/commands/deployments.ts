/**
 * `inferctl status | list | teardown | extend | scale`: look at and steer running deployments. Teardown,
 * extend and scale are the deploy workflow's Updates: a bad request is refused by its validator with the
 * reason, and the answer (what was removed, the new expiry, the replicas ready) is the Update's result.
 */
import path from 'node:path';

import { Option } from '@commander-js/extra-typings';
import type { Command } from '@commander-js/extra-typings';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateStage } from '@temporalio/client';
import type { WorkflowExecutionDescription } from '@temporalio/client';

import { extendUpdate, scaleUpdate, statusQuery, teardownUpdate } from '../../../workflows/deploy';
import { DEPLOY_STAGES, DEPLOY_WORKFLOW_TYPE, deployWorkflowId } from '../../shared/deploy-types';
import type { DeployOutcome, DeployStatus, ExtendResult, ScaleResult } from '../../shared/deploy-types';
import { Stage, Target } from '../../shared/search-attributes';
import { webUiUrl } from '../../temporal/connection';
import { CliError } from '../cli-error';
import { ExitCode, executionExitCode, workflowFailureExitCode } from '../exit-codes';
import { withClient } from '../client-context';
import type { CommandContext } from '../client-context';
import { describeMirror } from '../../shared/mirror-types';
import { formatDuration } from '../../shared/duration';
import { duration, int } from '../flag-parsers';
import { describeFailure } from '../output';
import { table } from '../table';
import { scaleToZeroLines } from '../scale-to-zero-flags';
import { costLines, costNow, memoCost } from '../budget-flags';
import { formatMoney } from '../../shared/price-table';
import type { CostSummary } from '../../shared/cost-types';
import { autoscaleLines } from '../autoscale-flags';
import { endedBy } from './deploy-follow';
import { certificateLine, gatewayLines } from '../serving-lines';

/** `inferctl status | list | teardown | extend`: flags in, command functions out (`scale`: scale.ts). */
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
  /** With an idle TTL: where the idle watch stands (its latest heartbeat). */
  idle?: { lastRequestAt: string; idleEndsAt: string };
  /** The cost ledger summed now (a running deployment's open lines to this moment), with its budget. */
  cost?: CostSummary;
}

export async function describeDeployment(
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
        `No deployment named "${name}" (workflow ${workflowId}). See them with: inferctl list --all`,
        ExitCode.BadInput,
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
    const idle = idleWatchState(desc);
    if (idle) view.idle = idle;
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
  const running = view.execution === 'RUNNING';
  const ended = running ? '' : ` at ${view.closedAt}${s && 'endedBy' in s ? ` (${endedBy(s.endedBy)})` : ''}`;
  ctx.out.line(`${view.name}: ${view.execution.toLowerCase()}${ended}${s ? `, stage ${s.stage}` : ''}`);
  if (s) {
    const protocol = s.protocol === 'v2' ? `, V2 only (/v2/models/${s.v2ModelName}/infer)` : '';
    // An ended deployment's endpoint is gone: say where it was, not where it is.
    const endpoint = s.endpoint ? (running ? `, endpoint ${s.endpoint}` : `, was at ${s.endpoint} (removed)`) : '';
    ctx.out.line(`  target ${s.target}, ${s.replicas} replica(s)${endpoint}${protocol}`);
    if (running && s.endsBecause) ctx.out.line(`  ${s.endsBecause}`);
    else if (running && s.expiresAt) ctx.out.line(`  serving until ${s.expiresAt}`);
    if (!running && s.teardownRemoved?.length) ctx.out.line(`  removed: ${s.teardownRemoved.join(', ')}`);
    if (running && s.certificate) ctx.out.line(`  ${certificateLine(s.certificate)}`);
    for (const line of gatewayLines(s.gateway, running)) ctx.out.line(line);
    if (running) for (const line of [...scaleToZeroLines(s), ...autoscaleLines(s)]) ctx.out.line(line);
    for (const line of costLines(s, running)) ctx.out.line(line);
    if (view.idle) {
      ctx.out.line(
        `  last scoring request ${view.idle.lastRequestAt}; idle teardown at ${view.idle.idleEndsAt} unless one arrives`,
      );
    }
    for (const v of s.versions ?? []) {
      const digest = v.modelDigest ? ` ${v.modelDigest.slice(0, 19)}` : '';
      const ended = v.until
        ? `until ${v.until}${v.ended ? ` (${v.ended})` : ''}`
        : running
          ? 'serving'
          : `until ${view.closedAt} (torn down)`;
      ctx.out.line(`  version ${path.basename(v.modelPath)}${digest}: from ${v.from} ${ended}`);
    }
    if (s.rollout) ctx.out.line(`  rolling out ${path.basename(s.rollout.modelPath)}: ${s.rollout.stage}`);
    if (s.rollout?.mirror) ctx.out.line(`  comparison: ${describeMirror(s.rollout.mirror)}`);
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
  const cost = s ? costNow(s, running) : undefined;
  if (cost) view.cost = cost;
  ctx.out.result(view);
  // The answer is printed either way; a deployment that failed (or was cancelled, terminated) exits 1.
  const code = executionExitCode(view.execution);
  if (code !== ExitCode.Ok) throw new CliError(`deployment ${view.name} ${view.execution.toLowerCase()}`, code);
  return view;
}

export interface ListedDeployment {
  name: string;
  workflowId: string;
  execution: string;
  startedAt: string;
  closedAt?: string;
  stage?: string;
  target?: string;
  /** Running deployments only: an ended one's endpoint is gone. */
  endpoint?: string;
  /** Spent so far (running: summed now from its ledger; ended: the total its memo kept). */
  cost?: { currency: string; total: number; budget?: number };
}

/** Stages a deployment is in only once it has ended: `list --stage failed` looks among ended ones too. */
const ENDED_STAGES: readonly string[] = ['done', 'failed', 'cancelled'];

export async function listCommand(
  ctx: CommandContext,
  opts: { all: boolean; limit: number; stage?: string; target?: string },
): Promise<ListedDeployment[]> {
  // A visibility query over the search attributes the deploy workflow keeps up to date.
  const clauses = [`WorkflowType = '${DEPLOY_WORKFLOW_TYPE}'`];
  const ended = opts.stage !== undefined && ENDED_STAGES.includes(opts.stage);
  if (!opts.all && !ended) clauses.push(`ExecutionStatus = 'Running'`);
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
      closedAt: wf.closeTime?.toISOString(),
      stage: wf.typedSearchAttributes.get(Stage),
      target: wf.typedSearchAttributes.get(Target),
      ...memoCost(wf.memo),
    };
    if (wf.status.name === 'RUNNING') {
      try {
        const s = await ctx.client.workflow.getHandle(wf.workflowId, wf.runId).query(statusQuery);
        row.stage = s.stage;
        row.endpoint = s.endpoint;
        const c = costNow(s, true);
        if (c) row.cost = { currency: c.currency, total: c.total, ...(c.budget ? { budget: c.budget.budget } : {}) };
      } catch {
        row.stage = 'unknown (no worker answered)';
      }
    }
    rows.push(row);
    if (rows.length >= opts.limit) break;
  }
  if (rows.length === 0) {
    const what = opts.stage ? ` in stage ${opts.stage}` : '';
    ctx.out.line(
      opts.all || ended ? `No deployments${what}.` : `No running deployments${what} (use --all to see ended ones).`,
    );
  } else {
    for (const line of table(
      ['NAME', 'STATUS', 'STAGE', 'TARGET', 'ENDPOINT', 'COST', 'STARTED', 'ENDED'],
      rows.map((r) => [
        r.name,
        r.execution.toLowerCase(),
        r.stage ?? '',
        r.target ?? '',
        r.endpoint ?? '',
        r.cost
          ? `${formatMoney(r.cost.total, r.cost.currency)}${r.cost.budget !== undefined ? ` of ${r.cost.budget}` : ''}`
          : '',
        r.startedAt,
        r.closedAt ?? '',
      ]),
    )) {
      ctx.out.line(line);
    }
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
  const request = { reason: opts.reason ?? 'inferctl teardown' };
  if (!opts.wait) {
    // Accepted: the validator has passed and the request is in history; teardown runs on its own.
    await refusedAsCliError(() =>
      handle.startUpdate(teardownUpdate, { args: [request], waitForStage: WorkflowUpdateStage.ACCEPTED }),
    );
    ctx.out.line(`Teardown requested for ${name}.`);
    ctx.out.result(view);
    return view;
  }
  ctx.out.line(`Tearing down ${name}…`);
  const { removed } = await refusedAsCliError(() => handle.executeUpdate(teardownUpdate, { args: [request] }));
  try {
    const outcome = (await handle.result()) as DeployOutcome;
    view.status = outcome;
    view.execution = 'COMPLETED';
  } catch (err) {
    view.failure = describeFailure(err);
  }
  ctx.out.line(`Torn down: ${removed.length} resource(s) removed.`);
  for (const resource of removed) ctx.out.line(`  removed ${resource}`);
  ctx.out.result(view);
  return view;
}

export async function extendCommand(
  ctx: CommandContext,
  opts: { name: string; ttlSeconds: number },
): Promise<ExtendResult> {
  const { name, ttlSeconds: seconds } = opts;
  const { view, desc } = await describeDeployment(ctx, name);
  if (desc.status.name !== 'RUNNING') {
    throw new CliError(
      `${name} has ended (${desc.status.name.toLowerCase()}); a TTL can only be extended while it runs.`,
    );
  }
  const handle = ctx.client.workflow.getHandle(view.workflowId, view.runId);
  const result = await refusedAsCliError(() => handle.executeUpdate(extendUpdate, { args: [{ seconds }] }));
  ctx.out.line(
    result.expiresAt
      ? `${name} now serves until ${result.expiresAt}.`
      : `${name} will serve for ${formatDuration((result.ttlSeconds ?? seconds) * 1000)} once it is ready.`,
  );
  ctx.out.result(result);
  return result;
}

export async function scaleCommand(
  ctx: CommandContext,
  opts: { name: string; replicas: number },
): Promise<ScaleResult> {
  const { view, desc } = await describeDeployment(ctx, opts.name);
  if (desc.status.name !== 'RUNNING') {
    throw new CliError(`${opts.name} has ended (${desc.status.name.toLowerCase()}); only a running deployment scales.`);
  }
  const handle = ctx.client.workflow.getHandle(view.workflowId, view.runId);
  ctx.out.line(`Scaling ${opts.name} to ${opts.replicas} replica(s)…`);
  const result = await refusedAsCliError(() =>
    handle.executeUpdate(scaleUpdate, { args: [{ replicas: opts.replicas }] }),
  );
  ctx.out.line(
    `${opts.name} serves ${result.replicas} replica(s) (was ${result.previousReplicas}), all ready` +
      `${result.endpoint ? ` behind ${result.endpoint}` : ''}.`,
  );
  ctx.out.result(result);
  return result;
}

/** An Update refused by its validator, or failed in its handler, becomes the CLI error with its reason. */
export async function refusedAsCliError<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw new CliError(describeFailure(err.cause ?? err), workflowFailureExitCode(err.cause ?? err));
    }
    throw err;
  }
}

/** The idle watch's latest heartbeat, from the workflow's pending activities; none without an idle TTL. */
function idleWatchState(desc: WorkflowExecutionDescription): DeploymentView['idle'] {
  const pending = desc.raw.pendingActivities?.find((a) => a.activityType?.name === 'waitUntilIdle');
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  if (!payload?.data) return undefined;
  try {
    const details = JSON.parse(Buffer.from(payload.data).toString('utf8')) as {
      lastChangeAt?: number;
      idleEndsAt?: string;
    };
    if (details.lastChangeAt === undefined || !details.idleEndsAt) return undefined;
    return { lastRequestAt: new Date(details.lastChangeAt).toISOString(), idleEndsAt: details.idleEndsAt };
  } catch {
    return undefined; // an encrypted payload (a codec server is in use): the status still says the rule
  }
}
