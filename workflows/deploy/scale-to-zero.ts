/**
 * Scale to zero (`--min-replicas 0`): while a deployment serves, its replicas go to zero after the quiet
 * period (`--scale-down-after` without a scoring request) and wake on the next request, which the endpoint
 * holds meanwhile (up to `--wake-timeout`, then 503 with Retry-After). The endpoint, its address and key,
 * stays throughout. Both waits read the endpoint's own counters in an activity (activities/wake-watch.ts);
 * each scale is the `scale` Update's step (scale.ts), recorded in the status as `scale-to-zero` or `wake`.
 * Deterministic: workflow time only.
 */
import { CancellationScope, condition, isCancellation, log, sleep } from '@temporalio/workflow';

import type { ScaleToZeroInput, ScaleToZeroStatus } from '../../src/shared/deploy-types';
import { rootMessage } from '../../src/shared/failure-message';
import { scaleTo } from './scale';
import type { DeployState } from './state';
import { activities } from './steps';

/** How often the endpoint's counters are read for a waiting request: part of every cold start. */
const DEMAND_POLL_SECONDS = 0.25;
/** After a wake that failed (its requests get 503 with Retry-After once their wait ends), the next try. */
const WAKE_RETRY_PAUSE = '10s';

/** A replica a wake starts: one, within the bounds. */
export function wakeReplicas(z: ScaleToZeroInput): number {
  return Math.min(1, z.maxReplicas);
}

export function initialScaleToZeroStatus(z: ScaleToZeroInput): ScaleToZeroStatus {
  return {
    state: 'warm',
    minReplicas: 0,
    maxReplicas: z.maxReplicas,
    scaleDownAfterSeconds: z.scaleDownAfterSeconds,
    wakeTimeoutSeconds: z.wakeTimeoutSeconds,
    wakes: 0,
  };
}

/** Starts the loop beside the serving wait; cancel the scope it returns to stop it. */
export function startScaleToZero(d: DeployState): CancellationScope {
  const scope = new CancellationScope();
  scope
    .run(() => scaleToZeroLoop(d))
    .catch((err: unknown) => {
      if (isCancellation(err)) return;
      // The deployment keeps serving at the count it has; status says why it no longer scales.
      d.status.lastError = `scale to zero stopped: ${rootMessage(err)}`;
      log.error('Scale to zero stopped', { error: rootMessage(err) });
      d.recorder.publish();
    });
  return scope;
}

/** Warm → quiet period → cold → a held request → waking → warm, until cancelled. */
async function scaleToZeroLoop(d: DeployState): Promise<void> {
  const z = d.input.scaleToZero!;
  const s = (d.status.scaleToZero ??= initialScaleToZeroStatus(z));
  const watch = watchActivities(d, z);
  for (;;) {
    if (d.spec.replicas > 0) {
      const quietSeconds = z.scaleDownAfterSeconds;
      await watch.waitUntilQuiet(d.spec, { quietSeconds, pollSeconds: Math.min(30, Math.max(0.5, quietSeconds / 10)) });
      await resize(d, 0, 'scale-to-zero');
      s.state = 'cold';
      s.coldSince = new Date().toISOString();
    } else {
      s.state = 'cold';
      const demand = await watch.waitForDemand(d.spec, { pollSeconds: DEMAND_POLL_SECONDS });
      const startedAt = Date.now();
      Object.assign(s, { state: 'waking', lastWakeAt: new Date(startedAt).toISOString(), lastWakeHeld: demand.held });
      d.recorder.publish();
      try {
        await resize(d, wakeReplicas(z), 'wake');
      } catch (err) {
        // Back at zero (the scale rolled back); a held request tries again after a pause, not in a tight loop.
        log.warn('Wake failed', { error: rootMessage(err) });
        s.state = 'cold';
        await sleep(WAKE_RETRY_PAUSE);
        continue;
      }
      Object.assign(s, { state: 'warm', lastWakeMs: Date.now() - startedAt, wakes: s.wakes + 1 });
      log.info('Woken', { ms: s.lastWakeMs, held: demand.held });
    }
    d.recorder.publish();
  }
}

/** One scale, as a recorded step; a manual scale or rollout in flight finishes first. */
async function resize(d: DeployState, replicas: number, step: string): Promise<void> {
  await condition(() => !d.changing);
  const from = d.spec.replicas;
  d.changing = true;
  try {
    await d.step(
      step,
      'serving',
      () => scaleTo(d, replicas),
      (r) => `${from} → ${r.replicas}`,
    );
  } finally {
    d.changing = false;
  }
}

function watchActivities(d: DeployState, z: ScaleToZeroInput) {
  const pollSeconds = Math.min(30, Math.max(1, z.scaleDownAfterSeconds / 10));
  return activities(
    {
      startToCloseTimeout: '3650 days',
      heartbeatTimeout: Math.max(d.timings.heartbeatTimeoutSeconds, pollSeconds * 3) * 1000,
      retry: { initialInterval: '1s', maximumInterval: '1 minute' },
    },
    `Watch the endpoint's counters (scale to zero after ${z.scaleDownAfterSeconds}s quiet)`,
  );
}
