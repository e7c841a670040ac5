/**
 * Runs `temporal server start-dev`: a real Temporal server with a SQLite file, the Web UI, and
 * inferctl's search attributes, on loopback. Used by `inferctl dev`, the demo, the tests and the bench.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { Connection } from '@temporalio/client';

import { SEARCH_ATTRIBUTES } from '../shared/search-attributes';
import type { SearchAttributeSpec, SearchAttributeTypeName } from '../shared/search-attributes';
import { findTemporalCli } from './cli-binary';

const START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;

export interface DevServerOptions {
  /** Holds temporal.sqlite; created if missing. Restarting on the same dir keeps every workflow. */
  dataDir: string;
  /** Address the gRPC frontend and the Web UI bind to (default 127.0.0.1). */
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
  /** Progress lines (a CLI build); default stderr. */
  log?: (line: string) => void;
  /** The search attributes to register (default inferctl's own). */
  searchAttributes?: ReadonlyArray<SearchAttributeSpec>;
}

export interface DevServer {
  /** host:port of the gRPC frontend. */
  address: string;
  /** Base URL of the Web UI; undefined when headless. */
  uiUrl: string | undefined;
  namespace: string;
  pid: number;
  dbFile: string;
  logFile: string;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. Idempotent. */
  stop(): Promise<void>;
}

/** Thrown when the dev server cannot start or does not answer; the message carries its log's tail. */
export class DevServerError extends Error {
  readonly logFile: string | undefined;
  constructor(message: string, logFile?: string) {
    super(message);
    this.name = 'DevServerError';
    this.logFile = logFile;
  }
}

/** Thrown when a port asked for is taken; the message names the flag that picks another. */
export class PortInUseError extends DevServerError {
  readonly port: number;
  readonly ip: string;
  constructor(port: number, ip: string, flag: string) {
    super(`Port ${port} on ${ip} is already in use; pick another with ${flag} (or stop what uses it).`);
    this.name = 'PortInUseError';
    this.port = port;
    this.ip = ip;
  }
}

/** Thrown when the data dir already has one of the search attributes with another type. */
export class SearchAttributeConflictError extends DevServerError {
  constructor(dbFile: string, conflicts: ReadonlyArray<{ name: string; has: string; wants: string }>) {
    super(
      `${dbFile} has ${conflicts.map((c) => `search attribute ${c.name} of type ${c.has}`).join(', ')}, but ` +
        `inferctl needs ${conflicts.map((c) => `${c.name}=${c.wants}`).join(', ')}. ` +
        'Start the server on a fresh data dir (or delete that file; the workflows in it are lost).',
    );
    this.name = 'SearchAttributeConflictError';
  }
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

/** Whether nothing listens on `port` right now (a bind that is released at once). */
export function portIsFree(port: number, ip = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, ip, () => srv.close(() => resolve(true)));
  });
}

async function assertPortFree(port: number, ip: string, flag: string): Promise<void> {
  if (!(await portIsFree(port, ip))) throw new PortInUseError(port, ip, flag);
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const searchAttributes = opts.searchAttributes ?? SEARCH_ATTRIBUTES;
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
  await fsp.mkdir(path.dirname(logFile), { recursive: true });
  // On an existing SQLite file the CLI skips namespace creation and with it every --search-attribute
  // flag (no error, whatever the types): waitUntilServing registers what is missing and refuses conflicts.
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
    ...searchAttributes.flatMap((a) => ['--search-attribute', `${a.name}=${a.type}`]),
  ];
  const log = fs.openSync(logFile, 'a');
  // Its own process group, so that stop() reaches everything it runs and a Ctrl-C meant for us does not.
  const child = spawn(cli, args, { stdio: ['ignore', log, log], detached: true });
  fs.closeSync(log);
  const pid = child.pid;
  if (pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new DevServerError(`Cannot run ${cli}: ${err.message}`, logFile);
  }
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const guard = stopWithThisProcess(pid);
  void exit.then(() => {
    exited = true;
    guard.kill('SIGKILL');
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= terminate(pid, exit, () => exited));

  // Clients reach a wildcard bind through localhost; an IPv6 literal needs brackets.
  const host = ip === '0.0.0.0' || ip === '::' ? 'localhost' : ip.includes(':') ? `[${ip}]` : ip;
  const address = `${host}:${port}`;
  try {
    await waitUntilServing({ address, namespace, searchAttributes, dbFile, logFile }, () => exited);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    address,
    uiUrl: uiPort === undefined ? undefined : `http://${host}:${uiPort}`,
    namespace,
    pid,
    dbFile,
    logFile,
    stop,
  };
}

async function terminate(pid: number, exit: Promise<void>, exited: () => boolean): Promise<void> {
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  };
  if (exited()) return;
  signalGroup('SIGTERM');
  const timer = new AbortController();
  const graceful = await Promise.race([
    exit.then(() => true),
    delay(STOP_GRACE_MS, false, { signal: timer.signal }).catch(() => true),
  ]);
  timer.abort();
  if (!graceful) {
    signalGroup('SIGKILL');
    await exit;
  }
}

/**
 * A tiny detached watcher that stops the server if this process dies without calling stop() (SIGKILL,
 * a crash, a CI timeout killing our process group): it holds a pipe from us, and when the pipe closes
 * it sends SIGTERM, then SIGKILL, to the server's process group. Once the server has exited (stop() or
 * otherwise) the watcher is killed.
 */
function stopWithThisProcess(serverPid: number): ChildProcess {
  const script = `
    const pid = Number(process.argv[1]);
    const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
    const signal = (s) => { try { process.kill(-pid, s); } catch {} };
    process.stdin.on('data', () => {});
    process.stdin.on('close', () => {
      if (!alive()) process.exit(0);
      signal('SIGTERM');
      const t0 = Date.now();
      setInterval(() => {
        if (!alive()) process.exit(0);
        if (Date.now() - t0 > ${STOP_GRACE_MS}) { signal('SIGKILL'); process.exit(0); }
      }, 100);
    });`;
  const watcher = spawn(process.execPath, ['-e', script, String(serverPid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  watcher.unref();
  (watcher.stdin as unknown as net.Socket | null)?.unref();
  watcher.once('error', () => undefined);
  return watcher;
}

interface ServingCheck {
  address: string;
  namespace: string;
  searchAttributes: ReadonlyArray<SearchAttributeSpec>;
  dbFile: string;
  logFile: string;
}

/** Waits until the frontend answers, the namespace exists and every search attribute is registered. */
async function waitUntilServing(check: ServingCheck, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last: unknown;
  while (Date.now() < deadline) {
    if (exited()) {
      throw new DevServerError(
        `The Temporal dev server exited during start-up. Its log (${check.logFile}) ends with:\n${await tail(check.logFile)}`,
        check.logFile,
      );
    }
    try {
      const connection = await Connection.connect({ address: check.address, connectTimeout: '2s' });
      try {
        await connection.workflowService.describeNamespace({ namespace: check.namespace });
        const missing = await registerSearchAttributes(connection, check);
        if (missing.length === 0) return;
        last = new Error(`search attributes not listed yet: ${missing.join(', ')}`);
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (err instanceof SearchAttributeConflictError) throw err;
      last = err;
    }
    await delay(250);
  }
  throw new DevServerError(
    `The Temporal dev server at ${check.address} did not answer within ${START_TIMEOUT_MS / 1000} s ` +
      `(${last instanceof Error ? last.message : String(last)}). Its log (${check.logFile}) ends with:\n` +
      (await tail(check.logFile)),
    check.logFile,
  );
}

const TYPE_CODES: Record<SearchAttributeTypeName, number> = {
  Text: 1,
  Keyword: 2,
  Int: 3,
  Double: 4,
  Bool: 5,
  Datetime: 6,
  KeywordList: 7,
};

/** The CLI's name for a type as the API returns it (a number, or the enum's name). */
function typeName(value: unknown): string {
  const byCode = Object.entries(TYPE_CODES).find(([, code]) => code === value)?.[0];
  if (byCode) return byCode;
  const fromEnum = /^INDEXED_VALUE_TYPE_(.+)$/.exec(String(value))?.[1];
  const byEnum = Object.keys(TYPE_CODES).find((name) => name.toUpperCase() === fromEnum?.replace('_', ''));
  return byEnum ?? String(value);
}

/**
 * Registers the search attributes the namespace lacks (a data dir created before they existed) and
 * returns the names not listed yet; throws when one exists with another type.
 */
async function registerSearchAttributes(connection: Connection, check: ServingCheck): Promise<string[]> {
  const { namespace, searchAttributes } = check;
  const listed = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  const conflicts = searchAttributes
    .filter((a) => a.name in listed && typeName(listed[a.name]) !== a.type)
    .map((a) => ({ name: a.name, has: typeName(listed[a.name]), wants: a.type }));
  if (conflicts.length > 0) throw new SearchAttributeConflictError(check.dbFile, conflicts);
  const missing = searchAttributes.filter((a) => !(a.name in listed));
  if (missing.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((a) => [a.name, TYPE_CODES[a.type]])),
    });
  }
  return missing.map((a) => a.name);
}

async function tail(file: string): Promise<string> {
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-15).join('\n');
}
