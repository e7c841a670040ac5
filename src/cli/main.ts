/**
 * The `inferctl` command line. This file only builds the program, registers the commands (each command
 * file adds its own subcommand with typed flags and calls its exported async function) and maps errors to
 * exit codes: 0 done, 1 failed, 2 bad input (src/cli/exit-codes.ts, docs/cli.md).
 */
import fs from 'node:fs';
import path from 'node:path';

import { Command, CommanderError } from '@commander-js/extra-typings';
import type { CommandUnknownOpts } from '@commander-js/extra-typings';

import { InvalidInputError } from '../errors';
import { packageRoot } from '../paths';
import { CliError } from './cli-error';
import { ExitCode } from './exit-codes';
import { addCodecServerCommand } from './commands/codec-server';
import { addDeployCommand } from './commands/deploy';
import { addDeploymentCommands } from './commands/deployments';
import { addScaleCommand } from './commands/scale';
import { addDevCommand } from './commands/dev';
import { addJanitorCommand } from './commands/janitor';
import { addModelCommands } from './commands/model';
import { addRolloutCommand } from './commands/rollout';
import { addScheduleCommands } from './commands/schedule-program';
import { addScoreCommands } from './commands/score';
import { addGpuWorkerCommand, addWorkerCommand } from './commands/workers';
import { ENV_HELP } from './help-text';

const USAGE_HINT = '(run with --help for usage)';

function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command('inferctl')
    .description(
      'Deploy ONNX models as GPU web services and prove they answer, as durable Temporal workflows\n' +
        'that always tear down what they created.',
    )
    .version(packageVersion())
    .showHelpAfterError(USAGE_HINT)
    .addHelpText('after', ENV_HELP);

  // In the order `inferctl --help` lists them.
  addDeployCommand(program);
  addDeploymentCommands(program);
  addScaleCommand(program);
  addRolloutCommand(program);
  addWorkerCommand(program);
  addScoreCommands(program);
  addGpuWorkerCommand(program);
  addJanitorCommand(program);
  addModelCommands(program);
  addScheduleCommands(program);
  addCodecServerCommand(program);
  addDevCommand(program);

  for (const cmd of allCommands(program)) cmd.showHelpAfterError(USAGE_HINT);
  return program;
}

/** A command and every command under it, at any depth. */
function allCommands(cmd: CommandUnknownOpts): CommandUnknownOpts[] {
  return [cmd, ...cmd.commands.flatMap((c) => allCommands(c))];
}

/** Runs the command line and returns the exit code; only the entry (bin/inferctl.js) exits. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // Usage errors anywhere (subcommands of subcommands too) come back here to exit 2, not 1.
  for (const cmd of allCommands(program)) cmd.exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    return exitCode(err);
  }
}

/** Says why on stderr (commander already printed its own usage errors) and picks the exit code. */
function exitCode(err: unknown): number {
  // Help and version exit 0; usage errors are bad usage.
  if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.Ok : ExitCode.BadInput;
  process.stderr.write(`inferctl: ${err instanceof Error ? err.message : String(err)}\n`);
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof InvalidInputError) return ExitCode.BadInput;
  return ExitCode.Failed;
}

if (require.main === module) {
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`inferctl: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
