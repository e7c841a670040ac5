/**
 * A worker's flag table (worker/worker-flags.ts) as commander options, so that `inferctl worker` and
 * `inferctl gpu-worker` take exactly the flags `node dist/worker/*.js` takes, with the same help, and hand
 * back only what the command line gave (the variables and defaults are applied by the worker's table).
 */
import { Option } from '@commander-js/extra-typings';
import type { Command } from '@commander-js/extra-typings';

import { flagHelp, flagSpelling } from '../../worker/worker-flags';
import type { GivenFlags, WorkerFlagTable } from '../../worker/worker-flags';

/** Adds one option per row; booleans that default to true as `--no-<name>`. */
export function addWorkerFlagOptions(command: Command, table: WorkerFlagTable): Command {
  for (const flag of table) {
    command.addOption(new Option(`${flagSpelling(flag)}${flag.value ? ` ${flag.value}` : ''}`, flagHelp(flag)));
  }
  return command;
}

/** The flags given on the command line, by table name; those commander filled in itself are left out. */
export function givenWorkerFlags(command: Command, table: WorkerFlagTable): GivenFlags {
  const opts = command.opts() as Record<string, string | boolean | undefined>;
  const given: Record<string, string | boolean | undefined> = {};
  for (const flag of table) {
    const key = flag.name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (command.getOptionValueSource(key) === 'cli') given[flag.name] = opts[key];
  }
  return given;
}
