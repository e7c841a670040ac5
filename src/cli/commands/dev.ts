/**
 * `inferctl dev`: a local Temporal dev server in the foreground, with the Web UI and inferctl's
 * search attributes, persisted in a SQLite file so history survives restarts.
 */
import path from 'node:path';

import type { Command } from '@commander-js/extra-typings';

import { inferctlHome } from '../../paths';
import { startDevServer } from '../../temporal/dev-server';
import { int } from '../flag-parsers';

/** `inferctl dev`: flags in, `devCommand` out. */
export function addDevCommand(program: Command): void {
  program
    .command('dev')
    .description('Run a local Temporal dev server (SQLite file, Web UI, inferctl search attributes) until Ctrl-C')
    .option('--data-dir <dir>', 'where the SQLite file lives', path.join(inferctlHome(), 'dev'))
    .option('--port <port>', 'gRPC port', int('--port', 1), 7233)
    .option('--ui-port <port>', 'Web UI port', int('--ui-port', 1), 8233)
    .option('--ip <ip>', 'address to bind', '127.0.0.1')
    .action(async (o) => {
      await devCommand({ dataDir: path.resolve(o.dataDir), port: o.port, uiPort: o.uiPort, ip: o.ip });
    });
}

export interface DevCommandOptions {
  dataDir: string;
  port: number;
  uiPort: number;
  ip: string;
}

export async function devCommand(opts: DevCommandOptions): Promise<void> {
  process.stdout.write('Starting the Temporal dev server (the first run may build the Temporal CLI, ~3 min)…\n');
  const server = await startDevServer({
    dataDir: opts.dataDir,
    port: opts.port,
    uiPort: opts.uiPort,
    ip: opts.ip,
    buildCli: true,
    logFile: `${opts.dataDir}/temporal.log`,
  });
  process.stdout.write(
    [
      `Temporal dev server on ${server.address} (namespace ${server.namespace})`,
      `Web UI:   ${server.uiUrl ?? '(headless)'}`,
      `Data:     ${server.dbFile}`,
      // Anything but the default address must be named to the workers and the CLI.
      server.address === 'localhost:7233' || server.address === '127.0.0.1:7233'
        ? 'Next, in another terminal: inferctl worker'
        : `Next, in another terminal: export TEMPORAL_ADDRESS=${server.address}; then inferctl worker ` +
          '(every inferctl command and worker needs that address)',
      'Ctrl-C stops the server.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.stdout.write('Stopping the dev server…\n');
  await server.stop();
}
