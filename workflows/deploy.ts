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
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  metricMeter,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';

import { rootMessage } from '../src/shared/failure-message';
import { InferctlKind, Stage } from '../src/shared/search-attributes';
import type { createDeployActivities } from '../activities/deploy';
import type {
  DeployInput,
  DeployOutcome,
  DeployStage,
  DeployStatus,
  DeploymentSpec,
  ExtendTtlRequest,
  TeardownRequest,
} from '../src/shared/deploy-types';

type DeployActivities = ReturnType<typeof createDeployActivities>;

export const statusQuery = defineQuery<DeployStatus>('status');
export const extendTtlSignal = defineSignal<[ExtendTtlRequest]>('extendTtl');
export const teardownSignal = defineSignal<[TeardownRequest]>('teardown');

const DEFAULT_READY_TIMEOUT_SECONDS = 120;
const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 15;

export async function deploy(input: DeployInput): Promise<DeployOutcome> {
  const heartbeatTimeout = `${input.timings?.heartbeatTimeoutSeconds ?? DEFAULT_HEARTBEAT_TIMEOUT_SECONDS}s`;
  const readyTimeoutSeconds = input.timings?.readyTimeoutSeconds ?? DEFAULT_READY_TIMEOUT_SECONDS;

  // Timeouts and retries per kind of step: cloud provisioning is slow, smoke queries are fast,
  // teardown never gives up.
  const quick: ActivityOptions = { startToCloseTimeout: '1 minute', retry: { maximumAttempts: 3 } };
  const infra: ActivityOptions = {
    startToCloseTimeout: '45 minutes',
    heartbeatTimeout,
    retry: { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 5 },
  };
  const waiting: ActivityOptions = {
    startToCloseTimeout: `${readyTimeoutSeconds + 60}s`,
    heartbeatTimeout,
    retry: { initialInterval: '1s', maximumAttempts: 5 },
  };
  const cleanup: ActivityOptions = {
    startToCloseTimeout: '45 minutes',
    heartbeatTimeout,
    retry: { initialInterval: '1s', maximumInterval: '1 minute' }, // unlimited attempts
  };
  const activities = (options: ActivityOptions, summary: string) =>
    proxyActivities<DeployActivities>({ ...options, summary });

  const spec: DeploymentSpec = {
    name: input.name,
    target: input.target,
    ownerId: workflowInfo().workflowId,
    modelPath: input.modelPath,
    replicas: input.replicas,
    topK: input.topK ?? 5,
    ...(input.aks ? { aks: input.aks } : {}),
  };
  const status: DeployStatus = {
    name: input.name,
    target: input.target,
    stage: 'validating',
    replicas: input.replicas,
    steps: [],
  };
  let ttlSeconds = input.ttlSeconds;
  let expiresAtMs: number | undefined;
  let teardownRequested = false;
  let provisioningStarted = false;

  // Upsert only what the workflow was started with: a cluster without inferctl's search attributes
  // registered would otherwise fail every workflow task.
  const indexed = workflowInfo().typedSearchAttributes.get(InferctlKind) !== undefined;
  const setStage = (stage: DeployStage) => {
    status.stage = stage;
    setCurrentDetails(describe(status));
    if (indexed) upsertSearchAttributes([{ key: Stage, value: stage }]);
  };
  setCurrentDetails(describe(status));

  const main = new CancellationScope();

  setHandler(statusQuery, () => status);
  setHandler(extendTtlSignal, ({ seconds }) => {
    if (!(seconds > 0)) return;
    if (expiresAtMs === undefined) {
      ttlSeconds = Math.max(ttlSeconds, seconds);
    } else {
      expiresAtMs = Math.max(expiresAtMs, Date.now() + seconds * 1000);
      status.expiresAt = new Date(expiresAtMs).toISOString();
      setCurrentDetails(describe(status));
    }
    log.info('TTL extended', { seconds });
  });
  setHandler(teardownSignal, ({ reason }) => {
    teardownRequested = true;
    log.info('Teardown requested', { reason });
    // Before serving, a teardown request stops the step in flight; while serving it ends the wait.
    if (status.stage !== 'serving') main.cancel();
  });

  async function step<T>(
    name: string,
    stage: DeployStage,
    fn: () => Promise<T>,
    detail?: (r: T) => string,
  ): Promise<T> {
    setStage(stage);
    const startedAt = Date.now();
    const record: DeployStatus['steps'][number] = { step: name, startedAt: new Date(startedAt).toISOString() };
    status.steps.push(record);
    try {
      const result = await fn();
      record.ok = true;
      if (detail) record.detail = detail(result);
      return result;
    } catch (err) {
      record.ok = false;
      status.lastError = `${name}: ${rootMessage(err)}`;
      throw err;
    } finally {
      record.durationMs = Date.now() - startedAt;
    }
  }

  // Deployments live = served − torn down (both counters; the runtime's meter has no up-down counter).
  const served = metricMeter.createCounter(
    'inferctl_deployments_served',
    'deployments',
    'Deployments that started serving',
  );
  const tornDown = metricMeter.createCounter(
    'inferctl_deployments_torn_down',
    'deployments',
    'Served deployments torn down',
  );
  let counted = false;

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
      await step('deploy', 'deploying', () =>
        activities(infra, `Start ${input.replicas} replica(s)`).deploy(spec, image),
      );
      const ready = await step('waitForDeployment', 'waiting', () =>
        activities(waiting, 'Wait until every replica is ready').waitForDeployment(spec, {
          timeoutSeconds: readyTimeoutSeconds,
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

      served.add(1, { target: input.target });
      counted = true;
      expiresAtMs = Date.now() + ttlSeconds * 1000;
      status.expiresAt = new Date(expiresAtMs).toISOString();
      await step('serve', 'serving', async () => {
        while (!teardownRequested && expiresAtMs! > Date.now()) {
          await condition(() => teardownRequested, expiresAtMs! - Date.now());
        }
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
  if (counted) tornDown.add(1, { target: input.target });
  status.expiresAt = undefined;

  const stoppedBySignal = teardownRequested && (failure === undefined || isCancellation(failure));
  if (failure !== undefined && !stoppedBySignal) {
    if (isCancellation(failure)) {
      setStage('cancelled');
      throw failure instanceof Error ? failure : new Error('cancelled');
    }
    setStage('failed');
    throw ApplicationFailure.create({
      type: 'DeploymentFailed',
      message: `Deployment "${input.name}" failed (${status.lastError ?? rootMessage(failure)}). ${teardownSummary(status, provisioningStarted)}`,
      nonRetryable: true,
      cause: failure instanceof Error ? failure : undefined,
    });
  }
  setStage('done');
  return { ...status, endedBy: stoppedBySignal ? 'signal' : 'ttl' };
}

function teardownSummary(status: DeployStatus, ran: boolean): string {
  if (!ran) return 'Nothing was created.';
  return `Teardown completed (${status.teardownRemoved?.length ?? 0} resource(s) removed).`;
}

/** The workflow's current details, shown by the Temporal Web UI. */
function describe(status: DeployStatus): string {
  const lines = [`- **Stage:** ${status.stage}`, `- **Target:** ${status.target}, ${status.replicas} replica(s)`];
  if (status.endpoint) lines.push(`- **Endpoint:** ${status.endpoint}`);
  if (status.smoke)
    lines.push(
      `- **Smoke answer:** ${status.smoke.predictions[0]?.label} (${status.smoke.predictions[0]?.score.toFixed(3)})`,
    );
  if (status.expiresAt) lines.push(`- **Serving until:** ${status.expiresAt}`);
  if (status.lastError) lines.push(`- **Last error:** ${status.lastError}`);
  return lines.join('\n');
}
