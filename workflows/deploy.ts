/**
 * The deploy workflow: validate → provision → build image → deploy → wait for readiness → smoke query →
 * serve until the TTL ends, the replicas go idle, or a teardown request arrives → teardown.
 *
 * While it serves it is steered with Updates, each with a validator that refuses a bad request before it
 * enters history, each answering with its result: `extend` (the new expiry), `teardownNow` (what teardown
 * removed), `scale` (the replicas ready), `attach` (the status, for a deploy of the same spec). The older
 * `extendTtl` and `teardown` signals are still handled for the clients and histories that use them.
 *
 * Teardown is compensation: once provisioning has started it runs, in a non-cancellable scope, on
 * success, on the failure of any step, on cancellation, and after any worker crash (the workflow simply
 * resumes on another worker). It is idempotent and retried until it succeeds.
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  TemporalFailure,
  allHandlersFinished,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  metricMeter,
  patched,
  setHandler,
  setWorkflowOptions,
  workflowInfo,
} from '@temporalio/workflow';

import { deployTimings } from '../src/shared/deploy-timings';
import type { ResolvedDeployTimings } from '../src/shared/deploy-timings';
import type {
  DeployInput,
  DeployOutcome,
  DeployStatus,
  DeploymentSpec,
  ExtendTtlRequest,
  TeardownRequest,
} from '../src/shared/deploy-types';
import { rootMessage } from '../src/shared/failure-message';
import { FailureType } from '../src/shared/failure-types';
import { setUpdateHandlers } from './deploy-updates';
import type { LiveState } from './deploy-updates';
import { DeployStatusRecorder } from './deploy-status';
import { activities, stepOptions } from './deploy-steps';
import { ServingPeriod, warnAheadSeconds } from './serving-period';

export { attachUpdate, extendUpdate, rolloutUpdate, scaleUpdate, teardownUpdate } from './deploy-updates';

export const statusQuery = defineQuery<DeployStatus>('status');
/** @deprecated Use `extendUpdate`: a signal with a bad value is dropped silently. Kept for in-flight clients. */
export const extendTtlSignal = defineSignal<[ExtendTtlRequest]>('extendTtl');
/** @deprecated Use `teardownUpdate`. Kept for in-flight clients. */
export const teardownSignal = defineSignal<[TeardownRequest]>('teardown');

/** The idle-watch activity for a deployment with an idle TTL; none without one. */
function idleWatch(input: DeployInput, spec: DeploymentSpec, timings: ResolvedDeployTimings) {
  const idleSeconds = input.idleTtlSeconds;
  if (idleSeconds === undefined) return undefined;
  const pollSeconds = Math.min(30, Math.max(1, idleSeconds / 10));
  const watch = activities(
    {
      startToCloseTimeout: '3650 days',
      heartbeatTimeout: Math.max(timings.heartbeatTimeoutSeconds, pollSeconds * 3) * 1000,
      retry: { initialInterval: '1s', maximumInterval: '1 minute' },
    },
    `Watch the replicas' request counters (idle TTL ${idleSeconds}s)`,
  );
  return () => watch.waitUntilIdle(spec, { idleSeconds, pollSeconds, warnAheadSeconds: warnAheadSeconds(idleSeconds) });
}

function deploymentSpec(input: DeployInput): DeploymentSpec {
  return {
    name: input.name,
    target: input.target,
    ownerId: workflowInfo().workflowId,
    modelPath: input.modelPath,
    replicas: input.replicas,
    topK: input.topK ?? 5,
    ...(input.preprocess ? { preprocess: input.preprocess } : {}),
    ...(input.labelsPath ? { labelsPath: input.labelsPath } : {}),
    ...(input.script ? { script: input.script } : {}),
    ...(input.aks ? { aks: input.aks } : {}),
  };
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

// Pinned: a deployment that serves for weeks is replayed only by the worker version it started on (README,
// Upgrading workers with deployments in flight). Its Updates run there too.
setWorkflowOptions({ versioningBehavior: 'PINNED' }, deploy);
export async function deploy(input: DeployInput): Promise<DeployOutcome> {
  const timings = deployTimings(input.target, input.timings);
  const { quick, infra, waiting, cleanup } = stepOptions(timings);
  const spec = deploymentSpec(input);
  const recorder = new DeployStatusRecorder(input);
  const { status } = recorder;
  const step = recorder.step.bind(recorder);
  const counters = deploymentCounters();
  const serving = new ServingPeriod(input.ttlSeconds, recorder, input.idleTtlSeconds);
  const live: LiveState = { changing: false, ended: false };
  let provisioningStarted = false;
  let counted = false;

  const main = new CancellationScope();
  const requestTeardown = (reason: string | undefined) => {
    serving.teardownRequested = true;
    log.info('Teardown requested', { reason });
    // Before serving, a teardown request stops the step in flight; while serving it ends the wait.
    if (status.stage !== 'serving') main.cancel();
    live.change?.cancel(); // a rollout in flight rolls back, then teardown runs
  };
  setHandler(statusQuery, () => status);
  setHandler(extendTtlSignal, ({ seconds }) => void serving.extend(seconds));
  setHandler(teardownSignal, ({ reason }) => requestTeardown(reason));
  setUpdateHandlers({
    input,
    spec,
    status,
    serving,
    live,
    requestTeardown,
    step,
    quick,
    waiting,
    infra,
    cleanup,
    timings,
  });

  let failure: unknown;
  try {
    await main.run(async () => {
      const validated = await step(
        'validate',
        'validating',
        () => activities(quick, `Validate ${input.name}`).validateDeployment(input),
        (v) =>
          (v.protocol === 'v2'
            ? 'V2 only (not an image classifier)'
            : v.protocol === 'script'
              ? 'scoring script'
              : 'image classifier') + (v.input ? `: ${v.input}` : ''),
      );
      status.modelDigest = validated.modelDigest;
      status.protocol = validated.protocol ?? 'classifier';
      status.v2ModelName = validated.v2ModelName;
      if (validated.protocol === 'v2') spec.protocol = 'v2';

      provisioningStarted = true;
      const provisioned = await step('provision', 'provisioning', () =>
        activities(infra, `Provision ${input.target} cluster`).provision(spec),
      );
      status.apiKeyRef = provisioned.secretRef;
      if (provisioned.tls) status.tls = provisioned.tls;
      const image = await step(
        'buildImage',
        'building',
        () => activities(infra, 'Build the scoring image').buildImage(spec),
        (r) => `${r.digest.slice(0, 19)}${r.reused ? ' (reused)' : ''}`,
      );
      status.imageRef = image.imageRef;
      live.image = image;
      await step('deploy', 'deploying', () =>
        activities(infra, `Start ${input.replicas} replica(s)`).deploy(spec, image),
      );
      const ready = await step('waitForDeployment', 'waiting', () =>
        activities(waiting, 'Wait until every replica is ready').waitForDeployment(spec, {
          timeoutSeconds: timings.readyTimeoutSeconds,
          pollIntervalMs: timings.readinessPollSeconds * 1000,
        }),
      );
      status.endpoint = ready.endpoint;
      status.replicaUrls = ready.replicaUrls;
      if (input.smoke) {
        const smoke = input.smoke;
        status.smoke = await step(
          'smokeQuery',
          'smoke-testing',
          () => activities(quick, 'Smoke query with the sample image').smokeQuery(spec, smoke),
          (r) => `${r.predictions[0]?.label} ${r.predictions[0]?.score.toFixed(3)}`,
        );
      } else if (input.scriptSmoke) {
        const smoke = input.scriptSmoke;
        status.scriptSmoke = await step(
          'smokeQuery',
          'smoke-testing',
          () => activities(quick, 'Smoke query with the sample').smokeQueryScript(spec, smoke),
          (r) => `${r.status}${r.checked ? `, ${r.checked}` : ''}`,
        );
      } else if (input.smokeRequest) {
        const smoke = input.smokeRequest;
        status.v2Smoke = await step(
          'smokeQuery',
          'smoke-testing',
          () => activities(quick, 'Smoke query with the V2 request').smokeQueryV2(spec, smoke),
          (r) => r.outputs.map((o) => `${o.name} ${o.datatype} [${o.shape.join(', ')}]`).join(', '),
        );
      }

      counters.served.add(1, { target: input.target });
      counted = true;
      status.versions = [
        { modelPath: input.modelPath, modelDigest: validated.modelDigest, from: new Date().toISOString() },
      ];
      serving.start();
      await step('serve', 'serving', async () => {
        // Idle TTLs and the expiry warning add timers and an activity: deployments that started before
        // them keep the wait they were recorded with.
        if (patched('serving-updates-idle-ttl')) await serving.untilOver(idleWatch(input, spec, timings));
        else await serving.untilOverLegacy();
        // A scale in flight finishes before teardown starts.
        await condition(() => !live.changing);
      });
    });
  } catch (err) {
    failure = err;
  }

  if (provisioningStarted) {
    const report = await CancellationScope.nonCancellable(() =>
      step('teardown', 'tearing-down', () => activities(cleanup, `Tear down ${input.name}`).teardown(spec)),
    );
    status.teardownRemoved = report.removed;
  }
  if (counted) counters.tornDown.add(1, { target: input.target });
  status.expiresAt = undefined;
  status.endsBecause = undefined;
  live.ended = true;
  // Every teardown Update in flight answers before the workflow closes.
  await condition(allHandlersFinished);

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
      message: `Deployment "${input.name}" failed (${status.lastError ?? rootMessage(failure)}). ${recorder.teardownSummary(provisioningStarted)}`,
      nonRetryable: true,
      cause: failure instanceof Error ? failure : undefined,
    });
  }
  recorder.setStage('done');
  return { ...status, endedBy: stoppedBySignal ? 'signal' : (serving.endedBy ?? 'ttl') };
}
