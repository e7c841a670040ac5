/** `inferctl schedule …` subcommands: flags in, the command functions of ./schedule out. */
import { Option } from '@commander-js/extra-typings';
import type { Command } from '@commander-js/extra-typings';

import { CONTROL_TASK_QUEUE } from '../../shared/deploy-types';
import { OUTPUT_TEMPLATE_FIELDS } from '../../shared/output-template';
import { addBatchJobOptions, batchJobFlags, jobLocation } from '../batch-flags';
import { withClient } from '../client-context';
import { duration, isoDate } from '../flag-parsers';
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
} from './schedule';
import type { OverlapName } from './schedule';

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
    `output directory or blob prefix (az://<account>/<container>/<prefix>); may use the slot's scheduled time (UTC): ${OUTPUT_TEMPLATE_FIELDS.map((f) => `{${f}}`).join(' ')}, e.g. 'out/{date}'`,
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
    .action(async (name, o) => {
      const flags = batchJobFlags(o, 'schedule create');
      // Check the calendar before connecting: a bad cron is a usage error whatever the server.
      scheduleSpec({ cron: o.cron, intervalSeconds: o.interval });
      await withClient(Boolean(o.json), (ctx) =>
        scheduleCreateCommand(ctx, {
          ...flags,
          // Keep the template's braces; make the path absolute where the user typed it.
          outputDir: jobLocation(flags.outputDir),
          name,
          cron: o.cron,
          intervalSeconds: o.interval,
          jitterSeconds: o.jitter,
          timezone: o.timezone,
          overlap: o.overlap,
          catchupWindowSeconds: o.catchupWindow,
          paused: Boolean(o.paused),
          note: o.note,
          taskQueue: o.taskQueue,
        }),
      );
    });

  schedule
    .command('list')
    .description('List schedules')
    .addOption(json())
    .action(async (o) => {
      await withClient(Boolean(o.json), (ctx) => scheduleListCommand(ctx));
    });

  schedule
    .command('describe <name>')
    .description('Next runs, and recent runs with their results')
    .addOption(json())
    .action(async (name, o) => {
      await withClient(Boolean(o.json), (ctx) => scheduleDescribeCommand(ctx, { name }));
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
      .action(async (name, o) => {
        await withClient(Boolean(o.json), (ctx) => schedulePauseCommand(ctx, { name, pause, note: o.note }));
      });
  }

  schedule
    .command('trigger <name>')
    .description('Start a run now, outside the calendar')
    .addOption(new Option('--overlap <policy>', 'overlap policy for this run').choices(OVERLAP_NAMES))
    .addOption(json())
    .action(async (name, o) => {
      await withClient(Boolean(o.json), (ctx) => scheduleTriggerCommand(ctx, { name, overlap: o.overlap }));
    });

  schedule
    .command('backfill <name>')
    .description("Run the slots between --from and --to now; each writes its own slot's output")
    .requiredOption('--from <time>', 'start, ISO 8601 (e.g. 2026-11-20T00:00:00Z)', isoDate('--from'))
    .requiredOption('--to <time>', 'end, ISO 8601', isoDate('--to'))
    .addOption(overlap('allow-all'))
    .addOption(json())
    .action(async (name, o) => {
      await withClient(Boolean(o.json), (ctx) =>
        scheduleBackfillCommand(ctx, { name, from: o.from, to: o.to, overlap: o.overlap }),
      );
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
    .action(async (name, o) => {
      await withClient(Boolean(o.json), (ctx) =>
        scheduleUpdateCommand(ctx, {
          name,
          cron: o.cron,
          intervalSeconds: o.interval,
          jitterSeconds: o.jitter,
          timezone: o.timezone,
          overlap: o.overlap,
          catchupWindowSeconds: o.catchupWindow,
          modelPath: o.model,
          inputPath: o.input,
          outputDir: o.output,
        }),
      );
    });

  schedule
    .command('delete <name>')
    .description('Delete a schedule (runs it started are not affected)')
    .addOption(json())
    .action(async (name, o) => {
      await withClient(Boolean(o.json), (ctx) => scheduleDeleteCommand(ctx, { name }));
    });
}
