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
  defineUpdate,
  isCancellation,
  log,
  metricMeter,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';

import type { createDeployActivities } from '../activities/deploy';
import { deployTimings } from '../src/shared/deploy-timings';
import type { ResolvedDeployTimings } from '../src/shared/deploy-timings';
import { DEPLOY_UPDATES } from '../src/shared/deploy-types';
import type {
  DeployInput,
  DeployOutcome,
  DeployStatus,
  DeploymentSpec,
  ExtendResult,
  ExtendTtlRequest,
  ScaleRequest,
  ScaleResult,
  TeardownRequest,
  TeardownResult,
} from '../src/shared/deploy-types';
import type { ImageResult } from '../src/shared/target-types';
import { rootMessage } from '../src/shared/failure-message';
import { FailureType } from '../src/shared/failure-types';
import { attachRefusal, isEnding, scaleRefusal } from './deploy-checks';
import { DeployStatusRecorder } from './deploy-status';
import { ServingPeriod, warnAheadSeconds } from './serving-period';

type DeployActivities = ReturnType<typeof createDeployActivities>;

export const statusQuery = defineQuery<DeployStatus>('status');
export const extendUpdate = defineUpdate<ExtendResult, [ExtendTtlRequest]>(DEPLOY_UPDATES.extend);
export const teardownUpdate = defineUpdate<TeardownResult, [TeardownRequest]>(DEPLOY_UPDATES.teardown);
export const scaleUpdate = defineUpdate<ScaleResult, [ScaleRequest]>(DEPLOY_UPDATES.scale);
export const attachUpdate = defineUpdate<DeployStatus, [DeployInput]>(DEPLOY_UPDATES.attach);
/** @deprecated Use `extendUpdate`: a signal with a bad value is dropped silently. Kept for in-flight clients. */
export const extendTtlSignal = defineSignal<[ExtendTtlRequest]>('extendTtl');
/** @deprecated Use `teardownUpdate`. Kept for in-flight clients. */
export const teardownSignal = defineSignal<[TeardownRequest]>('teardown');

/**
 * Timeouts and retries per kind of step: cloud provisioning is slow, smoke queries are fast, teardown
 * never gives up.
 */
function stepOptions(timings: ResolvedDeployTimings) {
  const heartbeatTimeout = `${timings.heartbeatTimeoutSeconds}s`;
  return {
    quick: { startToCloseTimeout: '1 minute', retry: { maximumAttempts: 3 } },
    infra: {
      startToCloseTimeout: '45 minutes',
      heartbeatTimeout,
      retry: { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 5 },
    },
    waiting: {
      startToCloseTimeout: `${timings.readyTimeoutSeconds + 60}s`,
      heartbeatTimeout,
      retry: { initialInterval: '1s', maximumAttempts: 5 },
    },
    cleanup: {
      startToCloseTimeout: '45 minutes',
      heartbeatTimeout,
      retry: { initialInterval: '1s', maximumInterval: '1 minute' }, // unlimited attempts
    },
  } satisfies Record<string, ActivityOptions>;
}

/** The activities with one group's options and a summary the Web UI shows for the step. */
function activities(options: ActivityOptions, summary: string): DeployActivities {
  return proxyActivities<DeployActivities>({ ...options, summary });
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
  };
  setHandler(statusQuery, () => status);
  setHandler(extendTtlSignal, ({ seconds }) => void serving.extend(seconds));
  setHandler(teardownSignal, ({ reason }) => requestTeardown(reason));
  setUpdateHandlers({ input, spec, status, serving, live, requestTeardown, step, waiting, infra, timings });

  let failure: unknown;
  try {
    await main.run(async () => {
      const validated = await step('validate', 'validating', () =>
        activities(quick, `Validate ${input.name}`).validateDeployment(input),
      );
      status.modelDigest = validated.modelDigest;

      provisioningStarted = true;
      const provisioned = await step('provision', 'provisioning', () =>
        activities(infra, `Provision ${input.target} cluster`).provision(spec),
      );
      status.apiKeyRef = provisioned.secretRef;
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
      }

      counters.served.add(1, { target: input.target });
      counted = true;
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

/** What the Update handlers share with the workflow body. */
interface LiveState {
  /** The image the replicas run, once built: what a scale starts more of. */
  image?: ImageResult;
  /** A scale is in flight: another is refused, teardown waits for it. */
  changing: boolean;
  /** Teardown has run: a teardown Update in flight can answer. */
  ended: boolean;
}

/** The idle-watch activity for a deployment with an idle TTL; none without one. */
function idleWatch(input: DeployInput, spec: DeploymentSpec, timings: ResolvedDeployTimings) {
  const idleSeconds = input.idleTtlSeconds;
  if (idleSeconds === undefined) return undefined;
  const pollSeconds = Math.min(30, Math.max(1, idleSeconds / 10));
  const watch = activities(
    {
      startToCloseTimeout: '3650 days',
      heartbeatTimeout: `${Math.max(timings.heartbeatTimeoutSeconds, pollSeconds * 3)}s`,
      retry: { initialInterval: '1s', maximumInterval: '1 minute' },
    },
    `Watch the replicas' request counters (idle TTL ${idleSeconds}s)`,
  );
  return () => watch.waitUntilIdle(spec, { idleSeconds, pollSeconds, warnAheadSeconds: warnAheadSeconds(idleSeconds) });
}

function setUpdateHandlers(ctx: {
  input: DeployInput;
  spec: DeploymentSpec;
  status: DeployStatus;
  serving: ServingPeriod;
  live: LiveState;
  requestTeardown: (reason: string | undefined) => void;
  step: DeployStatusRecorder['step'];
  waiting: ActivityOptions;
  infra: ActivityOptions;
  timings: ResolvedDeployTimings;
}): void {
  const { input, spec, status, serving, live } = ctx;
  const refuse = (message: string) => {
    throw ApplicationFailure.create({ type: FailureType.InvalidInput, message, nonRetryable: true });
  };
  const refuseIfEnding = (what: string) => {
    if (isEnding(status.stage) || serving.teardownRequested) {
      refuse(`Deployment "${input.name}" is ${serving.teardownRequested ? 'being torn down' : status.stage}; ${what}.`);
    }
  };

  setHandler(extendUpdate, ({ seconds }) => serving.extend(seconds), {
    validator: (request) => {
      refuseIfEnding('its TTL can no longer be extended');
      try {
        serving.checkExtend((request as Partial<ExtendTtlRequest> | undefined)?.seconds);
      } catch (err) {
        refuse((err as Error).message);
      }
    },
  });

  setHandler(
    teardownUpdate,
    async ({ reason }) => {
      if (!serving.teardownRequested) ctx.requestTeardown(reason);
      await condition(() => live.ended);
      return { removed: status.teardownRemoved ?? [] };
    },
    {
      validator: (request) => {
        if (request !== undefined && (typeof request !== 'object' || request === null)) {
          refuse('teardownNow takes { reason? }.');
        }
        if (live.ended) refuse(`Deployment "${input.name}" has already been torn down.`);
      },
    },
  );

  setHandler(attachUpdate, () => status, {
    validator: (wanted) => {
      refuseIfEnding('deploy again once it has ended');
      const refusal = attachRefusal(input, spec.replicas, wanted);
      if (refusal) refuse(refusal);
    },
  });

  setHandler(
    scaleUpdate,
    async ({ replicas }) => {
      const previousReplicas = spec.replicas;
      live.changing = true;
      try {
        return await ctx.step(
          'scale',
          'serving',
          () => scaleTo(replicas),
          (r) => `${previousReplicas} → ${r.replicas}`,
        );
      } catch (err) {
        throw ApplicationFailure.create({
          type: FailureType.DeploymentFailed,
          message: `Scaling "${input.name}" to ${replicas} replica(s) failed (${rootMessage(err)}); it serves ${spec.replicas} replica(s).`,
          nonRetryable: true,
          cause: err instanceof Error ? err : undefined,
        });
      } finally {
        live.changing = false;
      }
    },
    {
      validator: (request) => {
        refuseIfEnding('it can no longer be scaled');
        const refusal = scaleRefusal(input, status.stage, live.changing, (request as Partial<ScaleRequest>)?.replicas);
        if (refusal) refuse(refusal);
      },
    },
  );

  async function scaleTo(replicas: number): Promise<ScaleResult> {
    const previousReplicas = spec.replicas;
    const image = live.image!;
    const apply = async (count: number) => {
      const wanted = { ...spec, replicas: count };
      await activities(ctx.infra, `Scale to ${count} replica(s)`).deploy(wanted, image);
      return activities(ctx.waiting, 'Wait until every replica is ready').waitForDeployment(wanted, {
        timeoutSeconds: ctx.timings.readyTimeoutSeconds,
        pollIntervalMs: ctx.timings.readinessPollSeconds * 1000,
      });
    };
    let ready;
    try {
      ready = await apply(replicas);
    } catch (err) {
      // Back to what served before; the caller learns why the scale failed.
      await apply(previousReplicas).catch((again: unknown) =>
        log.error('Scale rollback failed', { error: rootMessage(again) }),
      );
      throw err;
    }
    spec.replicas = replicas;
    status.replicas = replicas;
    status.replicaUrls = ready.replicaUrls;
    if (ready.endpoint) status.endpoint = ready.endpoint;
    log.info('Scaled', { from: previousReplicas, to: replicas });
    return {
      replicas,
      previousReplicas,
      replicaUrls: ready.replicaUrls,
      ...(ready.endpoint ? { endpoint: ready.endpoint } : {}),
    };
  }
}
