/**
 * Autoscaling's reading of the load: the endpoint's own in-flight gauge (the gateway's counters, read
 * without its key, as the scale-to-zero watches read them), sampled over one period. Its result, in the
 * workflow's history, is the counters each decision read. Heartbeats its samples so far, so a retry on
 * another worker goes on from them.
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';

import type { AutoscaleInput, LoadReading } from '../src/shared/autoscale-types';
import { REPLICA_LIMITS } from '../src/shared/deploy-types';
import type { DeployInput } from '../src/shared/deploy-types';
import { FailureType } from '../src/shared/failure-types';
import type { DeploymentSpec, GpuPoolFit, GpuPoolWant, TargetKind } from '../src/shared/target-types';
import type { GatewayCounts, Target } from '../src/targets/target';
import { failingPermanently } from './failures';
import { targetStep } from './heartbeat';

/** How often the in-flight gauge is read during a period. */
export const SAMPLE_MS = 200;

export interface AutoscaleActivityDeps {
  targets: Partial<Record<TargetKind, Target>>;
}

interface ReadingHeartbeat {
  startedAt: number;
  samples: number;
  sumInFlight: number;
  maxInFlight: number;
  requests: number;
  lastTotal?: number;
}

export function createAutoscaleActivities({ targets }: AutoscaleActivityDeps) {
  return {
    /** Samples the endpoint's requests in flight every 200 ms for `seconds`; returns their mean and peak. */
    async readLoad(spec: DeploymentSpec, opts: { seconds: number }): Promise<LoadReading> {
      const target = targets[spec.target];
      if (!target?.gatewayCounts) {
        throw ApplicationFailure.nonRetryable(
          `Target "${spec.target}" has no endpoint counters to autoscale on; deploy without --target-concurrency.`,
          FailureType.TargetUnavailable,
        );
      }
      return sampleLoad(target as Target & Required<Pick<Target, 'gatewayCounts'>>, spec, opts.seconds);
    },

    /**
     * Autoscaling on aks: room in the GPU pool for `want.replicas` (grown before a scale up, shrunk after a
     * scale down); a quota refusal comes back as a pool held where it is, with the reason.
     */
    async fitGpuPool(spec: DeploymentSpec, want: GpuPoolWant): Promise<GpuPoolFit> {
      const target = targets[spec.target];
      if (!target?.fitGpuPool) {
        throw ApplicationFailure.nonRetryable(
          `Target "${spec.target}" has no GPU pool to fit; deploy without --max-gpu-nodes.`,
          FailureType.TargetUnavailable,
        );
      }
      return targetStep((signal, progress) =>
        failingPermanently(() => target.fitGpuPool!(spec, want, signal, progress)),
      );
    },
  };
}

async function sampleLoad(
  target: Target & Required<Pick<Target, 'gatewayCounts'>>,
  spec: DeploymentSpec,
  seconds: number,
): Promise<LoadReading> {
  const ctx = Context.current();
  const s: ReadingHeartbeat = (ctx.info.heartbeatDetails as ReadingHeartbeat | undefined) ?? {
    startedAt: Date.now(),
    samples: 0,
    sumInFlight: 0,
    maxInFlight: 0,
    requests: 0,
  };
  const endsAt = s.startedAt + seconds * 1000;
  for (;;) {
    const counts = await read(target, spec);
    if (counts) {
      s.samples++;
      s.sumInFlight += counts.inFlight;
      s.maxInFlight = Math.max(s.maxInFlight, counts.inFlight);
      // A restarted gateway counts from zero again: its whole count is new.
      if (s.lastTotal !== undefined) {
        s.requests += counts.scoringTotal >= s.lastTotal ? counts.scoringTotal - s.lastTotal : counts.scoringTotal;
      }
      s.lastTotal = counts.scoringTotal;
    }
    ctx.heartbeat(s);
    const left = endsAt - Date.now();
    if (left <= 0) break;
    await ctx.sleep(Math.min(SAMPLE_MS, left));
  }
  return {
    samples: s.samples,
    meanInFlight: s.samples > 0 ? s.sumInFlight / s.samples : 0,
    maxInFlight: s.maxInFlight,
    requests: s.requests,
    seconds: (Date.now() - s.startedAt) / 1000,
  };
}

async function read(target: Target & Required<Pick<Target, 'gatewayCounts'>>, spec: DeploymentSpec) {
  const ctx = Context.current();
  return target.gatewayCounts(spec, ctx.cancellationSignal).catch((err: unknown): GatewayCounts | undefined => {
    if (ctx.cancellationSignal.aborted) throw err;
    log.warn('Endpoint counters not read', { name: spec.name, error: String(err) });
    return undefined;
  });
}

/** What is wrong with a deployment's autoscaling settings, one phrase each (validate reports them all). */
export function autoscaleProblems(input: DeployInput, target: Target | undefined): string[] {
  const a: AutoscaleInput | undefined = input.autoscale;
  if (!a) return [];
  const problems: string[] = [];
  const limit = REPLICA_LIMITS[input.target];
  if (target && !target.gatewayCounts) {
    problems.push(
      `--target-concurrency needs the endpoint's counters, which target "${input.target}" does not read yet`,
    );
  }
  if (!Number.isInteger(a.minReplicas) || a.minReplicas < 0 || (a.minReplicas === 0 && !input.scaleToZero)) {
    problems.push(`min replicas must be a whole number, at least 1 (0 only with scale to zero) (got ${a.minReplicas})`);
  }
  if (!Number.isInteger(a.maxReplicas) || a.maxReplicas < Math.max(1, a.minReplicas) || a.maxReplicas > limit) {
    problems.push(`max replicas must be a whole number from max(1, --min-replicas) to ${limit} (got ${a.maxReplicas})`);
  } else if (input.replicas > a.maxReplicas || input.replicas < a.minReplicas) {
    problems.push(
      `replicas (${input.replicas}) must be within --min-replicas ${a.minReplicas} and --max-replicas ${a.maxReplicas}`,
    );
  }
  if (!(a.targetConcurrency > 0)) problems.push(`target concurrency must be positive (got ${a.targetConcurrency})`);
  if (!(a.periodSeconds >= 0.5)) problems.push(`the autoscale period must be at least 0.5s (got ${a.periodSeconds}s)`);
  if (!(a.scaleUpWindowSeconds >= 0)) problems.push(`the scale-up window must not be negative`);
  if (!(a.scaleDownWindowSeconds >= 0)) problems.push(`the scale-down window must not be negative`);
  if (!(a.tolerance >= 0 && a.tolerance < 1))
    problems.push(`the tolerance must be from 0 to under 1 (got ${a.tolerance})`);
  return problems;
}
