/**
 * The gateway watch beside the serving wait: a local endpoint's gateway that dies while serving (crashed,
 * killed) is started again on its address, with the same key (the replicas hold it), without waiting for the
 * next scale, rollout or TTL. One long activity looks every GATEWAY_POLL_SECONDS (activities/gateway-watch.ts)
 * and returns only when it started the gateway again or could not; each return is recorded in the status
 * (`inferctl status`: restarts, the last one's pids, or why a restart fails) and the activity starts again.
 * Its history grows by one activity per restart, not per look. A target with no gateway of its own to watch
 * (aks: the front's ReplicaSet restarts its pod) answers `unsupported` and the watch ends.
 * Deterministic: workflow time only.
 */
import { CancellationScope, isCancellation, log } from '@temporalio/workflow';

import { rootMessage } from '../../src/shared/failure-message';
import type { GatewayRevival } from '../../src/shared/gateway-watch-types';
import type { DeployState } from './state';
import { activities } from './steps';

/** How often the gateway is looked at: the most a client waits for it beyond its own restart (≈ 0.2 s). */
export const GATEWAY_POLL_SECONDS = 2;

/** Starts the watch beside the serving wait; cancel the scope it returns to stop it. */
export function startGatewayWatch(d: DeployState): CancellationScope {
  const scope = new CancellationScope();
  scope
    .run(() => watchLoop(d))
    .catch((err: unknown) => {
      if (isCancellation(err)) return;
      // The deployment serves on; status says its gateway is no longer watched.
      d.status.lastError = `gateway watch stopped: ${rootMessage(err)}`;
      log.error('Gateway watch stopped', { error: rootMessage(err) });
      d.recorder.publish();
    });
  return scope;
}

async function watchLoop(d: DeployState): Promise<void> {
  const watch = activities(
    {
      startToCloseTimeout: '3650 days',
      heartbeatTimeout: Math.max(d.timings.heartbeatTimeoutSeconds, GATEWAY_POLL_SECONDS * 3) * 1000,
      retry: { initialInterval: '1s', maximumInterval: '1 minute' },
    },
    "Watch the endpoint's gateway (started again on its address if it dies)",
  );
  for (;;) {
    const failing = d.status.gateway?.failing !== undefined;
    const found = await watch.watchGateway(d.spec, { pollSeconds: GATEWAY_POLL_SECONDS, failing });
    if (found.outcome === 'unsupported') return;
    record(d, found);
  }
}

function record(d: DeployState, found: GatewayRevival): void {
  const g = (d.status.gateway ??= { restarts: 0 });
  if (found.outcome === 'restarted') {
    g.restarts++;
    g.lastRestartAt = new Date().toISOString();
    g.gonePid = found.gonePid;
    g.pid = found.pid;
    delete g.failing;
    log.warn('Gateway found gone: started again on its address', { gonePid: found.gonePid, pid: found.pid });
  } else if (found.outcome === 'failed') {
    g.failing = found.reason ?? 'the gateway exited';
    log.error('Gateway found gone and could not be started again', { reason: g.failing });
  } else delete g.failing;
  d.recorder.publish();
}
