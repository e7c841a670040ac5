/**
 * `inferctl janitor`: runs the janitor workflow once and prints what it found and deleted, or with
 * `--every` puts it on a Temporal Schedule so orphans left by terminated workflows are reclaimed.
 */
import type { Command } from '@commander-js/extra-typings';
import { ScheduleOverlapPolicy } from '@temporalio/client';

import { janitor } from '../../../workflows/janitor';
import { CONTROL_TASK_QUEUE } from '../../shared/deploy-types';
import { JANITOR_SCHEDULE_ID } from '../../shared/janitor-types';
import { resourceLabel } from '../../shared/janitor-types';
import type { JanitorInput, JanitorReport } from '../../shared/janitor-types';
import { InferctlKind } from '../../shared/search-attributes';
import { formatDuration } from '../../shared/duration';
import { withClient } from '../client-context';
import type { CommandContext } from '../client-context';
import { duration } from '../flag-parsers';
import { AKS_HELP } from '../help-text';
import { startIndexed } from '../start-workflow';

/** `inferctl janitor`: flags in, `janitorCommand` out. */
export function addJanitorCommand(program: Command): void {
  program
    .command('janitor')
    .description(
      'Delete the AKS clusters, resource groups and namespaces this installation made whose workflow is closed, ' +
        'terminated or unknown; those of another installation (environment tag) are listed and left alone',
    )
    .option('--dry-run', 'list what would be deleted (and what is skipped); delete nothing')
    .option(
      '--every <duration>',
      `run it on a Temporal Schedule (id ${JANITOR_SCHEDULE_ID}) this often instead of now`,
      duration('--every'),
    )
    .option('--task-queue <queue>', 'control worker task queue (its worker needs the aks settings)', CONTROL_TASK_QUEUE)
    .option('--json', 'print one JSON document')
    .addHelpText('after', AKS_HELP)
    .action(async (o) => {
      await withClient(Boolean(o.json), async (ctx) => {
        const result = await janitorCommand(ctx, {
          dryRun: Boolean(o.dryRun),
          everySeconds: o.every,
          taskQueue: o.taskQueue,
        });
        ctx.out.result(result);
      });
    });
}

export interface JanitorCommandOptions {
  dryRun: boolean;
  everySeconds?: number;
  taskQueue: string;
}

export async function janitorCommand(
  ctx: CommandContext,
  opts: JanitorCommandOptions,
): Promise<JanitorReport | { scheduleId: string; everySeconds: number }> {
  if (opts.everySeconds !== undefined) return scheduleJanitor(ctx, opts.everySeconds, opts);

  const workflowId = `janitor-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const handle = await startIndexed(
    ctx.client,
    janitor,
    {
      taskQueue: opts.taskQueue,
      workflowId,
      args: [{ dryRun: opts.dryRun }],
      staticSummary: `Janitor${opts.dryRun ? ' (dry run)' : ''}: delete AKS resources whose owning workflow is gone`,
    },
    [{ key: InferctlKind, value: 'janitor' }],
    ctx.out,
  );
  ctx.out.line(`Started ${workflowId}`);
  const report = await handle.result();
  const skipped = report.skipped ?? [];
  ctx.out.line(
    `Checked ${report.checked} resource(s) inferctl made; ${report.orphans.length} orphaned, ${skipped.length} ` +
      `another installation's` +
      (report.dryRun ? ' (dry run: nothing deleted)' : `; deleted ${report.deleted.length}`),
  );
  for (const o of report.orphans) {
    const done = report.deleted.includes(resourceLabel(o));
    ctx.out.line(
      `  ${done ? 'deleted' : report.dryRun ? 'would delete' : 'kept'}  ${resourceLabel(o)} (owner ${o.owner}: ${o.ownerStatus})`,
    );
  }
  for (const o of skipped) ctx.out.line(`  skipped  ${resourceLabel(o)} (owner ${o.owner}): ${o.skipReason}`);
  return report;
}

async function scheduleJanitor(ctx: CommandContext, everySeconds: number, opts: JanitorCommandOptions) {
  const spec = { intervals: [{ every: everySeconds * 1000 }] }; // ms
  const action = {
    type: 'startWorkflow' as const,
    workflowType: janitor,
    args: [{ dryRun: opts.dryRun }] as [JanitorInput],
    taskQueue: opts.taskQueue,
    workflowId: 'janitor-scheduled',
    typedSearchAttributes: [{ key: InferctlKind, value: 'janitor' }],
    staticSummary: 'Scheduled janitor: delete AKS resources whose owning workflow is gone',
  };
  try {
    await ctx.client.schedule.create({
      scheduleId: JANITOR_SCHEDULE_ID,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      state: { note: 'created by inferctl janitor --every' },
    });
    ctx.out.line(
      `Schedule ${JANITOR_SCHEDULE_ID} created: the janitor runs every ${formatDuration(everySeconds * 1000)}.`,
    );
  } catch (err) {
    if (!(err instanceof Error) || !/already (exists|running|registered)/i.test(err.message)) throw err;
    await ctx.client.schedule.getHandle(JANITOR_SCHEDULE_ID).update((previous) => ({ ...previous, spec, action }));
    ctx.out.line(
      `Schedule ${JANITOR_SCHEDULE_ID} updated: the janitor runs every ${formatDuration(everySeconds * 1000)}.`,
    );
  }
  return { scheduleId: JANITOR_SCHEDULE_ID, everySeconds };
}
