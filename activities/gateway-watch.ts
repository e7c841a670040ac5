/**
 * The serving loop's gateway watch (workflows/deploy/gateway-watch.ts): while a deployment serves, its
 * endpoint's gateway is looked at every `pollSeconds` (the pid, start time and marker the target recorded:
 * no request, no key), and started again on its address when it is gone. Returns when it did so, or when
 * the restart failed (unless the workflow already knows it fails), so the workflow records it; otherwise it
 * runs until cancelled, heartbeating. Idempotent: a look at a running gateway changes nothing.
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';

import { FailureType } from '../src/shared/failure-types';
import type { GatewayRevival } from '../src/shared/gateway-watch-types';
import type { DeploymentSpec, TargetKind } from '../src/shared/target-types';
import type { Target } from '../src/targets/target';
import { withHeartbeat } from './heartbeat';

export interface GatewayWatchActivityDeps {
  targets: Partial<Record<TargetKind, Target>>;
}

export interface GatewayWatchOptions {
  pollSeconds: number;
  /** The last look's restart failed: keep trying quietly (backing off), return only once it runs again. */
  failing?: boolean;
}

/** Between failed restarts, the wait doubles up to this (a port another process holds may be let go). */
const MAX_RETRY_SECONDS = 300;

export function createGatewayWatchActivities({ targets }: GatewayWatchActivityDeps) {
  return {
    /** Looks at the endpoint's gateway until it had to be started again (see the file's comment). */
    async watchGateway(spec: DeploymentSpec, opts: GatewayWatchOptions): Promise<GatewayRevival> {
      const target = targets[spec.target];
      if (!target) {
        throw ApplicationFailure.nonRetryable(
          `This worker cannot reach target "${spec.target}"; start a worker configured for it.`,
          FailureType.TargetUnavailable,
        );
      }
      if (!target.reviveGateway) return { outcome: 'unsupported' };
      const ctx = Context.current();
      let waitSeconds = opts.pollSeconds;
      for (;;) {
        // Heartbeating meanwhile: a look may wait for the deployment's lock (a scale's deploy holds it).
        const found = await withHeartbeat((signal) => target.reviveGateway!(spec, signal)).catch((err: unknown) => {
          if (ctx.cancellationSignal.aborted) throw err;
          log.warn('Gateway not looked at', { name: spec.name, error: String(err) });
          return undefined;
        });
        if (found?.outcome === 'restarted') {
          log.warn('Gateway found gone: started again on its address', {
            name: spec.name,
            gonePid: found.gonePid,
            pid: found.pid,
            port: found.port,
          });
          return found;
        }
        // Running again by another way (a scale's deploy started it): the workflow clears the failure it shows.
        if (opts.failing && found?.outcome === 'running') return found;
        if (found?.outcome === 'failed') {
          log.error('Gateway found gone and could not be started again', { name: spec.name, reason: found.reason });
          if (!opts.failing) return found;
          waitSeconds = Math.min(MAX_RETRY_SECONDS, waitSeconds * 2);
        } else waitSeconds = opts.pollSeconds;
        ctx.heartbeat({ last: found?.outcome });
        await ctx.sleep(waitSeconds * 1000);
      }
    },
  };
}
