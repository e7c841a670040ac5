/**
 * The local gateway's process: started by the serving set's deploy (local-target.ts), and started again on
 * its own port when the serving loop's gateway watch or a mirror bake's reading finds it gone (crashed,
 * killed), as Kubernetes starts the aks front's pod again. A gateway started again resumes the mirror's
 * counters from its report file (gateway-mirror.ts). It is known by the pid and start time recorded in
 * replicas.json and the marker it was started with (processes.ts), never by its command line.
 */
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { readJsonFile, writeJsonFileAtomic } from '../../json-file';
import type { GatewayRevival } from '../../shared/gateway-watch-types';
import { logTail, spawnDetachedNode } from './detached-process';
import type { LocalLayout } from './layout';
import { isOwnProcess, isSameProcess, markerEnv, processStartTime } from './processes';
import type { ReadyFile } from './replica-set';
import { isTearingDown, withDeploymentLock } from './teardown-fence';

const GATEWAY_MAIN = require.resolve('./gateway-main');

/** Scale to zero: the most requests the gateway holds while the replicas wake, and the Retry-After of a 503. */
export const MAX_HELD_REQUESTS = 100;
export const RETRY_AFTER_SECONDS = 10;

/** The gateway as replicas.json records it. */
export interface GatewayRecord {
  pid: number;
  replicas: number;
  /** The gateway reads gateway/routes.json, so a change of replica count needs no new gateway. */
  routes?: boolean;
  startTime?: number;
  /** Scale to zero: how long a request is held while the replicas wake, ms. */
  holdMs?: number;
}

/** What a gateway is started with. */
export interface GatewayStart {
  replicas: number;
  /** Scale to zero: hold requests this long while no replica runs (MAX_HELD_REQUESTS of them at most). */
  holdMs?: number;
  /** The port to listen on (0, or left out: any free one). */
  port?: number;
  ownerId: string;
}

export function gatewayReadyFile(layout: LocalLayout): string {
  return path.join(layout.gatewayDir, 'ready.json');
}

/** Starts the deployment's gateway; its record (pid, start time, settings) for replicas.json. */
export async function startGateway(layout: LocalLayout, start: GatewayStart): Promise<GatewayRecord> {
  const hold = start.holdMs !== undefined && start.holdMs > 0;
  const pid = await spawnDetachedNode(
    GATEWAY_MAIN,
    [
      '--replicas-dir',
      path.join(layout.dir, 'replicas'),
      '--replicas',
      String(start.replicas),
      '--ready-file',
      gatewayReadyFile(layout),
      '--routes-file',
      layout.routesFile,
      ...(start.port ? ['--port', String(start.port)] : []),
      ...(hold ? ['--hold-ms', String(start.holdMs)] : []),
      ...(hold ? ['--max-held', String(MAX_HELD_REQUESTS), '--retry-after', String(RETRY_AFTER_SECONDS)] : []),
    ],
    path.join(layout.gatewayDir, 'gateway.log'),
    markerEnv({ deployment: layout.dir, set: layout.dir, ownerId: start.ownerId }),
  );
  const startTime = await processStartTime(pid);
  return {
    pid,
    replicas: start.replicas,
    routes: true,
    ...(startTime !== undefined ? { startTime } : {}),
    ...(hold ? { holdMs: start.holdMs } : {}),
  };
}

/** How long a gateway started again gets to listen before it counts as failed (its process still runs). */
const RESTART_READY_MS = 10_000;

/**
 * Starts the recorded gateway again on the port it had, when its process is gone (or its pid is now another
 * process's): same replicas, hold and port, so the endpoint's address and key (the replicas hold it) stay.
 * Under the deployment's lock and never once teardown has begun (teardown-fence.ts); never stops or adopts a
 * process: the recorded one counts only while it carries the pid, start time, entry script and marker it was
 * started with. A gateway that cannot listen (another process holds the port) exits: `failed`, with its log.
 */
export async function restartGatewayIfGone(
  layout: LocalLayout,
  ownerId: string,
  signal?: AbortSignal,
): Promise<GatewayRevival> {
  const started = await withDeploymentLock(layout, async (): Promise<GatewayRevival | StartedAgain> => {
    if (await isTearingDown(layout)) return { outcome: 'tearing-down' };
    const cluster = await readJsonFile<{ ownerId?: string }>(layout.clusterFile);
    const state = await readJsonFile<{ gateway?: GatewayRecord }>(layout.replicasFile);
    const gateway = state?.gateway;
    if (!gateway || cluster?.ownerId !== ownerId) return { outcome: 'none' };
    const identity = { deployment: layout.dir, set: layout.dir, ownerId };
    if (await isOwnProcess(gateway.pid, gateway.startTime, identity, GATEWAY_MAIN)) return { outcome: 'running' };
    const ready = await readJsonFile<ReadyFile>(gatewayReadyFile(layout));
    if (!ready || !(ready.port > 0) || signal?.aborted) return { outcome: 'none' };
    const again = await startGateway(layout, {
      replicas: gateway.replicas,
      ...(gateway.holdMs !== undefined ? { holdMs: gateway.holdMs } : {}),
      port: ready.port,
      ownerId,
    });
    // Recorded before the lock goes: teardown, or the next look, finds this one.
    await writeJsonFileAtomic(layout.replicasFile, { ...state, gateway: { ...gateway, ...again } });
    return { gonePid: gateway.pid, port: ready.port, again };
  });
  if (!started) return { outcome: 'tearing-down' };
  if (!('again' in started)) return started;
  const { gonePid, port, again } = started;
  const listening = await untilListening(layout, again);
  if (listening) return { outcome: 'restarted', gonePid, pid: again.pid, port };
  const tail = (await logTail(path.join(layout.gatewayDir, 'gateway.log'), 1)).trim();
  if (await isTearingDown(layout)) return { outcome: 'tearing-down' };
  return { outcome: 'failed', gonePid, pid: again.pid, port, reason: tail || 'the gateway exited without output' };
}

interface StartedAgain {
  gonePid: number;
  port: number;
  again: GatewayRecord;
}

/** True once the gateway started again has written its ready file; false when it exited first. */
async function untilListening(layout: LocalLayout, gateway: GatewayRecord): Promise<boolean> {
  const deadline = Date.now() + RESTART_READY_MS;
  while (Date.now() < deadline) {
    const ready = await readJsonFile<ReadyFile>(gatewayReadyFile(layout)).catch(() => undefined);
    if (ready?.pid === gateway.pid) return true;
    if (!(await isSameProcess(gateway.pid, gateway.startTime))) return false;
    await delay(50);
  }
  return isSameProcess(gateway.pid, gateway.startTime);
}
