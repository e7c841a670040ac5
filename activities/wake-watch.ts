/**
 * The watches behind scale to zero, both on the endpoint's own counters (the gateway's, read without its
 * key, as the idle watch reads the replicas'): `watchUntilQuiet` returns once no scoring request has arrived
 * for the quiet period (the replicas may go), `watchForDemand` once a request is held at zero replicas (they
 * must wake). Each heartbeats where it stands, so a retry on another worker keeps its clock.
 */
import { Context, log } from '@temporalio/activity';

import { REPLICA_LIMITS } from '../src/shared/deploy-types';
import type { DeployInput } from '../src/shared/deploy-types';
import type { DeploymentSpec } from '../src/shared/target-types';
import type { GatewayCounts, Target } from '../src/targets/target';

export type GatewayTarget = Target & Required<Pick<Target, 'gatewayCounts'>>;

export interface QuietReport {
  /** When the last scoring request arrived (or the watch began), ISO 8601. */
  lastRequestAt: string;
}

export interface DemandReport {
  /** Requests held when the demand was seen. */
  held: number;
}

interface QuietHeartbeat {
  lastTotal?: number;
  lastChangeAt: number;
}

/** Returns once the endpoint has received no scoring request, and has none in flight, for `quietSeconds`. */
export async function watchUntilQuiet(
  target: GatewayTarget,
  spec: DeploymentSpec,
  opts: { quietSeconds: number; pollSeconds: number },
): Promise<QuietReport> {
  const ctx = Context.current();
  const state: QuietHeartbeat = (ctx.info.heartbeatDetails as QuietHeartbeat | undefined) ?? {
    lastChangeAt: Date.now(),
  };
  for (;;) {
    const counts = await read(target, spec);
    if (counts && (counts.scoringTotal !== state.lastTotal || counts.inFlight > 0)) {
      if (state.lastTotal !== undefined || counts.inFlight > 0) state.lastChangeAt = Date.now();
      state.lastTotal = counts.scoringTotal;
    }
    const quietMs = Date.now() - state.lastChangeAt;
    if (quietMs >= opts.quietSeconds * 1000) {
      log.info('No scoring request for the quiet period: scaling to zero', { name: spec.name });
      return { lastRequestAt: new Date(state.lastChangeAt).toISOString() };
    }
    ctx.heartbeat(state);
    await ctx.sleep(Math.min(opts.pollSeconds * 1000, opts.quietSeconds * 1000 - quietMs + 20));
  }
}

/** Returns once the endpoint holds a request (or has received one since the watch began). */
export async function watchForDemand(
  target: GatewayTarget,
  spec: DeploymentSpec,
  opts: { pollSeconds: number },
): Promise<DemandReport> {
  const ctx = Context.current();
  let since = ctx.info.heartbeatDetails as number | undefined;
  for (;;) {
    const counts = await read(target, spec);
    if (counts) {
      // A restarted gateway counts from zero again: its new count is the baseline.
      if (since === undefined || counts.heldTotal < since) since = counts.heldTotal;
      if (counts.held > 0 || counts.heldTotal > since) {
        log.info('A request is waiting at zero replicas: waking', { name: spec.name, held: counts.held });
        return { held: counts.held };
      }
    }
    ctx.heartbeat(since);
    await ctx.sleep(opts.pollSeconds * 1000);
  }
}

async function read(target: GatewayTarget, spec: DeploymentSpec): Promise<GatewayCounts | undefined> {
  const ctx = Context.current();
  return target.gatewayCounts(spec, ctx.cancellationSignal).catch((err: unknown) => {
    if (ctx.cancellationSignal.aborted) throw err;
    log.warn('Gateway counters not read', { name: spec.name, error: String(err) });
    return undefined;
  });
}

/** What is wrong with a deployment's scale-to-zero settings, one phrase each (validate reports them all). */
export function scaleToZeroProblems(input: DeployInput, target: Target | undefined): string[] {
  const z = input.scaleToZero;
  if (!z) return [];
  const problems: string[] = [];
  const limit = REPLICA_LIMITS[input.target];
  if (target && !target.gatewayCounts) {
    problems.push(`--min-replicas 0 needs an endpoint that holds requests, which target "${input.target}" has not yet`);
  }
  if (!Number.isInteger(z.maxReplicas) || z.maxReplicas < 1 || z.maxReplicas > limit) {
    problems.push(`max replicas must be a whole number from 1 to ${limit} (got ${z.maxReplicas})`);
  } else if (input.replicas > z.maxReplicas) {
    problems.push(`replicas (${input.replicas}) must not exceed --max-replicas (${z.maxReplicas})`);
  }
  if (!(z.scaleDownAfterSeconds > 0))
    problems.push(`scale-down-after must be positive (got ${z.scaleDownAfterSeconds}s)`);
  if (!(z.wakeTimeoutSeconds > 0)) problems.push(`wake timeout must be positive (got ${z.wakeTimeoutSeconds}s)`);
  return problems;
}
