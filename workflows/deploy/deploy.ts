/**
 * The deploy workflow: validate → provision → build image → deploy → wait for readiness → smoke query →
 * serve until the TTL ends, the replicas go idle, or a teardown request arrives → teardown.
 *
 * While it serves it is steered with Updates, each with a validator that refuses a bad request before it
 * enters history, each answering with its result: `extend` (the new expiry), `teardownNow` (what teardown
 * removed), `scale` (the replicas ready), `attach` (the status, for a deploy of the same spec). The older
 * `extendTtl` and `teardown` signals are still handled for the clients and histories that use them
 * (updates.ts). Everything the body and the handlers share is one DeployState (state.ts).
 *
 * Teardown is compensation: once provisioning has started it runs, in a non-cancellable scope, on
 * success, on the failure of any step, on cancellation, and after any worker crash (the workflow simply
 * resumes on another worker). It is idempotent and retried until it succeeds.
 *
 * A deployment that serves long enough for its history to grow long continues as new, carrying its state,
 * and its next run goes straight back to serving (continue-as-new.ts).
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  TemporalFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  metricMeter,
  patched,
  setWorkflowOptions,
} from '@temporalio/workflow';

import { deployTimings } from '../../src/shared/deploy-timings';
import type { DeployInput, DeployOutcome } from '../../src/shared/deploy-types';
import { rootMessage } from '../../src/shared/failure-message';
import { FailureType } from '../../src/shared/failure-types';
import type { DeployCarryOver } from './carry';
import { carryOver, historyFull, settleBeforeContinuing } from './continue-as-new';
import { warnAheadSeconds } from './serving-period';
import { deploymentSpec, provision, smokeQuery, startReplicas, validate } from './bring-up';
import { DeployState } from './state';
import { activities } from './steps';
import { initialScaleToZeroStatus, startScaleToZero } from './scale-to-zero';
import { budgetScaleToZero, keepLedger, startBudgetWatch, untilNoChange } from './budget';
import { initialAutoscaleStatus, startAutoscale } from './autoscale';
import { setMessageHandlers } from './updates';
import { startCertificateRenewal } from './certificate';
import { startGatewayWatch } from './gateway-watch';

// Pinned: a deployment that serves for weeks is replayed only by the worker version it started on (README,
// Upgrading workers with deployments in flight). Its Updates run there too.
setWorkflowOptions({ versioningBehavior: 'PINNED' }, deploy);
export async function deploy(input: DeployInput, carried?: DeployCarryOver): Promise<DeployOutcome> {
  const timings = deployTimings(input.target, input.timings);
  const d = new DeployState(input, deploymentSpec(input), timings, carried);
  d.recorder.onPublish = () => keepLedger(d);
  const counters = deploymentCounters();
  setMessageHandlers(d);

  let failure: unknown;
  try {
    await d.main.run(async () => {
      if (!carried) {
        await validate(d);
        d.provisioningStarted = true;
        await provision(d);
        await startReplicas(d);
        await smokeQuery(d);
        counters.served.add(1, { target: input.target });
        d.counted = true;
        startServing(d);
      }
      await serve(d);
    });
  } catch (err) {
    failure = err;
  }
  if (failure === undefined && d.serving.continuing) {
    return continueAsNew<typeof deploy>(d.input, carryOver(d));
  }

  if (d.provisioningStarted) await tearDown(d);
  if (d.counted) counters.tornDown.add(1, { target: input.target });
  d.status.expiresAt = undefined;
  d.status.endsBecause = undefined;
  d.ended = true;
  // Every teardown Update in flight answers before the workflow closes.
  await condition(allHandlersFinished);
  return outcome(d, failure);
}

// Deployments live = served − torn down (both counters; the runtime's meter has no up-down counter).
function deploymentCounters() {
  return {
    served: metricMeter.createCounter('inferctl_deployments_served', 'deployments', 'Deployments that started serving'),
    tornDown: metricMeter.createCounter(
      'inferctl_deployments_torn_down',
      'deployments',
      'Served deployments torn down',
    ),
  };
}

/** The first version serves from now, and the TTL starts. */
function startServing(d: DeployState): void {
  const { input, status } = d;
  status.versions = [{ modelPath: input.modelPath, modelDigest: status.modelDigest, from: new Date().toISOString() }];
  if (input.scaleToZero) d.status.scaleToZero = initialScaleToZeroStatus(input.scaleToZero);
  if (input.autoscale) d.status.autoscale = initialAutoscaleStatus(input.autoscale);
  d.serving.start();
}

/**
 * Serves until the TTL ends, the replicas go idle or a teardown is requested, then lets a change in flight
 * finish. Or, once this run's history is long, stops for the deployment to continue as new.
 */
async function serve(d: DeployState): Promise<void> {
  const { serving } = d;
  const record = d.status.steps.length;
  await d.step('serve', 'serving', async () => {
    // Idle TTLs and the expiry warning add timers and an activity, continue-as-new its command: deployments
    // that started before them keep the wait they were recorded with.
    // Scale to zero runs beside the wait: only deployments started with it (and this code) run it.
    let zero = d.input.scaleToZero && patched('scale-to-zero') ? startScaleToZero(d) : undefined;
    const auto = d.input.autoscale && patched('autoscale') ? startAutoscale(d) : undefined;
    // --budget: a watch beside the wait; at 100 % it scales to zero (the loop above restarted cold) or tears down.
    const budget =
      d.input.cost?.budget !== undefined && patched('deploy-budget')
        ? startBudgetWatch(d, async () => {
            await untilNoChange(d);
            zero?.cancel();
            await budgetScaleToZero(d);
            if (zero) zero = startScaleToZero(d);
          })
        : undefined;
    // An HTTPS endpoint's certificate is renewed before it expires (--ttl none serves for years).
    const renewal = d.status.tls && patched('tls-renewal') ? startCertificateRenewal(d) : undefined;
    // A local gateway that dies while serving is started again on its address (gateway-watch.ts).
    const watchdog = patched('gateway-watch') ? startGatewayWatch(d) : undefined;
    if (patched('serving-updates-idle-ttl')) {
      const full = patched('deploy-continue-as-new') ? historyFull(d) : undefined;
      await serving.untilOver(idleWatch(d), full);
    } else await serving.untilOverLegacy();
    // A scale in flight finishes before teardown starts.
    await condition(() => !d.changing);
    zero?.cancel();
    budget?.cancel();
    auto?.cancel();
    renewal?.cancel();
    watchdog?.cancel();
    if (serving.continuing) await settleBeforeContinuing(d);
  });
  if (serving.continuing) d.status.steps[record]!.detail = `continues as new (run ${d.continuedRuns + 2})`;
}

/** The idle-watch activity for a deployment with an idle TTL; none without one. */
function idleWatch(d: DeployState) {
  const idleSeconds = d.input.idleTtlSeconds;
  if (idleSeconds === undefined) return undefined;
  const pollSeconds = Math.min(30, Math.max(1, idleSeconds / 10));
  const watch = activities(
    {
      startToCloseTimeout: '3650 days',
      heartbeatTimeout: Math.max(d.timings.heartbeatTimeoutSeconds, pollSeconds * 3) * 1000,
      retry: { initialInterval: '1s', maximumInterval: '1 minute' },
    },
    `Watch the replicas' request counters (idle TTL ${idleSeconds}s)`,
  );
  return () =>
    watch.waitUntilIdle(d.spec, { idleSeconds, pollSeconds, warnAheadSeconds: warnAheadSeconds(idleSeconds) });
}

/** Teardown, in a scope no cancellation reaches: what it removed goes into the status. */
async function tearDown(d: DeployState): Promise<void> {
  const report = await CancellationScope.nonCancellable(() =>
    d.step('teardown', 'tearing-down', () => d.activities('cleanup', `Tear down ${d.input.name}`).teardown(d.spec)),
  );
  d.status.teardownRemoved = report.removed;
  d.recorder.publish(); // the ledger closes its lines as teardown ends
}

/** How the workflow ends: done (by its TTL, idle TTL or a teardown request), cancelled, or failed. */
function outcome(d: DeployState, failure: unknown): DeployOutcome {
  const { input, status, recorder, serving } = d;
  const stoppedBySignal = serving.teardownRequested && (failure === undefined || isCancellation(failure));
  if (failure !== undefined && !stoppedBySignal) {
    if (isCancellation(failure)) {
      recorder.setStage('cancelled');
      // Rethrown as a Temporal failure, the workflow ends Cancelled rather than failing its task.
      throw failure instanceof TemporalFailure ? failure : new CancelledFailure('Deployment cancelled');
    }
    recorder.setStage('failed');
    throw ApplicationFailure.create({
      type: FailureType.DeploymentFailed,
      message: `Deployment "${input.name}" failed (${status.lastError ?? rootMessage(failure)}). ${recorder.teardownSummary(d.provisioningStarted)}`,
      nonRetryable: true,
      cause: failure instanceof Error ? failure : undefined,
    });
  }
  recorder.setStage('done');
  const byBudget = status.cost?.budget?.state === 'reached' && status.cost.budget.onBudget === 'teardown';
  return { ...status, endedBy: byBudget ? 'budget' : stoppedBySignal ? 'signal' : (serving.endedBy ?? 'ttl') };
}
