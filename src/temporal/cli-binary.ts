/**
 * Finding the Temporal CLI (`temporal`), which runs the dev server: TEMPORAL_CLI_PATH, then PATH, then
 * inferctl's cache; if none and Go is installed, build it once into the cache.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { inferctlCacheDir } from '../paths';

/**
 * The CLI release built from source. v1.5.1 is the newest tag whose go.mod has no `replace`
 * directive, which `go install module@version` requires.
 */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

/** Longer than any build (a cold one with downloads takes a few minutes); an older lock is stale. */
const STALE_LOCK_MS = 20 * 60_000;

/** Thrown when no `temporal` binary can be found or built; the message lists the ways to install one. */
export class TemporalCliNotFoundError extends Error {
  constructor(detail: string) {
    super(
      `${detail} Install the Temporal CLI one of these ways, then retry:\n` +
        '  brew install temporal\n' +
        '  curl -sSf https://temporal.download/cli.sh | sh   (or a release from github.com/temporalio/cli/releases)\n' +
        `  go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}\n` +
        'or point TEMPORAL_CLI_PATH at an existing binary.',
    );
    this.name = 'TemporalCliNotFoundError';
  }
}

export interface FindCliOptions {
  /** Build with `go install` when nothing is found and Go is available. */
  build?: boolean;
  log?: (line: string) => void;
}

export function cachedCliPath(): string {
  return path.join(inferctlCacheDir(), 'bin', process.platform === 'win32' ? 'temporal.exe' : 'temporal');
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export async function findTemporalCli(opts: FindCliOptions = {}): Promise<string> {
  const explicit = process.env.TEMPORAL_CLI_PATH;
  if (explicit) {
    const resolved = path.resolve(explicit);
    if (isExecutable(resolved)) return resolved;
    throw new TemporalCliNotFoundError(
      `TEMPORAL_CLI_PATH=${explicit} ${fs.existsSync(resolved) ? 'is not an executable file' : 'does not exist'}.`,
    );
  }
  const found = onPath('temporal') ?? (isExecutable(cachedCliPath()) ? cachedCliPath() : undefined);
  if (found) return found;
  const go = onPath('go');
  if (!opts.build || !go) {
    throw new TemporalCliNotFoundError(
      `No Temporal CLI found (looked at TEMPORAL_CLI_PATH, PATH and ${cachedCliPath()})${go ? '' : ' and Go is not installed to build one'}.`,
    );
  }
  return buildWithGo(go, opts.log ?? (() => undefined));
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the build lock: a directory (mkdir is atomic) holding the builder's pid. Waiters log once and
 * poll. A lock whose builder is gone, or older than any build takes, is broken, by one waiter at a time
 * (under a second mkdir lock, re-reading the owner) so that no one breaks the lock of a live builder.
 */
async function acquireBuildLock(lock: string, log: (line: string) => void): Promise<void> {
  const stale = async () => {
    const owner = Number(await fsp.readFile(path.join(lock, 'pid'), 'utf8').catch(() => ''));
    const age = Date.now() - (await fsp.stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
    return (owner > 0 && !processAlive(owner)) || age > STALE_LOCK_MS;
  };
  let waiting = false;
  for (;;) {
    try {
      await fsp.mkdir(lock);
      await fsp.writeFile(path.join(lock, 'pid'), String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await stale()) {
      const breaking = `${lock}.break`;
      const breakerAge = Date.now() - (await fsp.stat(breaking).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (breakerAge > 60_000) await fsp.rm(breaking, { recursive: true, force: true });
      if (
        await fsp.mkdir(breaking).then(
          () => true,
          () => false,
        )
      ) {
        try {
          if (await stale()) await fsp.rm(lock, { recursive: true, force: true }); // a build that died
        } finally {
          await fsp.rm(breaking, { recursive: true, force: true });
        }
        continue;
      }
    }
    if (!waiting) log(`Waiting for another process that is building the Temporal CLI (lock ${lock})…`);
    waiting = true;
    await delay(1000);
  }
}

/** `GOBIN=<cache>/bin go install …@v1.5.1`, once, under a lock so concurrent callers wait for one build. */
async function buildWithGo(go: string, log: (line: string) => void): Promise<string> {
  const target = cachedCliPath();
  const lock = `${path.dirname(target)}.build-lock`;
  await fsp.mkdir(path.dirname(target), { recursive: true });
  await acquireBuildLock(lock, log);
  try {
    if (isExecutable(target)) return target;
    log(
      `Building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go into ${path.dirname(target)} (once; a few minutes)…`,
    );
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['install', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], {
        env: { ...process.env, GOBIN: path.dirname(target), CGO_ENABLED: process.env.CGO_ENABLED ?? '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let tail = '';
      let partial = '';
      const collect = (d: Buffer) => {
        const text = d.toString();
        tail = (tail + text).slice(-4000);
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) log(`  go: ${line.trim()}`);
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      child.once('error', reject);
      child.once('exit', (code) => {
        if (partial.trim()) log(`  go: ${partial.trim()}`);
        if (code === 0) resolve();
        else reject(new TemporalCliNotFoundError(`go install failed (exit ${code}):\n${tail}`));
      });
    });
    if (!isExecutable(target)) throw new TemporalCliNotFoundError(`go install finished but ${target} is missing.`);
    return target;
  } finally {
    await fsp.rm(lock, { recursive: true, force: true });
  }
}
