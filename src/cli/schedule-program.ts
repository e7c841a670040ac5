/** `inferctl schedule …` subcommands: flags in, command functions out. */
import path from 'node:path';

import { Option } from 'commander';
import type { Command } from 'commander';

import { CONTROL_TASK_QUEUE } from '../shared/deploy-types';
import { OUTPUT_TEMPLATE_FIELDS } from '../shared/output-template';
import { addBatchJobOptions, batchJobFlags } from './batch-flags';
import { withClient } from './client-context';
import {
  OVERLAP_NAMES,
  scheduleBackfillCommand,
  scheduleCreateCommand,
  scheduleDeleteCommand,
  scheduleDescribeCommand,
  scheduleListCommand,
  schedulePauseCommand,
  scheduleTriggerCommand,
  scheduleSpec,
  scheduleUpdateCommand,
} from './commands/schedule';
import type { OverlapName } from './commands/schedule';
import { duration, isoDate } from './flag-parsers';

const json = () => new Option('--json', 'print one JSON document');
const overlap = (fallback: OverlapName) =>
  new Option('--overlap <policy>', 'when a run is still going at the next slot')
    .choices(OVERLAP_NAMES)
    .default(fallback);

export function addScheduleCommands(program: Command): void {
  const schedule = program
    .command('schedule')
    .description(
      'Recurring batch scoring with Temporal Schedules: create, list, describe, pause, unpause, trigger, backfill, update, delete',
    );

  addBatchJobOptions(
    schedule
      .command('create <name>')
      .description(
        'Create a schedule that runs batch scoring at each slot (workflow ids score-<name>-<scheduled time>)',
      ),
    `output directory; may use the slot's scheduled time (UTC): ${OUTPUT_TEMPLATE_FIELDS.map((f) => `{${f}}`).join(' ')}, e.g. 'out/{date}'`,
  )
    .option('--cron <expr>', 'five-field cron, e.g. "0 2 * * *" (02:00 every day)')
    .option('--interval <duration>', 'or every so often, e.g. 6h', duration('--interval'))
    .option('--jitter <duration>', 'start each run up to this much later, at random', duration('--jitter'))
    .option('--timezone <tz>', 'time zone of the cron, e.g. Europe/Berlin (default UTC)')
    .addOption(overlap('skip'))
    .option(
      '--catchup-window <duration>',
      'run missed slots (server down) up to this long after',
      duration('--catchup-window'),
      86400,
    )
    .option('--paused', 'create it paused')
    .option('--note <text>', 'a note shown with the schedule')
    .option('--task-queue <queue>', 'control worker task queue', CONTROL_TASK_QUEUE)
    .addOption(json())
    .action(async (name: string, o: Record<string, unknown>) => {
      const flags = batchJobFlags(o, 'schedule create');
      // Check the calendar before connecting: a bad cron is a usage error whatever the server.
      scheduleSpec({ cron: o.cron as string | undefined, intervalSeconds: o.interval as number | undefined });
      await withClient(Boolean(o.json), (ctx) =>
        scheduleCreateCommand(ctx, {
          ...flags,
          // Keep the template's braces; make the path absolute where the user typed it.
          outputDir: path.resolve(flags.outputDir),
          name,
          cron: o.cron as string | undefined,
          intervalSeconds: o.interval as number | undefined,
          jitterSeconds: o.jitter as number | undefined,
          timezone: o.timezone as string | undefined,
          overlap: o.overlap as OverlapName,
          catchupWindowSeconds: o.catchupWindow as number,
          paused: Boolean(o.paused),
          note: o.note as string | undefined,
          taskQueue: o.taskQueue as string,
        }),
      );
    });

  schedule
    .command('list')
    .description('List schedules')
    .addOption(json())
    .action(async (o: { json?: boolean }) => {
      await withClient(Boolean(o.json), (ctx) => scheduleListCommand(ctx));
    });

  schedule
    .command('describe <name>')
    .description('Next runs, and recent runs with their results')
    .addOption(json())
    .action(async (name: string, o: { json?: boolean }) => {
      await withClient(Boolean(o.json), (ctx) => scheduleDescribeCommand(ctx, name));
    });

  for (const [verb, pause] of [
    ['pause', true],
    ['unpause', false],
  ] as const) {
    schedule
      .command(`${verb} <name>`)
      .description(pause ? 'Stop starting runs (running ones continue)' : 'Start runs again')
      .option('--note <text>', 'why')
      .addOption(json())
      .action(async (name: string, o: { note?: string; json?: boolean }) => {
        await withClient(Boolean(o.json), (ctx) => schedulePauseCommand(ctx, name, pause, o.note));
      });
  }

  schedule
    .command('trigger <name>')
    .description('Start a run now, outside the calendar')
    .addOption(new Option('--overlap <policy>', 'overlap policy for this run').choices(OVERLAP_NAMES))
    .addOption(json())
    .action(async (name: string, o: { overlap?: OverlapName; json?: boolean }) => {
      await withClient(Boolean(o.json), (ctx) => scheduleTriggerCommand(ctx, name, o.overlap));
    });

  schedule
    .command('backfill <name>')
    .description("Run the slots between --from and --to now; each writes its own slot's output")
    .requiredOption('--from <time>', 'start, ISO 8601 (e.g. 2026-11-20T00:00:00Z)', isoDate('--from'))
    .requiredOption('--to <time>', 'end, ISO 8601', isoDate('--to'))
    .addOption(overlap('allow-all'))
    .addOption(json())
    .action(async (name: string, o: { from: Date; to: Date; overlap: OverlapName; json?: boolean }) => {
      await withClient(Boolean(o.json), (ctx) => scheduleBackfillCommand(ctx, name, o));
    });

  schedule
    .command('update <name>')
    .description('Change the calendar, policies or paths of a schedule')
    .option('--cron <expr>', 'new five-field cron')
    .option('--interval <duration>', 'new interval', duration('--interval'))
    .option('--jitter <duration>', 'new jitter', duration('--jitter'))
    .option('--timezone <tz>', 'new time zone')
    .addOption(new Option('--overlap <policy>', 'new overlap policy').choices(OVERLAP_NAMES))
    .option('--catchup-window <duration>', 'new catch-up window', duration('--catchup-window'))
    .option('-m, --model <path>', 'new model')
    .option('-i, --input <dir|manifest>', 'new input')
    .option('-o, --output <dir>', 'new output template')
    .addOption(json())
    .action(async (name: string, o: Record<string, unknown>) => {
      await withClient(Boolean(o.json), (ctx) =>
        scheduleUpdateCommand(ctx, name, {
          cron: o.cron as string | undefined,
          intervalSeconds: o.interval as number | undefined,
          jitterSeconds: o.jitter as number | undefined,
          timezone: o.timezone as string | undefined,
          overlap: o.overlap as OverlapName | undefined,
          catchupWindowSeconds: o.catchupWindow as number | undefined,
          modelPath: o.model as string | undefined,
          inputPath: o.input as string | undefined,
          outputDir: o.output as string | undefined,
        }),
      );
    });

  schedule
    .command('delete <name>')
    .description('Delete a schedule (runs it started are not affected)')
    .addOption(json())
    .action(async (name: string, o: { json?: boolean }) => {
      await withClient(Boolean(o.json), (ctx) => scheduleDeleteCommand(ctx, name));
    });
}
