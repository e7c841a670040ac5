/**
 * The fence between a local deployment's teardown and anything that starts its gateway again (a mirror bake's
 * reading, the serving loop's gateway watch: gateway-process.ts) or its processes (deploy). Both sides hold the
 * deployment's lock, a directory `<deployment>/.lock` (mkdir is atomic) naming its holder, so they work across
 * processes and workers:
 *  - teardown writes `<deployment>/tearing-down` under the lock before it looks for processes to stop;
 *  - a restart checks that file under the lock and starts and records its gateway before letting go.
 * So a restart either finished before teardown's mark (its gateway runs, with the deployment's marker, when
 * teardown looks: found and stopped) or sees the mark and starts nothing. The window is closed, not narrowed.
 * A holder that died (a worker SIGKILLed) is known by its pid and start time, and its lock is taken over.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { fileExists } from '../../file-exists';
import type { LocalLayout } from './layout';
import { isSameProcess, processStartTime } from './processes';

/** How long a caller waits for the lock before it fails (and its activity is retried). */
const WAIT_MS = 60_000;
/** A lock directory whose holder never got to name itself (it died right after mkdir) is stale after this. */
const UNNAMED_STALE_MS = 10_000;

interface Holder {
  pid: number;
  startTime?: number;
  token: string;
}

/** Thrown when a local deployment's lock stays held by a live process for longer than a caller waits (WAIT_MS). */
export class DeploymentLockTimeoutError extends Error {
  constructor(readonly lockDir: string) {
    super(`The local deployment's lock ${lockDir} stayed held for ${WAIT_MS / 1000} s; it is retried.`);
    this.name = 'DeploymentLockTimeoutError';
  }
}

export function tearingDownFile(layout: LocalLayout): string {
  return path.join(layout.dir, 'tearing-down');
}

/**
 * Runs `work` while holding the deployment's lock; undefined, without running it, when the deployment's
 * directory does not exist (torn down, or never provisioned).
 */
export async function withDeploymentLock<T>(layout: LocalLayout, work: () => Promise<T>): Promise<T | undefined> {
  const lock = path.join(layout.dir, '.lock');
  const token = await acquire(lock);
  if (token === undefined) return undefined;
  try {
    return await work();
  } finally {
    await release(lock, token);
  }
}

/** The lock's token once taken; undefined when the deployment's directory is gone. */
async function acquire(lock: string): Promise<string | undefined> {
  const me: Holder = { pid: process.pid, startTime: await processStartTime(process.pid), token: crypto.randomUUID() };
  const deadline = Date.now() + WAIT_MS;
  for (let wait = 5; ; wait = Math.min(100, wait * 2)) {
    try {
      await fs.mkdir(lock);
      await fs.writeFile(path.join(lock, 'holder.json'), JSON.stringify(me));
      return me.token;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined; // the deployment's directory is gone (or went just now)
      if (code !== 'EEXIST') throw err;
    }
    await takeOverIfStale(lock);
    if (Date.now() > deadline) throw new DeploymentLockTimeoutError(lock);
    await delay(wait);
  }
}

/** Moves the lock aside when its holder is gone; a lock taken meanwhile by a live holder is put back. */
async function takeOverIfStale(lock: string): Promise<void> {
  const holder = await readHolder(lock);
  if (holder === 'gone') return;
  if (holder === undefined) {
    const since = await fs.stat(lock).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (since < UNNAMED_STALE_MS) return;
  } else if (await isSameProcess(holder.pid, holder.startTime)) return;
  const aside = `${lock}.stale-${crypto.randomUUID()}`;
  try {
    await fs.rename(lock, aside);
  } catch {
    return; // released or taken over by another meanwhile
  }
  const moved = await readHolder(aside);
  const same = holder === undefined ? moved === undefined : moved !== 'gone' && moved?.token === holder.token;
  if (same) await fs.rm(aside, { recursive: true, force: true });
  else await fs.rename(aside, lock).catch(() => fs.rm(aside, { recursive: true, force: true }));
}

async function readHolder(lock: string): Promise<Holder | undefined | 'gone'> {
  try {
    return JSON.parse(await fs.readFile(path.join(lock, 'holder.json'), 'utf8')) as Holder;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(await fileExists(lock))) return 'gone';
    return undefined; // not written yet (or half written)
  }
}

/** Lets the lock go, if it is still this token's (a directory moved away under it has taken it along). */
async function release(lock: string, token: string): Promise<void> {
  const holder = await readHolder(lock);
  if (holder === 'gone' || holder?.token !== token) return;
  await fs.rm(lock, { recursive: true, force: true });
}

/**
 * Runs `work`, which starts `what` (processes) for deployment `name`, under its lock; refused with an Error
 * once teardown has begun, and when the deployment's directory is gone (`missing`: what the caller must do).
 */
export async function startingUnlessTornDown<T>(
  layout: LocalLayout,
  name: string,
  what: { starts: string; missing: string },
  work: () => Promise<T>,
): Promise<T> {
  const result = await withDeploymentLock(layout, async () => {
    if (await isTearingDown(layout)) {
      throw new Error(`Local deployment "${name}" is being torn down: no ${what.starts} is started.`);
    }
    return { value: await work() };
  });
  if (!result) throw new Error(`Local deployment "${name}" has no directory (${layout.dir}): ${what.missing}.`);
  return result.value;
}

/**
 * Marks the deployment as being torn down: from the moment this returns, no gateway is started again for it
 * (restartGatewayIfGone refuses), and one started before is already running, to be found by the marker.
 */
export async function markTearingDown(layout: LocalLayout, ownerId: string): Promise<void> {
  await withDeploymentLock(layout, () => fs.writeFile(tearingDownFile(layout), `${ownerId}\n`));
}

/** True once teardown has begun, or the directory is gone (checked under the lock by whoever would start a process). */
export async function isTearingDown(layout: LocalLayout): Promise<boolean> {
  return (await fileExists(tearingDownFile(layout))) || !(await fileExists(layout.dir));
}

/** A new deployment under this name (provision): a mark left by a teardown of an earlier run goes. */
export async function clearTearingDown(layout: LocalLayout): Promise<void> {
  await withDeploymentLock(layout, () => fs.rm(tearingDownFile(layout), { force: true }));
}
