/**
 * How long deploy steps may take and how often they are checked, per target: the one table of these
 * defaults. The deploy workflow resolves it once (`deployTimings`), a deployment's own `timings` winning
 * field by field, and hands the result to the steps. Workflow-safe: plain data.
 */
import type { DeployTimings } from './deploy-types';
import type { TargetKind } from './target-types';

export type ResolvedDeployTimings = Required<DeployTimings>;

export const TARGET_TIMINGS: Record<TargetKind, ResolvedDeployTimings> = {
  // Loopback processes: ready in seconds, a dead worker noticed fast.
  local: { readyTimeoutSeconds: 120, heartbeatTimeoutSeconds: 15, readinessPollSeconds: 0.5 },
  // A cloud cluster: image pulls and load balancers take minutes; Azure calls inside a heartbeat can be slow;
  // each readiness poll reads the cluster's API 2–4 times, so every few seconds is plenty.
  aks: { readyTimeoutSeconds: 20 * 60, heartbeatTimeoutSeconds: 60, readinessPollSeconds: 5 },
};

export function deployTimings(target: TargetKind, overrides: DeployTimings = {}): ResolvedDeployTimings {
  const defaults = TARGET_TIMINGS[target];
  return {
    readyTimeoutSeconds: overrides.readyTimeoutSeconds ?? defaults.readyTimeoutSeconds,
    heartbeatTimeoutSeconds: overrides.heartbeatTimeoutSeconds ?? defaults.heartbeatTimeoutSeconds,
    readinessPollSeconds: overrides.readinessPollSeconds ?? defaults.readinessPollSeconds,
  };
}
