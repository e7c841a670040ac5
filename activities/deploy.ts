/**
 * The deploy workflow's activities: one per step, each idempotent and safe to retry, each delegating
 * to the deployment's target. Secrets (the endpoint key) are read here and never returned.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { ApplicationFailure, Context, log } from '@temporalio/activity';

import { assertInsideAllowedRoots } from '../src/allowed-roots';
import { readModelInfo, readOverrides } from '../src/model/model-info';
import { configOf } from '../src/model/preprocess-spec';
import { TARGET_TIMINGS } from '../src/shared/deploy-timings';
import { DEPLOYMENT_NAME_PATTERN, REPLICA_LIMITS } from '../src/shared/deploy-types';
import type { DeployInput, Prediction, SmokeResult, SmokeSpec } from '../src/shared/deploy-types';
import type { PreprocessConfig, PreprocessSource } from '../src/shared/preprocess-types';
import type { StepProgress, Target } from '../src/targets/target';
import type {
  DeployResult,
  DeploymentSpec,
  ImageResult,
  ProvisionResult,
  ReadinessReport,
  TargetKind,
  TeardownReport,
} from '../src/shared/target-types';
import { failingPermanently } from './failures';
import { withHeartbeat } from './heartbeat';
import { FailureType } from '../src/shared/failure-types';

export interface DeployActivityDeps {
  /** The targets this worker can drive; a deployment for another target fails with a clear message. */
  targets: Partial<Record<TargetKind, Target>>;
}

export interface ValidatedDeployment {
  modelName: string;
  modelDigest: string;
  labels: number;
  /** The preprocessing spec the replicas will use, resolved, and where it came from. */
  preprocess?: PreprocessConfig;
  preprocessSource?: PreprocessSource;
  /** The model's input, e.g. "float32 NHWC 224x224". */
  input?: string;
  /** False when the model's batch dimension is fixed at 1: served without dynamic batching. */
  batching?: boolean;
}

export interface WaitOptions {
  timeoutSeconds: number;
  /** From the deploy workflow's timing table; the target's default when a workflow started before it passed one. */
  pollIntervalMs?: number;
}

export interface IdleWatchOptions {
  idleSeconds: number;
  /** How often the counters are read. */
  pollSeconds: number;
  /** The warning is logged this long before the idle TTL runs out. */
  warnAheadSeconds: number;
}

/** What `waitUntilIdle` heartbeats: the last count seen and when it last changed (ms since the epoch). */
interface IdleHeartbeat {
  lastTotal?: number;
  lastChangeAt: number;
  warned: boolean;
}

export interface IdleReport {
  /** When the counters last moved (or serving began), ISO 8601. */
  lastRequestAt: string;
  requests: number;
}

export function createDeployActivities({ targets }: DeployActivityDeps) {
  function targetFor(kind: TargetKind): Target {
    const target = targets[kind];
    if (!target) {
      throw ApplicationFailure.nonRetryable(
        `This worker cannot deploy to target "${kind}" (it serves: ${Object.keys(targets).join(', ') || 'none'}). ` +
          `Start a worker configured for "${kind}".`,
        FailureType.TargetUnavailable,
      );
    }
    return target;
  }

  return {
    /** Checks everything that can be checked before anything is created or billed. */
    async validateDeployment(input: DeployInput): Promise<ValidatedDeployment> {
      const problems: string[] = [];
      if (!DEPLOYMENT_NAME_PATTERN.test(input.name)) {
        problems.push(
          `name "${input.name}" must be 1-40 lowercase letters, digits or '-', starting and ending with a letter or digit`,
        );
      }
      const limit = REPLICA_LIMITS[input.target];
      if (!Number.isInteger(input.replicas) || input.replicas < 1 || input.replicas > limit) {
        problems.push(
          `replicas must be a whole number from 1 to ${limit} for target "${input.target}" (got ${input.replicas})`,
        );
      }
      if (input.ttlSeconds !== null && !(input.ttlSeconds > 0)) {
        problems.push(`ttl must be positive or none (got ${input.ttlSeconds}s)`);
      }
      if (input.idleTtlSeconds !== undefined && !(input.idleTtlSeconds > 0)) {
        problems.push(`idle ttl must be positive (got ${input.idleTtlSeconds}s)`);
      }
      if (input.idleTtlSeconds !== undefined && targets[input.target] && !targets[input.target]!.requestCount) {
        problems.push(
          `--idle-ttl needs the replicas' request counters, which target "${input.target}" does not read yet`,
        );
      }
      if (!path.isAbsolute(input.modelPath)) problems.push(`model path must be absolute (got ${input.modelPath})`);
      if (input.labelsPath !== undefined && !path.isAbsolute(input.labelsPath)) {
        problems.push(`labels path must be absolute (got ${input.labelsPath})`);
      }
      if (problems.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `Invalid deployment: ${problems.join('; ')}.`,
          FailureType.InvalidDeployment,
        );
      }
      targetFor(input.target);
      await failingPermanently(() => {
        assertInsideAllowedRoots('model', input.modelPath);
        if (input.smoke) assertInsideAllowedRoots('smoke sample', input.smoke.samplePath);
        if (input.labelsPath) assertInsideAllowedRoots('labels file', input.labelsPath);
        return Promise.resolve();
      });

      const info = await failingPermanently(async () => readModelInfo(input.modelPath, await readOverrides(input)));
      if (input.smoke) {
        try {
          await fs.access(input.smoke.samplePath);
        } catch {
          throw ApplicationFailure.nonRetryable(
            `Smoke sample not found: ${input.smoke.samplePath}. Pass an existing JPEG or PNG with --smoke-sample.`,
            FailureType.InvalidDeployment,
          );
        }
        const expected = input.smoke.expectedLabel;
        if (expected !== undefined && !info.labels.includes(expected)) {
          throw ApplicationFailure.nonRetryable(
            `Expected label "${expected}" is not one of the model's labels (${info.labels.slice(0, 10).join(', ')}` +
              `${info.labels.length > 10 ? ', …' : ''}).`,
            FailureType.InvalidDeployment,
          );
        }
      }
      const validated: ValidatedDeployment = {
        modelName: path.basename(input.modelPath),
        modelDigest: info.digest,
        labels: info.labels.length,
        preprocess: configOf(info),
        preprocessSource: info.preprocessSource,
        input: `${info.inputType} ${info.layout} ${info.width}x${info.height}`,
        batching: info.dynamicBatch,
      };
      if (!info.dynamicBatch) log.info('The model takes one image at a time: served without dynamic batching');
      return validated;
    },

    async provision(spec: DeploymentSpec): Promise<ProvisionResult> {
      const target = targetFor(spec.target);
      // The first attempt's schedule time: the provisioning deadline holds across retries and worker crashes.
      const firstAttemptAt = Context.current().info.scheduledTimestampMs;
      return targetStep((signal, progress) =>
        failingPermanently(() => target.provision(spec, signal, progress, firstAttemptAt)),
      );
    },

    async buildImage(spec: DeploymentSpec): Promise<ImageResult> {
      const target = targetFor(spec.target);
      return targetStep((signal, progress) => failingPermanently(() => target.buildImage(spec, signal, progress)));
    },

    async deploy(spec: DeploymentSpec, image: ImageResult): Promise<DeployResult> {
      const target = targetFor(spec.target);
      return targetStep((signal, progress) => failingPermanently(() => target.deploy(spec, image, signal, progress)));
    },

    /**
     * Polls readiness until every replica answers, heartbeating the latest report. The deadline counts
     * from the first attempt (kept in the heartbeat details), so a retry does not restart the clock.
     */
    async waitForDeployment(spec: DeploymentSpec, opts: WaitOptions): Promise<ReadinessReport> {
      const target = targetFor(spec.target);
      const ctx = Context.current();
      const previous = ctx.info.heartbeatDetails as { firstPolledAt?: number } | undefined;
      const firstPolledAt = previous?.firstPolledAt ?? Date.now();
      const deadline = firstPolledAt + opts.timeoutSeconds * 1000;
      let report: ReadinessReport | undefined;
      for (;;) {
        report = await failingPermanently(() => target.checkReadiness(spec, ctx.cancellationSignal));
        ctx.heartbeat({ firstPolledAt, readyReplicas: report.readyReplicas, reason: report.reason });
        if (report.ready) return report;
        if (report.fatal) {
          throw ApplicationFailure.nonRetryable(
            `Deployment "${spec.name}" cannot become ready: ${report.reason}`,
            FailureType.DeploymentFailed,
          );
        }
        if (Date.now() >= deadline) {
          throw ApplicationFailure.nonRetryable(
            `Deployment "${spec.name}" was not ready after ${opts.timeoutSeconds}s ` +
              `(${report.readyReplicas}/${report.desiredReplicas} replicas ready): ${report.reason}`,
            FailureType.DeploymentNotReady,
          );
        }
        log.info('Waiting for deployment', { name: spec.name, ready: report.readyReplicas, reason: report.reason });
        await ctx.sleep(opts.pollIntervalMs ?? TARGET_TIMINGS[spec.target].readinessPollSeconds * 1000);
      }
    },

    /**
     * Proves the endpoint works: an unauthenticated call must get 401, an authenticated POST of the sample
     * must get well-formed predictions, and the top label must match when one is expected.
     */
    async smokeQuery(spec: DeploymentSpec, smoke: SmokeSpec): Promise<SmokeResult> {
      const target = targetFor(spec.target);
      const { endpoint, apiKey } = await failingPermanently(() => target.endpointAccess(spec));
      const body = await fs.readFile(smoke.samplePath);
      const url = `${endpoint}/score`;
      const signal = Context.current().cancellationSignal;

      const anonymous = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'image/jpeg' }, signal });
      await anonymous.arrayBuffer();
      if (anonymous.status !== 401) {
        throw ApplicationFailure.nonRetryable(
          `The endpoint answered ${anonymous.status} to a request without a key; it must refuse with 401.`,
          FailureType.EndpointUnprotected,
        );
      }

      const started = Date.now();
      const res = await fetch(url, {
        method: 'POST',
        body,
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'image/jpeg' },
        signal,
      });
      const latencyMs = Date.now() - started;
      const text = await res.text();
      if (res.status >= 500) throw new Error(`Smoke query got ${res.status} from ${url}: ${text.slice(0, 300)}`);
      if (res.status !== 200) {
        throw ApplicationFailure.nonRetryable(
          `Smoke query got ${res.status} from ${url}: ${text.slice(0, 300)}`,
          FailureType.SmokeQueryFailed,
        );
      }
      const predictions = parsePredictions(text);
      if (!predictions) {
        throw ApplicationFailure.nonRetryable(
          `Smoke query answer is not well formed (want {"predictions":[{"label","score"}…]}): ${text.slice(0, 300)}`,
          FailureType.SmokeQueryFailed,
        );
      }
      const top = predictions[0]!;
      if (smoke.expectedLabel !== undefined && top.label !== smoke.expectedLabel) {
        throw ApplicationFailure.nonRetryable(
          `Smoke query expected top label "${smoke.expectedLabel}" but the model answered "${top.label}" ` +
            `(score ${top.score.toFixed(3)}). Check the model and the sample image.`,
          FailureType.SmokeQueryMismatch,
        );
      }
      return { predictions, latencyMs };
    },

    /**
     * Returns once no scoring request has reached the replicas for `idleSeconds` (their own counters, read
     * every `pollSeconds`); logs a warning `warnAheadSeconds` before. Heartbeats where it stands, so a retry
     * on another worker keeps the idle clock.
     */
    async waitUntilIdle(spec: DeploymentSpec, opts: IdleWatchOptions): Promise<IdleReport> {
      const target = targetFor(spec.target);
      if (!target.requestCount) {
        throw ApplicationFailure.nonRetryable(
          `Target "${spec.target}" cannot read request counters; deploy without --idle-ttl.`,
          FailureType.TargetUnavailable,
        );
      }
      const ctx = Context.current();
      const state: IdleHeartbeat = (ctx.info.heartbeatDetails as IdleHeartbeat | undefined) ?? {
        lastChangeAt: Date.now(),
        warned: false,
      };
      for (;;) {
        const counts = await target.requestCount(spec, ctx.cancellationSignal).catch((err: unknown) => {
          if (ctx.cancellationSignal.aborted) throw err;
          log.warn('Request counters not read', { name: spec.name, error: String(err) });
          return undefined;
        });
        if (counts && counts.replicasRead > 0 && counts.total !== state.lastTotal) {
          if (state.lastTotal !== undefined) {
            state.lastChangeAt = Date.now();
            state.warned = false;
          }
          state.lastTotal = counts.total;
        }
        const idleMs = Date.now() - state.lastChangeAt;
        if (idleMs >= opts.idleSeconds * 1000) {
          log.info('Deployment idle: tearing down', { name: spec.name, idleSeconds: opts.idleSeconds });
          return { lastRequestAt: new Date(state.lastChangeAt).toISOString(), requests: state.lastTotal ?? 0 };
        }
        if (!state.warned && idleMs >= (opts.idleSeconds - opts.warnAheadSeconds) * 1000) {
          log.warn('Deployment idle: tears down soon unless a scoring request arrives', {
            name: spec.name,
            endsAt: new Date(state.lastChangeAt + opts.idleSeconds * 1000).toISOString(),
          });
          state.warned = true;
        }
        ctx.heartbeat({ ...state, idleEndsAt: new Date(state.lastChangeAt + opts.idleSeconds * 1000).toISOString() });
        await ctx.sleep(Math.min(opts.pollSeconds * 1000, opts.idleSeconds * 1000 - idleMs + 50));
      }
    },

    /** Removes everything the deployment created; safe to repeat, retried until it succeeds. */
    async teardown(spec: DeploymentSpec): Promise<TeardownReport> {
      const target = targetFor(spec.target);
      // Not failingPermanently: teardown keeps trying whatever the error.
      const report = await targetStep((signal, progress) => target.teardown(spec, signal, progress));
      log.info('Deployment torn down', { name: spec.name, removed: report.removed.length });
      return report;
    },
  };
}

/**
 * Runs one target step with heartbeats whose details are the step's latest progress line (`{ progress }`,
 * shown by the Web UI under the pending activity, and logged).
 */
function targetStep<T>(work: (signal: AbortSignal, progress: StepProgress) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  let latest: { progress: string } | undefined;
  const progress: StepProgress = (detail) => {
    latest = { progress: detail };
    log.info(detail);
    ctx.heartbeat(latest);
  };
  return withHeartbeat(
    (signal) => work(signal, progress),
    () => latest,
  );
}

export function parsePredictions(text: string): Prediction[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const predictions = (parsed as { predictions?: unknown }).predictions;
  if (!Array.isArray(predictions) || predictions.length === 0) return undefined;
  const wellFormed = predictions.every(
    (p: unknown) =>
      typeof (p as Prediction).label === 'string' &&
      typeof (p as Prediction).score === 'number' &&
      (p as Prediction).score >= 0 &&
      (p as Prediction).score <= 1,
  );
  return wellFormed ? (predictions as Prediction[]) : undefined;
}
