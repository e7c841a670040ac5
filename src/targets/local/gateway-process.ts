/**
 * The local gateway's process: started by the serving set's deploy (local-target.ts), and started again on
 * its own port when a mirror bake finds it gone (crashed, killed), as Kubernetes starts the aks front's pod
 * again. A gateway started again resumes the mirror's counters from its report file (gateway-mirror.ts). It is
 * known by the pid and start time recorded in replicas.json and the marker it was started with (processes.ts),
 * never by its command line.
 */
import path from 'node:path';

import { readJsonFile, writeJsonFileAtomic } from '../../json-file';
import { spawnDetachedNode } from './detached-process';
import type { LocalLayout } from './layout';
import { isSameProcess, markerEnv, processStartTime } from './processes';
import type { ReadyFile } from './replica-set';

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

/**
 * Starts the recorded gateway again on the port it had, when its process is gone; the new pid, or undefined
 * when it runs (or there is none recorded, or no port to keep: the endpoint's address never changes here).
 */
export async function restartGatewayIfGone(
  layout: LocalLayout,
  ownerId: string,
  signal?: AbortSignal,
): Promise<number | undefined> {
  const state = await readJsonFile<{ gateway?: GatewayRecord }>(layout.replicasFile);
  const gateway = state?.gateway;
  if (!gateway || (await isSameProcess(gateway.pid, gateway.startTime))) return undefined;
  const ready = await readJsonFile<ReadyFile>(gatewayReadyFile(layout));
  if (!ready || !(ready.port > 0) || signal?.aborted) return undefined;
  const started = await startGateway(layout, {
    replicas: gateway.replicas,
    ...(gateway.holdMs !== undefined ? { holdMs: gateway.holdMs } : {}),
    port: ready.port,
    ownerId,
  });
  await writeJsonFileAtomic(layout.replicasFile, { ...state, gateway: { ...gateway, ...started } });
  return started.pid;
}
