/**
 * `inferctl schedule …`: recurring batch scoring with Temporal Schedules (no cron in our code).
 * Each slot starts a batchScore workflow `score-<name>-<scheduled time>`; `--output` may be a template
 * of the slot's scheduled time (`out/{date}`), so a re-run or backfill of a slot overwrites that slot.
 */
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import type {
  ScheduleDescription,
  ScheduleOptions,
  ScheduleSpec,
  ScheduleUpdateOptions as TemporalScheduleUpdate,
} from '@temporalio/client';
import { msToTs, tsToDate } from '@temporalio/common/lib/time';

import { batchScore } from '../../../workflows/batch-score';
import { batchWorkflowId } from '../../shared/batch-types';
import { CONTROL_TASK_QUEUE, DEPLOYMENT_NAME_PATTERN } from '../../shared/deploy-types';
import { InferctlKind, ModelName } from '../../shared/search-attributes';
import { searchAttributeText } from '../../temporal/search-attribute-privacy';
import { webUiUrl } from '../../temporal/connection';
import { jobLocation } from '../batch-flags';
import type { BatchJobFlags } from '../batch-flags';
import { CliError } from '../cli-error';
import type { CommandContext } from '../client-context';
import { batchJobInput } from './score';

export type OverlapName = 'skip' | 'buffer-one' | 'buffer-all' | 'cancel-other' | 'terminate-other' | 'allow-all';

const OVERLAP: Record<OverlapName, ScheduleOverlapPolicy> = {
  skip: ScheduleOverlapPolicy.SKIP,
  'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE,
  'buffer-all': ScheduleOverlapPolicy.BUFFER_ALL,
  'cancel-other': ScheduleOverlapPolicy.CANCEL_OTHER,
  'terminate-other': ScheduleOverlapPolicy.TERMINATE_OTHER,
  'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
};
export const OVERLAP_NAMES = Object.keys(OVERLAP) as OverlapName[];

export interface ScheduleTiming {
  cron?: string;
  /** Seconds between runs. */
  intervalSeconds?: number;
  jitterSeconds?: number;
  timezone?: string;
}

export interface ScheduleCreateOptions extends BatchJobFlags, ScheduleTiming {
  name: string;
  overlap: OverlapName;
  catchupWindowSeconds: number;
  paused: boolean;
  note?: string;
  taskQueue?: string;
}

/** Five-field cron (minute hour day-of-month month day-of-week), or @daily-style macros. */
const CRON = /^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$/;

/** The schedule's calendar from the flags; a usage error (exit 2) when there is none or the cron is malformed. */
export function scheduleSpec(timing: ScheduleTiming): ScheduleSpec {
  if (!timing.cron && !timing.intervalSeconds)
    throw new CliError('Give --cron "0 2 * * *" or --interval 6h (or both).', 2);
  if (timing.cron && !CRON.test(timing.cron.trim())) {
    throw new CliError(
      `Invalid cron "${timing.cron}": use five fields, minute hour day-of-month month day-of-week, e.g. "0 2 * * *" (02:00 daily).`,
      2,
    );
  }
  return {
    cronExpressions: timing.cron ? [timing.cron.trim()] : [],
    intervals: timing.intervalSeconds ? [{ every: `${timing.intervalSeconds}s` }] : [],
    jitter: timing.jitterSeconds ? `${timing.jitterSeconds}s` : undefined,
    timezone: timing.timezone,
  };
}

function explainServerError(err: unknown): never {
  if (err instanceof Error && /cron|spec|timezone|time zone/i.test(err.message)) {
    throw new CliError(`Temporal refused the schedule: ${err.message.split('\n')[0]}`, 2);
  }
  throw err;
}

async function handleFor(ctx: CommandContext, name: string) {
  const handle = ctx.client.schedule.getHandle(name);
  try {
    return { handle, description: await handle.describe() };
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) {
      throw new CliError(`No schedule named "${name}". See them with: inferctl schedule list`, 2);
    }
    throw err;
  }
}

export async function scheduleCreateCommand(
  ctx: CommandContext,
  opts: ScheduleCreateOptions,
): Promise<{ scheduleId: string }> {
  if (!DEPLOYMENT_NAME_PATTERN.test(opts.name)) {
    throw new CliError(`Schedule name "${opts.name}" must be 1-40 lowercase letters, digits or '-'.`, 2);
  }
  const input = batchJobInput(opts, opts.name);
  const options: ScheduleOptions = {
    scheduleId: opts.name,
    spec: scheduleSpec(opts),
    action: {
      type: 'startWorkflow',
      workflowType: batchScore,
      args: [input],
      taskQueue: opts.taskQueue ?? CONTROL_TASK_QUEUE,
      // Temporal appends each slot's scheduled time: score-<name>-2026-11-24T02:00:00Z.
      workflowId: batchWorkflowId(opts.name),
      typedSearchAttributes: [
        { key: InferctlKind, value: 'batch-score' },
        { key: ModelName, value: searchAttributeText(input.modelPath.split('/').pop() ?? input.modelPath) },
      ],
      staticSummary: `Scheduled scoring "${opts.name}": ${input.inputPath} → ${input.outputDir}`,
    },
    policies: { overlap: OVERLAP[opts.overlap], catchupWindow: `${opts.catchupWindowSeconds}s` },
    state: { paused: opts.paused, note: opts.note ?? `created by inferctl schedule create` },
  };
  try {
    await ctx.client.schedule.create(options);
  } catch (err) {
    if (err instanceof Error && /already (exists|running|registered)/i.test(err.message)) {
      throw new CliError(
        `A schedule named "${opts.name}" already exists. Change it with inferctl schedule update, or delete it first.`,
      );
    }
    explainServerError(err);
  }
  const { description } = await handleFor(ctx, opts.name);
  ctx.out.line(`Schedule "${opts.name}" created${opts.paused ? ' (paused)' : ''}.`);
  const next = description.info.nextActionTimes.slice(0, 3).map((d) => d.toISOString());
  if (next.length > 0) ctx.out.line(`Next runs: ${next.join(', ')}`);
  ctx.out.line(
    `Web UI: ${webUiUrl({ namespace: ctx.namespace }).replace(/\/workflows$/, `/schedules/${encodeURIComponent(opts.name)}`)}`,
  );
  ctx.out.result({ scheduleId: opts.name, nextActionTimes: next });
  return { scheduleId: opts.name };
}

export interface ScheduleView {
  name: string;
  paused: boolean;
  note?: string;
  spec: { cron: string[]; intervals: string[]; timezone?: string };
  overlap: string;
  nextRuns: string[];
  recentRuns: Array<{ scheduledAt: string; workflowId: string; status?: string }>;
}

async function view(ctx: CommandContext, name: string, description: ScheduleDescription): Promise<ScheduleView> {
  const recentRuns = await Promise.all(
    description.info.recentActions.slice(-10).map(async (a) => {
      let status: string | undefined;
      try {
        status = (await ctx.client.workflow.getHandle(a.action.workflow.workflowId).describe()).status.name;
      } catch {
        status = 'unknown';
      }
      return { scheduledAt: a.scheduledAt.toISOString(), workflowId: a.action.workflow.workflowId, status };
    }),
  );
  return {
    name,
    paused: description.state.paused,
    note: description.state.note,
    spec: {
      cron: description.spec.calendars?.length ? ['(calendar)'] : [],
      intervals: (description.spec.intervals ?? []).map((i) => String(i.every)),
      timezone: description.spec.timezone,
    },
    overlap: String(description.policies.overlap ?? 'SKIP'),
    nextRuns: description.info.nextActionTimes.map((d) => d.toISOString()),
    recentRuns,
  };
}

export async function scheduleDescribeCommand(ctx: CommandContext, opts: { name: string }): Promise<ScheduleView> {
  const { name } = opts;
  const { description } = await handleFor(ctx, name);
  const v = await view(ctx, name, description);
  ctx.out.line(
    `${name}: ${v.paused ? 'paused' : 'active'}${v.note ? ` (${v.note})` : ''}, overlap ${v.overlap.toLowerCase()}`,
  );
  ctx.out.line(`  next runs: ${v.nextRuns.slice(0, 5).join(', ') || 'none'}`);
  if (v.recentRuns.length === 0) ctx.out.line('  no runs yet');
  for (const r of v.recentRuns) ctx.out.line(`  ${r.scheduledAt}  ${r.workflowId}  ${r.status?.toLowerCase() ?? ''}`);
  ctx.out.result(v);
  return v;
}

export async function scheduleListCommand(
  ctx: CommandContext,
): Promise<Array<{ name: string; paused: boolean; nextRun?: string }>> {
  const rows: Array<{ name: string; paused: boolean; nextRun?: string; note?: string }> = [];
  for await (const s of ctx.client.schedule.list()) {
    rows.push({
      name: s.scheduleId,
      paused: s.state.paused,
      nextRun: s.info.nextActionTimes[0]?.toISOString(),
      note: s.state.note,
    });
  }
  if (rows.length === 0) ctx.out.line('No schedules.');
  for (const r of rows)
    ctx.out.line(`${r.name.padEnd(24)} ${r.paused ? 'paused' : 'active'}  next ${r.nextRun ?? '-'}`);
  ctx.out.result(rows);
  return rows;
}

export async function schedulePauseCommand(
  ctx: CommandContext,
  opts: { name: string; pause: boolean; note?: string },
): Promise<void> {
  const { name, pause, note } = opts;
  const { handle } = await handleFor(ctx, name);
  if (pause) await handle.pause(note ?? 'paused by inferctl');
  else await handle.unpause(note ?? 'unpaused by inferctl');
  ctx.out.line(`Schedule "${name}" ${pause ? 'paused' : 'unpaused'}.`);
  ctx.out.result({ scheduleId: name, paused: pause });
}

export async function scheduleTriggerCommand(
  ctx: CommandContext,
  opts: { name: string; overlap?: OverlapName },
): Promise<void> {
  const { name, overlap } = opts;
  const { handle } = await handleFor(ctx, name);
  await handle.trigger(overlap ? OVERLAP[overlap] : undefined);
  ctx.out.line(`Schedule "${name}" triggered: a run starts now (see: inferctl schedule describe ${name}).`);
  ctx.out.result({ scheduleId: name, triggered: true });
}

export async function scheduleBackfillCommand(
  ctx: CommandContext,
  opts: { name: string; from: Date; to: Date; overlap: OverlapName },
): Promise<{ slots: string[] }> {
  const { name } = opts;
  if (!(opts.from < opts.to))
    throw new CliError(`--from (${opts.from.toISOString()}) must be before --to (${opts.to.toISOString()}).`, 2);
  if (opts.to.getTime() > Date.now())
    throw new CliError('--to is in the future; backfill only fills past slots (use trigger to run now).', 2);
  const { handle } = await handleFor(ctx, name);
  const matching = (await ctx.client.workflowService.listScheduleMatchingTimes({
    namespace: ctx.namespace,
    scheduleId: name,
    startTime: msToTs(opts.from.getTime()),
    endTime: msToTs(opts.to.getTime()),
  })) as { startTime?: Array<Parameters<typeof tsToDate>[0]> | null };
  const slots = (matching.startTime ?? []).map((t) => tsToDate(t).toISOString());
  if (slots.length === 0) {
    throw new CliError(
      `No slot of schedule "${name}" falls between ${opts.from.toISOString()} and ${opts.to.toISOString()}: nothing to backfill.`,
      2,
    );
  }
  await handle.backfill({ start: opts.from, end: opts.to, overlap: OVERLAP[opts.overlap] });
  ctx.out.line(`Backfilling ${slots.length} slot(s) of "${name}": ${slots.join(', ')}`);
  ctx.out.result({ scheduleId: name, slots });
  return { slots };
}

export interface ScheduleUpdateOptions
  extends ScheduleTiming, Partial<Pick<BatchJobFlags, 'modelPath' | 'inputPath' | 'outputDir'>> {
  name: string;
  overlap?: OverlapName;
  catchupWindowSeconds?: number;
}

export async function scheduleUpdateCommand(ctx: CommandContext, opts: ScheduleUpdateOptions): Promise<void> {
  const { name } = opts;
  const { handle } = await handleFor(ctx, name);
  try {
    await handle.update((previous) => {
      const next: TemporalScheduleUpdate = { ...previous };
      if (opts.cron || opts.intervalSeconds) next.spec = scheduleSpec(opts);
      else if (opts.timezone || opts.jitterSeconds) {
        next.spec = {
          ...previous.spec,
          timezone: opts.timezone ?? previous.spec.timezone,
          jitter: opts.jitterSeconds ? `${opts.jitterSeconds}s` : previous.spec.jitter,
        };
      }
      if (opts.overlap) next.policies = { ...previous.policies, overlap: OVERLAP[opts.overlap] };
      if (opts.catchupWindowSeconds)
        next.policies = { ...next.policies, catchupWindow: `${opts.catchupWindowSeconds}s` };
      if (next.action.type === 'startWorkflow') {
        const [input] = next.action.args as Parameters<typeof batchScore>;
        const changed = { ...input };
        if (opts.modelPath) changed.modelPath = jobLocation(opts.modelPath);
        if (opts.inputPath) changed.inputPath = jobLocation(opts.inputPath);
        if (opts.outputDir) changed.outputDir = jobLocation(opts.outputDir);
        next.action = { ...next.action, args: [changed] };
      }
      return next;
    });
  } catch (err) {
    explainServerError(err);
  }
  ctx.out.line(`Schedule "${name}" updated.`);
  ctx.out.result({ scheduleId: name, updated: true });
}

export async function scheduleDeleteCommand(ctx: CommandContext, opts: { name: string }): Promise<void> {
  const { name } = opts;
  const { handle } = await handleFor(ctx, name);
  await handle.delete();
  ctx.out.line(`Schedule "${name}" deleted (runs it started are not affected).`);
  ctx.out.result({ scheduleId: name, deleted: true });
}
