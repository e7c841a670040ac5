/**
 * The fence between a local deployment's teardown and anything that starts its gateway again (a mirror bake's
 * reading, the serving loop's gateway watch: gateway-process.ts). Both sides hold the deployment's lock, a
 * directory `<deployment>/.lock` taken with proper-lockfile (mkdir is atomic; a holder that died leaves it
 * stale after STALE_MS), so they work across processes and workers:
 *  - teardown writes `<deployment>/tearing-down` under the lock before it looks for processes to stop;
 *  - a restart checks that file under the lock and starts and records its gateway before letting go.
 * So a restart either finished before teardown's mark (its gateway runs, with the deployment's marker, when
 * teardown looks: found and stopped) or sees the mark and starts nothing. The window is closed, not narrowed.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import lockfile from 'proper-lockfile';

import { fileExists } from '../../file-exists';
import type { LocalLayout } from './layout';

/** A holder that stopped refreshing the lock (a worker killed while holding it) loses it after this long. */
const STALE_MS = 10_000;

export function tearingDownFile(layout: LocalLayout): string {
  return path.join(layout.dir, 'tearing-down');
}

function lockDir(layout: LocalLayout): string {
  return path.join(layout.dir, '.lock');
}

/**
 * Runs `work` while holding the deployment's lock; undefined, without running it, when the deployment's
 * directory does not exist (torn down, or never provisioned).
 */
export async function withDeploymentLock<T>(layout: LocalLayout, work: () => Promise<T>): Promise<T | undefined> {
  if (!(await fileExists(layout.dir))) return undefined;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(layout.dir, {
      realpath: false,
      lockfilePath: lockDir(layout),
      stale: STALE_MS,
      retries: { retries: 200, factor: 1.3, minTimeout: 10, maxTimeout: 250 },
      // Lost only when the directory went meanwhile (removed under us) or the lock sat unrefreshed past
      // STALE_MS: the work under it is a few file writes and one spawn, so there is nothing to undo.
      onCompromised: () => undefined,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || !(await fileExists(layout.dir))) return undefined;
    throw err;
  }
  try {
    return await work();
  } finally {
    await release().catch(() => undefined);
  }
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
