/**
 * Autoscaling on aks, the GPU pool's part of each decision: before a scale up the pool grows to what the
 * replicas need (up to --max-gpu-nodes); after a scale down it shrinks back (never below what --min-replicas
 * need). Each fit is a recorded step (`gpu-pool-grow`, `gpu-pool-shrink`) whose result, in history, says the
 * nodes before and after; the decision carries them too, with the reason when the pool was held short (the
 * subscription's quota, --max-gpu-nodes): then the replicas go only as far as the pool has room for, and the
 * deployment goes on serving. Deterministic: workflow code only.
 */
import { proxyActivities } from '@temporalio/workflow';

import type { createAutoscaleActivities } from '../../activities/autoscale-watch';
import type { AutoscaleDecision, AutoscaleStatus } from '../../src/shared/autoscale-types';
import type { GpuPoolFit } from '../../src/shared/target-types';
import type { DeployState } from './state';

type PoolActivities = ReturnType<typeof createAutoscaleActivities>;

/** Before a scale up: room for `decision.to` replicas; a pool held short lowers the decision to what fits. */
export async function makeRoom(d: DeployState, s: AutoscaleStatus, decision: AutoscaleDecision): Promise<void> {
  if (!d.spec.gpuPoolFollows) return;
  const fit = await fitPool(d, s, 'gpu-pool-grow', decision.to);
  decision.nodes = { from: fit.previousNodes, to: fit.nodes, ...(fit.held ? { held: fit.held } : {}) };
  if (fit.nodes > fit.previousNodes) decision.reason += `; GPU pool ${fit.previousNodes} → ${fit.nodes} node(s)`;
  if (fit.room >= decision.to) return;
  const to = Math.max(decision.from, fit.room);
  decision.reason += `; held at ${fit.nodes} GPU node(s): ${fit.held ?? 'no room'} (room for ${fit.room} replica(s))`;
  decision.to = to;
}

/** After a scale down: the pool back to what the replicas now need. */
export async function releaseRoom(d: DeployState, s: AutoscaleStatus, decision: AutoscaleDecision): Promise<void> {
  if (!d.spec.gpuPoolFollows || d.spec.replicas === 0) return; // at zero, scale to zero's deploy emptied the pool
  const fit = await fitPool(d, s, 'gpu-pool-shrink', d.spec.replicas);
  decision.nodes = { from: fit.previousNodes, to: fit.nodes };
  if (fit.nodes < fit.previousNodes) decision.reason += `; GPU pool ${fit.previousNodes} → ${fit.nodes} node(s)`;
}

async function fitPool(d: DeployState, s: AutoscaleStatus, step: string, replicas: number): Promise<GpuPoolFit> {
  const want = {
    replicas,
    maxReplicas: s.maxReplicas,
    minReplicas: s.minReplicas,
    ...(s.maxGpuNodes !== undefined ? { maxNodes: s.maxGpuNodes } : {}),
  };
  const fit = await d.step(
    step,
    'serving',
    () => pool(d, replicas).fitGpuPool(d.spec, want),
    (r) => `${r.previousNodes} → ${r.nodes} GPU node(s) of at most ${r.maxNodes}${r.held ? ` (held: ${r.held})` : ''}`,
  );
  const before = s.gpuPool;
  s.gpuPool = {
    nodes: fit.nodes,
    maxNodes: fit.maxNodes,
    gpusPerNode: fit.gpusPerNode,
    grown: (before?.grown ?? 0) + (fit.nodes > fit.previousNodes ? 1 : 0),
    shrunk: (before?.shrunk ?? 0) + (fit.nodes < fit.previousNodes ? 1 : 0),
    managed: fit.managed,
    ...(fit.held && fit.room < replicas ? { held: fit.held } : {}),
  };
  if (fit.managed) d.status.gpuNodes = fit.nodes; // the ledger bills the pool's nodes from now on
  d.recorder.publish();
  return fit;
}

function pool(d: DeployState, replicas: number): PoolActivities {
  return proxyActivities<PoolActivities>({
    ...d.options.infra,
    summary: `Fit the GPU pool to ${replicas} replica(s)`,
  });
}
