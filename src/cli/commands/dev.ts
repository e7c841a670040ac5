/**
 * `inferctl dev`: a local Temporal dev server in the foreground, with the Web UI and inferctl's
 * search attributes, persisted in a SQLite file so history survives restarts.
 */
import { startDevServer } from '../../temporal/dev-server';

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
      'Next, in another terminal: inferctl worker',
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
