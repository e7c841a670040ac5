/**
 * Autoscaling (`--target-concurrency C` between `--min-replicas` and `--max-replicas`): while a deployment
 * serves, a loop beside the serving wait reads the endpoint's requests in flight over one period (an
 * activity, its result in history: the counters each decision read), decides as the Kubernetes HPA does
 * (src/shared/autoscale-decision.ts: up at once, down after the scale-down window) and scales. Each decision
 * goes into the status (`status.autoscale.decisions`, with its reason); each scale is a recorded step
 * (`scale-up`, `scale-down`) whose activity summary, in the Web UI, carries the reason.
 *
 * With scale to zero (min 0) it only acts while warm: a wake brings the replicas to 1, autoscale takes them
 * from there, and the quiet period takes them to 0. A manual or scale-to-zero scale in flight finishes
 * first; a reading taken while the replicas changed is thrown away. Deterministic: workflow time only.
 */
import { CancellationScope, condition, isCancellation, log, proxyActivities } from '@temporalio/workflow';

import { decideReplicas } from '../../src/shared/autoscale-decision';
import { AUTOSCALE_DECISIONS_KEPT } from '../../src/shared/autoscale-types';
import type {
  AutoscaleDecision,
  AutoscaleInput,
  AutoscaleRequest,
  AutoscaleResult,
  AutoscaleStatus,
} from '../../src/shared/autoscale-types';
import { REPLICA_LIMITS } from '../../src/shared/deploy-types';
import { rootMessage } from '../../src/shared/failure-message';
import type { createAutoscaleActivities } from '../../activities/autoscale-watch';
import { makeRoom, releaseRoom } from './gpu-nodes';
import { scaleTo } from './scale';
import type { DeployState } from './state';

type AutoscaleActivities = ReturnType<typeof createAutoscaleActivities>;

export function initialAutoscaleStatus(a: AutoscaleInput): AutoscaleStatus {
  return { ...a, decisions: [], recommendations: [], scaledUp: 0, scaledDown: 0 };
}

/** Starts the loop beside the serving wait; cancel the scope it returns to stop it. */
export function startAutoscale(d: DeployState): CancellationScope {
  const scope = new CancellationScope();
  scope
    .run(() => autoscaleLoop(d))
    .catch((err: unknown) => {
      if (isCancellation(err)) return;
      // The deployment keeps serving at the count it has; status says why it no longer scales.
      d.status.lastError = `autoscale stopped: ${rootMessage(err)}`;
      log.error('Autoscale stopped', { error: rootMessage(err) });
      d.recorder.publish();
    });
  return scope;
}

/** Replicas serve, nothing else changes them, and (with scale to zero) the deployment is warm. */
function canScale(d: DeployState): boolean {
  const zero = d.status.scaleToZero?.state;
  return d.spec.replicas > 0 && !d.changing && (zero === undefined || zero === 'warm');
}

/** Read → decide → scale, one period at a time, until cancelled. */
async function autoscaleLoop(d: DeployState): Promise<void> {
  const s = (d.status.autoscale ??= initialAutoscaleStatus(d.input.autoscale!));
  for (;;) {
    await condition(() => canScale(d));
    const a = d.input.autoscale!;
    const from = d.spec.replicas;
    const reading = await readLoad(d, a).readLoad(d.spec, { seconds: a.periodSeconds });
    // Scaled meanwhile (a wake, the quiet period, a manual change): the reading was taken at another count.
    if (d.spec.replicas !== from || !canScale(d)) continue;
    const { decision, recommendations } = decideReplicas(a, from, reading, s.recommendations, Date.now());
    s.recommendations = recommendations;
    keep(s, decision);
    if (decision.to !== from) await resize(d, s, decision);
    d.recorder.publish();
  }
}

function keep(s: AutoscaleStatus, decision: AutoscaleDecision): void {
  s.decisions.push(decision);
  if (s.decisions.length > AUTOSCALE_DECISIONS_KEPT)
    s.decisions.splice(0, s.decisions.length - AUTOSCALE_DECISIONS_KEPT);
}

/** Applies one decision as a recorded step; one that another change overtook is not applied, and says so. */
async function resize(d: DeployState, s: AutoscaleStatus, decision: AutoscaleDecision): Promise<void> {
  await condition(() => !d.changing);
  const { from, to } = decision;
  if (d.spec.replicas !== from || !canScale(d)) {
    decision.reason += `; not applied: the replicas changed meanwhile (${d.spec.replicas})`;
    return;
  }
  const up = to > from;
  d.changing = true;
  try {
    // aks: the GPU pool grows first (a quota or --max-gpu-nodes may hold it: then only what fits).
    if (up) await makeRoom(d, s, decision);
    if (decision.to === from) return;
    await d.step(
      up ? 'scale-up' : 'scale-down',
      'serving',
      () => scaleTo(d, decision.to, `autoscale: ${decision.reason}`),
      (r) =>
        `${from} → ${r.replicas} (autoscale: ${decision.perReplica.toFixed(2)} in flight per replica, target ${s.targetConcurrency})`,
    );
    if (up) s.scaledUp++;
    else {
      s.scaledDown++;
      await releaseRoom(d, s, decision); // aks: the nodes go once their pods have
    }
  } catch (err) {
    // Back at the count before (scaleTo rolls back); the next period decides again.
    decision.to = d.spec.replicas;
    decision.reason += `; the scale failed: ${rootMessage(err)}`;
    // aks: nodes grown for replicas that did not come are given back.
    if (up && d.spec.gpuPoolFollows) await releaseRoom(d, s, decision).catch(() => undefined);
    log.warn('Autoscale failed', { from, to, error: rootMessage(err) });
  } finally {
    d.changing = false;
  }
}

function readLoad(d: DeployState, a: AutoscaleInput): AutoscaleActivities {
  return proxyActivities<AutoscaleActivities>({
    startToCloseTimeout: (a.periodSeconds + 60) * 1000,
    heartbeatTimeout: Math.max(d.timings.heartbeatTimeoutSeconds, 5) * 1000,
    retry: { initialInterval: '1s', maximumInterval: '1 minute' },
    summary: `Read the endpoint's load for ${a.periodSeconds}s (target ${a.targetConcurrency} in flight per replica, ${a.minReplicas}-${a.maxReplicas} replicas)`,
  });
}

/** `inferctl scale NAME --replicas N` on an autoscaled deployment: refused, the bounds are what to change. */
export function manualScaleRefusal(d: DeployState): string | undefined {
  const a = d.input.autoscale;
  if (!a) return undefined;
  return (
    `Deployment "${d.input.name}" autoscales between ${a.minReplicas} and ${a.maxReplicas} replicas ` +
    `(--target-concurrency ${a.targetConcurrency}); set its bounds instead: ` +
    `inferctl scale ${d.input.name} --min-replicas N --max-replicas M`
  );
}

/** The `autoscale` Update's validator: the reason a change of bounds is refused, or undefined. */
export function boundsRefusal(d: DeployState, request: unknown): string | undefined {
  const a = d.input.autoscale;
  if (!a) {
    return `Deployment "${d.input.name}" was not deployed with --target-concurrency, so it has no bounds to set; scale it with --replicas.`;
  }
  if (d.status.stage !== 'serving') {
    return `Deployment "${d.input.name}" is ${d.status.stage}; set its bounds once it serves (inferctl status ${d.input.name}).`;
  }
  const r = (request ?? {}) as Partial<AutoscaleRequest>;
  if (typeof r !== 'object') return 'autoscale takes { minReplicas?, maxReplicas?, targetConcurrency? }.';
  const min = r.minReplicas ?? a.minReplicas;
  const max = r.maxReplicas ?? a.maxReplicas;
  const limit = REPLICA_LIMITS[d.input.target];
  if (!Number.isInteger(min) || min < 0 || (min === 0 && !d.input.scaleToZero)) {
    return `--min-replicas must be a whole number ≥ 1 (0 only for a deployment started with --min-replicas 0) (got ${String(min)}).`;
  }
  if (!Number.isInteger(max) || max < Math.max(1, min) || max > limit) {
    return `--max-replicas must be a whole number from ${Math.max(1, min)} to ${limit} (got ${String(max)}).`;
  }
  if (r.targetConcurrency !== undefined && !(typeof r.targetConcurrency === 'number' && r.targetConcurrency > 0)) {
    return `--target-concurrency must be a positive number (got ${String(r.targetConcurrency)}).`;
  }
  return undefined;
}

/**
 * The `autoscale` Update: new bounds (and target), kept for the next decisions (and the next run); replicas
 * outside the new bounds are moved into them at once, once a change in flight has finished.
 */
export async function setBounds(d: DeployState, request: AutoscaleRequest): Promise<AutoscaleResult> {
  const a = d.input.autoscale!;
  const s = (d.status.autoscale ??= initialAutoscaleStatus(a));
  a.minReplicas = request.minReplicas ?? a.minReplicas;
  a.maxReplicas = request.maxReplicas ?? a.maxReplicas;
  a.targetConcurrency = request.targetConcurrency ?? a.targetConcurrency;
  Object.assign(s, { minReplicas: a.minReplicas, maxReplicas: a.maxReplicas, targetConcurrency: a.targetConcurrency });
  const floor = Math.max(1, a.minReplicas);
  const clamp = (n: number) => Math.min(a.maxReplicas, Math.max(floor, n));
  s.recommendations = s.recommendations.map((r) => ({ ...r, replicas: clamp(r.replicas) }));
  if (d.input.scaleToZero) {
    d.input.scaleToZero.maxReplicas = a.maxReplicas;
    if (d.status.scaleToZero) d.status.scaleToZero.maxReplicas = a.maxReplicas;
  }
  log.info('Autoscale bounds set', { min: a.minReplicas, max: a.maxReplicas, target: a.targetConcurrency });

  await condition(() => !d.changing);
  const from = d.spec.replicas;
  const to = from === 0 ? 0 : clamp(from);
  if (to !== from) {
    const decision: AutoscaleDecision = {
      at: new Date().toISOString(),
      from,
      to,
      recommended: to,
      perReplica: 0,
      reading: { samples: 0, meanInFlight: 0, maxInFlight: 0, requests: 0, seconds: 0 },
      reason: `bounds set to ${a.minReplicas}-${a.maxReplicas} replicas: ${from} → ${to}`,
    };
    keep(s, decision);
    await resize(d, s, decision);
  }
  d.recorder.publish();
  return {
    minReplicas: a.minReplicas,
    maxReplicas: a.maxReplicas,
    targetConcurrency: a.targetConcurrency,
    replicas: d.spec.replicas,
    previousReplicas: from,
  };
}
