/**
 * The deploy workflow: validate → provision → build image → deploy → wait for readiness → smoke query →
 * serve until the TTL ends or a teardown signal arrives → teardown.
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
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  metricMeter,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';

import type { createDeployActivities } from '../activities/deploy';
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
import { DeployStatusRecorder } from './deploy-status';

type DeployActivities = ReturnType<typeof createDeployActivities>;

export const statusQuery = defineQuery<DeployStatus>('status');
export const extendTtlSignal = defineSignal<[ExtendTtlRequest]>('extendTtl');
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

/** How long the deployment serves: the TTL (extendable, never shortened) or until a teardown request. */
class ServingPeriod {
  teardownRequested = false;
  private expiresAtMs: number | undefined;

  constructor(
    private ttlSeconds: number,
    private readonly recorder: DeployStatusRecorder,
  ) {}

  extend(seconds: number): void {
    if (!(seconds > 0)) return;
    if (this.expiresAtMs === undefined) {
      this.ttlSeconds = Math.max(this.ttlSeconds, seconds);
    } else {
      this.expiresAtMs = Math.max(this.expiresAtMs, Date.now() + seconds * 1000);
      this.recorder.status.expiresAt = new Date(this.expiresAtMs).toISOString();
      this.recorder.publish();
    }
    log.info('TTL extended', { seconds });
  }

  start(): void {
    this.expiresAtMs = Date.now() + this.ttlSeconds * 1000;
    this.recorder.status.expiresAt = new Date(this.expiresAtMs).toISOString();
  }

  async untilOver(): Promise<void> {
    while (!this.teardownRequested && this.expiresAtMs! > Date.now()) {
      await condition(() => this.teardownRequested, this.expiresAtMs! - Date.now());
    }
  }
}

export async function deploy(input: DeployInput): Promise<DeployOutcome> {
  const timings = deployTimings(input.target, input.timings);
  const { quick, infra, waiting, cleanup } = stepOptions(timings);
  const spec = deploymentSpec(input);
  const recorder = new DeployStatusRecorder(input);
  const { status } = recorder;
  const step = recorder.step.bind(recorder);
  const counters = deploymentCounters();
  const serving = new ServingPeriod(input.ttlSeconds, recorder);
  let provisioningStarted = false;
  let counted = false;

  const main = new CancellationScope();
  setHandler(statusQuery, () => status);
  setHandler(extendTtlSignal, ({ seconds }) => serving.extend(seconds));
  setHandler(teardownSignal, ({ reason }) => {
    serving.teardownRequested = true;
    log.info('Teardown requested', { reason });
    // Before serving, a teardown request stops the step in flight; while serving it ends the wait.
    if (status.stage !== 'serving') main.cancel();
  });

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
      if (provisioned.tls) status.tls = provisioned.tls;
      const image = await step(
        'buildImage',
        'building',
        () => activities(infra, 'Build the scoring image').buildImage(spec),
        (r) => `${r.digest.slice(0, 19)}${r.reused ? ' (reused)' : ''}`,
      );
      status.imageRef = image.imageRef;
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
      await step('serve', 'serving', () => serving.untilOver());
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
  return { ...status, endedBy: stoppedBySignal ? 'signal' : 'ttl' };
}
