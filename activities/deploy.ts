/**
 * The deploy workflow's activities: one per step, each idempotent and safe to retry, each delegating
 * to the deployment's target. Secrets (the endpoint key) are read here and never returned.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { ApplicationFailure, Context, log } from '@temporalio/activity';

import { assertInsideAllowedRoots, readFileInsideAllowedRoots } from '../src/allowed-roots';
import { describeLabelsSource, describePreprocessSource } from '../src/model/model-info';
import type { ModelSignature } from '../src/model/model-signature';
import { configOf } from '../src/preprocess/preprocess-spec';
import { TARGET_TIMINGS } from '../src/shared/deploy-timings';
import { DEPLOYMENT_NAME_PATTERN, REPLICA_LIMITS, v2ModelName } from '../src/shared/deploy-types';
import type {
  DeployInput,
  DeployProtocol,
  SmokeResult,
  SmokeSpec,
  ScriptSmokeResult,
  ScriptSmokeSpec,
  V2SmokeResult,
  V2SmokeSpec,
} from '../src/shared/deploy-types';
import type { PreprocessConfig, PreprocessSource } from '../src/shared/preprocess-types';
import { endpointRequest } from '../src/targets/endpoint-request';
import type { Target } from '../src/targets/target';
import type {
  DeployResult,
  DeploymentSpec,
  ImageResult,
  ProvisionResult,
  ReadinessReport,
  TargetKind,
  TeardownReport,
} from '../src/shared/target-types';
import { isCertificateRejection, parsePredictions } from './endpoint-answers';
import { failingPermanently } from './failures';
import { watchUntilIdle } from './idle-watch';
import type { IdleReport, IdleWatchOptions } from './idle-watch';
import { scaleToZeroProblems, watchForDemand, watchUntilQuiet } from './wake-watch';
import type { DemandReport, GatewayTarget, QuietReport } from './wake-watch';
import { targetStep } from './heartbeat';
import { autoscaleProblems } from './autoscale-watch';
import { readServedModel, v2FlagProblems, v2SmokeProblems, v2SmokeQuery } from './v2-deployment';
import { FailureType } from '../src/shared/failure-types';
import { withScriptModelCopy } from '../src/script/script-model';
import {
  modelPathProblems,
  scriptInputProblems,
  scriptSmokeQuery,
  validateScriptDeployment,
} from './script-deployment';

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
  /** The model's input and where its spec and labels came from: "float32 NHWC 224x224; preprocessing from …, labels from …". */
  input?: string;
  /** False when the model's batch dimension is fixed at 1: served without dynamic batching. */
  batching?: boolean;
  /** How the replicas serve it: an image classifier, or any model on the Open Inference Protocol only. */
  protocol?: DeployProtocol;
  /** The model's name in /v2/models/{name}. */
  v2ModelName?: string;
}

export interface WaitOptions {
  timeoutSeconds: number;
  /** From the deploy workflow's timing table; the target's default when a workflow started before it passed one. */
  pollIntervalMs?: number;
}

export function createDeployActivities({ targets }: DeployActivityDeps) {
  function gatewayTarget(spec: DeploymentSpec): GatewayTarget {
    const target = targetFor(spec.target);
    if (!target.gatewayCounts) {
      throw ApplicationFailure.nonRetryable(
        `Target "${spec.target}" cannot scale to zero yet; deploy without --min-replicas 0.`,
        FailureType.TargetUnavailable,
      );
    }
    return target as GatewayTarget;
  }

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
      problems.push(...scaleToZeroProblems(input, targets[input.target]));
      problems.push(...autoscaleProblems(input, targets[input.target]));
      problems.push(...modelPathProblems(input));
      if (input.labelsPath !== undefined && !path.isAbsolute(input.labelsPath)) {
        problems.push(`labels path must be absolute (got ${input.labelsPath})`);
      }
      problems.push(...(input.script ? scriptInputProblems(input) : v2FlagProblems(input)));
      if (problems.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `Invalid deployment: ${problems.join('; ')}.`,
          FailureType.InvalidDeployment,
        );
      }
      targetFor(input.target);
      if (input.script) return validateScriptDeployment(input);
      await failingPermanently(() => {
        assertInsideAllowedRoots('model', input.modelPath);
        if (input.smoke) assertInsideAllowedRoots('smoke sample', input.smoke.samplePath);
        if (input.labelsPath) assertInsideAllowedRoots('labels file', input.labelsPath);
        if (input.smokeRequest) assertInsideAllowedRoots('smoke request', input.smokeRequest.requestPath);
        if (input.smokeRequest?.expectPath) assertInsideAllowedRoots('expected outputs', input.smokeRequest.expectPath);
        return Promise.resolve();
      });

      const model = await failingPermanently(() => readServedModel(input));
      if (input.smokeRequest) {
        const smokeProblems = await v2SmokeProblems(input.smokeRequest, model.signature);
        if (smokeProblems.length > 0) {
          throw ApplicationFailure.nonRetryable(
            `Invalid V2 smoke query: ${smokeProblems.join('; ')}.`,
            FailureType.InvalidDeployment,
          );
        }
      }
      const { info, signature } = model;
      if (!info) return validatedV2(input, signature);
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
        input:
          `${info.inputType} ${info.layout} ${info.width}x${info.height}; preprocessing from ` +
          `${describePreprocessSource(input.modelPath, info.preprocessSource)}, labels from ` +
          describeLabelsSource(input.modelPath, info.labelsSource),
        batching: info.dynamicBatch,
        protocol: 'classifier',
        v2ModelName: v2ModelName(input.modelPath),
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
      return targetStep((signal, progress) =>
        failingPermanently(async () => {
          // A script's az:// model is copied to this worker first; the target lays the copy out.
          const script = spec.script && (await withScriptModelCopy(spec.modelPath, spec.script, { signal, progress }));
          return target.buildImage(script ? { ...spec, script } : spec, signal, progress);
        }),
      );
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
      const access = await failingPermanently(() => target.endpointAccess(spec));
      const body = await readFileInsideAllowedRoots('smoke sample', smoke.samplePath);
      const url = `${access.endpoint}/score`;
      const signal = Context.current().cancellationSignal;
      // HTTPS endpoints are held to the deployment's pinned certificate (endpoint-request.ts).
      const post = (headers: Record<string, string>) =>
        endpointRequest(access, '/score', { method: 'POST', body, headers, signal }).catch((err: unknown) => {
          if (!isCertificateRejection(err)) throw err;
          throw ApplicationFailure.nonRetryable(
            `The endpoint ${access.endpoint} presented a certificate that does not verify against the ` +
              `deployment's own (${(err as Error).message}); something other than this deployment answers there.`,
            FailureType.SmokeQueryFailed,
          );
        });

      const anonymous = await post({ 'content-type': 'image/jpeg' });
      if (anonymous.status !== 401) {
        throw ApplicationFailure.nonRetryable(
          `The endpoint answered ${anonymous.status} to a request without a key; it must refuse with 401.`,
          FailureType.EndpointUnprotected,
        );
      }

      const started = Date.now();
      const res = await post({ authorization: `Bearer ${access.apiKey}`, 'content-type': 'image/jpeg' });
      const latencyMs = Date.now() - started;
      const { text } = res;
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
     * The Open Inference Protocol's smoke query: the request file POSTed to /v2/models/{name}/infer without
     * the key (401) and with it (200), the answer compared with the expected outputs within the tolerance.
     */
    async smokeQueryV2(spec: DeploymentSpec, smoke: V2SmokeSpec): Promise<V2SmokeResult> {
      const target = targetFor(spec.target);
      const access = await failingPermanently(() => target.endpointAccess(spec));
      return v2SmokeQuery(access, v2ModelName(spec.modelPath), smoke, Context.current().cancellationSignal);
    },

    /** A scoring script's smoke query: the sample to /score without the key (401), then with it. */
    async smokeQueryScript(spec: DeploymentSpec, smoke: ScriptSmokeSpec): Promise<ScriptSmokeResult> {
      const access = await failingPermanently(() => targetFor(spec.target).endpointAccess(spec));
      return scriptSmokeQuery(access, smoke, Context.current().cancellationSignal);
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
      return watchUntilIdle(target as Target & Required<Pick<Target, 'requestCount'>>, spec, opts);
    },

    /** Scale to zero: returns once the endpoint has had no scoring request for `quietSeconds`. */
    async waitUntilQuiet(
      spec: DeploymentSpec,
      opts: { quietSeconds: number; pollSeconds: number },
    ): Promise<QuietReport> {
      return watchUntilQuiet(gatewayTarget(spec), spec, opts);
    },

    /** Scale to zero: returns once the endpoint holds a request while no replica runs. */
    async waitForDemand(spec: DeploymentSpec, opts: { pollSeconds: number }): Promise<DemandReport> {
      return watchForDemand(gatewayTarget(spec), spec, opts);
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

function validatedV2(input: DeployInput, signature: ModelSignature): ValidatedDeployment {
  if (input.target !== 'local') {
    throw ApplicationFailure.nonRetryable(
      `A model served on the Open Inference Protocol only runs on the local target for now (not "${input.target}"). ` +
        'Deploy it with --target local.',
      FailureType.InvalidDeployment,
    );
  }
  const dynamic = [...signature.inputs, ...signature.outputs].every((t) => t.shape[0] === -1);
  return {
    modelName: path.basename(input.modelPath),
    modelDigest: signature.digest,
    labels: 0,
    input: signature.inputs.map((i) => `${i.name} ${i.datatype ?? '?'} [${i.shape.join(', ')}]`).join(', '),
    batching: dynamic,
    protocol: 'v2',
    v2ModelName: v2ModelName(input.modelPath),
  };
}
