/**
 * The idle watch behind `--idle-ttl`: reads the replicas' own scoring-request counters until none has
 * moved for the idle TTL, logging a warning ahead of the end. Heartbeats where it stands (the last count
 * and when it changed), so a retry on another worker keeps the idle clock.
 */
import { Context, log } from '@temporalio/activity';

import type { DeploymentSpec } from '../src/shared/target-types';
import type { Target } from '../src/targets/target';

export interface IdleWatchOptions {
  idleSeconds: number;
  /** How often the counters are read. */
  pollSeconds: number;
  /** The warning is logged this long before the idle TTL runs out. */
  warnAheadSeconds: number;
}

/** What `waitUntilIdle` heartbeats: the last count seen and when it last changed (ms since the epoch). */
interface IdleHeartbeat {
  lastTotal?: number;
  lastChangeAt: number;
  warned: boolean;
}

export interface IdleReport {
  /** When the counters last moved (or serving began), ISO 8601. */
  lastRequestAt: string;
  requests: number;
}

/** Returns once no scoring request has reached the replicas for `opts.idleSeconds`. */
export async function watchUntilIdle(
  target: Target & Required<Pick<Target, 'requestCount'>>,
  spec: DeploymentSpec,
  opts: IdleWatchOptions,
): Promise<IdleReport> {
  const ctx = Context.current();
  const state: IdleHeartbeat = (ctx.info.heartbeatDetails as IdleHeartbeat | undefined) ?? {
    lastChangeAt: Date.now(),
    warned: false,
  };
  for (;;) {
    const counts = await target.requestCount(spec, ctx.cancellationSignal).catch((err: unknown) => {
      if (ctx.cancellationSignal.aborted) throw err;
      log.warn('Request counters not read', { name: spec.name, error: String(err) });
      return undefined;
    });
    if (counts && counts.replicasRead > 0 && counts.total !== state.lastTotal) {
      if (state.lastTotal !== undefined) {
        state.lastChangeAt = Date.now();
        state.warned = false;
      }
      state.lastTotal = counts.total;
    }
    const idleMs = Date.now() - state.lastChangeAt;
    if (idleMs >= opts.idleSeconds * 1000) {
      log.info('Deployment idle: tearing down', { name: spec.name, idleSeconds: opts.idleSeconds });
      return { lastRequestAt: new Date(state.lastChangeAt).toISOString(), requests: state.lastTotal ?? 0 };
    }
    if (!state.warned && idleMs >= (opts.idleSeconds - opts.warnAheadSeconds) * 1000) {
      log.warn('Deployment idle: tears down soon unless a scoring request arrives', {
        name: spec.name,
        endsAt: new Date(state.lastChangeAt + opts.idleSeconds * 1000).toISOString(),
      });
      state.warned = true;
    }
    ctx.heartbeat({ ...state, idleEndsAt: new Date(state.lastChangeAt + opts.idleSeconds * 1000).toISOString() });
    await ctx.sleep(Math.min(opts.pollSeconds * 1000, opts.idleSeconds * 1000 - idleMs + 50));
  }
}
