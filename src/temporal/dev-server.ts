/**
 * Runs `temporal server start-dev`: a real Temporal server with a SQLite file, the Web UI, and
 * inferctl's search attributes, on loopback. Used by `inferctl dev`, the demo, the tests and the bench.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { Connection } from '@temporalio/client';

import { SEARCH_ATTRIBUTES } from '../shared/search-attributes';
import { findTemporalCli } from './cli-binary';

export interface DevServerOptions {
  /** Holds temporal.sqlite; created if missing. Restarting on the same dir keeps every workflow. */
  dataDir: string;
  ip?: string;
  /** gRPC port; a free one when not given. */
  port?: number;
  /** Web UI port; a free one when not given. */
  uiPort?: number;
  headless?: boolean;
  namespace?: string;
  /** Where the server's output goes (default <dataDir>/temporal.log). */
  logFile?: string;
  cliPath?: string;
  /** Build the CLI with Go when it is not installed. */
  buildCli?: boolean;
  log?: (line: string) => void;
}

export interface DevServer {
  address: string;
  uiUrl: string | undefined;
  namespace: string;
  pid: number;
  dbFile: string;
  logFile: string;
  stop(): Promise<void>;
}

/** A TCP port nothing listens on right now. */
export function freePort(ip = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, ip, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function assertPortFree(port: number, ip: string, flag: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', () =>
      reject(new Error(`Port ${port} on ${ip} is already in use; pick another with ${flag} (or stop what uses it).`)),
    );
    srv.listen(port, ip, () => srv.close(() => resolve()));
  });
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const cli =
    opts.cliPath ??
    (await findTemporalCli({ build: opts.buildCli, log: opts.log ?? ((l) => process.stderr.write(`${l}\n`)) }));
  await fsp.mkdir(opts.dataDir, { recursive: true });
  const port = opts.port ?? (await freePort(ip));
  const uiPort = opts.headless ? undefined : (opts.uiPort ?? (await freePort(ip)));
  await assertPortFree(port, ip, '--port');
  if (uiPort !== undefined) await assertPortFree(uiPort, ip, '--ui-port');

  const dbFile = path.join(opts.dataDir, 'temporal.sqlite');
  const logFile = opts.logFile ?? path.join(opts.dataDir, 'temporal.log');
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    dbFile,
    '--ip',
    ip,
    '--port',
    String(port),
    '--namespace',
    namespace,
    '--log-level',
    'warn',
    ...(uiPort === undefined ? ['--headless'] : ['--ui-port', String(uiPort)]),
    ...SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', `${a.name}=${a.type}`]),
  ];
  const log = fs.openSync(logFile, 'a');
  const child = spawn(cli, args, { stdio: ['ignore', log, log], detached: true });
  fs.closeSync(log);
  let exited = false;
  child.once('exit', () => (exited = true));

  const address = `${ip}:${port}`;
  const stop = async () => {
    if (exited) return;
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      return;
    }
    for (let i = 0; i < 100 && !exited; i++) await delay(100);
    if (!exited) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      for (let i = 0; i < 50 && !exited; i++) await delay(100);
    }
  };

  try {
    await waitUntilServing(address, namespace, () => exited, logFile);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    address,
    uiUrl: uiPort === undefined ? undefined : `http://${ip === '0.0.0.0' ? 'localhost' : ip}:${uiPort}`,
    namespace,
    pid: child.pid!,
    dbFile,
    logFile,
    stop,
  };
}

/** Waits until the frontend answers, the namespace exists and every search attribute is registered. */
async function waitUntilServing(
  address: string,
  namespace: string,
  exited: () => boolean,
  logFile: string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last: unknown;
  while (Date.now() < deadline) {
    if (exited())
      throw new Error(`The Temporal dev server exited during start-up. Its log (${logFile}):\n${await tail(logFile)}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: '2s' });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
        const missing = SEARCH_ATTRIBUTES.filter((a) => !customAttributes || !(a.name in customAttributes));
        if (missing.length === 0) return;
        last = new Error(`search attributes not registered yet: ${missing.map((a) => a.name).join(', ')}`);
      } finally {
        await connection.close();
      }
    } catch (err) {
      last = err;
    }
    await delay(250);
  }
  throw new Error(
    `The Temporal dev server at ${address} did not answer within 60 s (${String(last)}). Log: ${logFile}`,
  );
}

async function tail(file: string): Promise<string> {
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-15).join('\n');
}
