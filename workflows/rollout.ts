/**
 * The `rollout` Update's handler: blue/green with a canary on one endpoint. The new version is validated
 * and built, started as a candidate replica set beside the serving one, smoke-queried replica by replica,
 * given the canary's share of the traffic for the bake while its own error rate is watched, then promoted:
 * the candidate carries all traffic while the serving set is redeployed with the new image, then the
 * candidate is removed. Any failure (or a teardown request) sends all traffic back to the serving set,
 * removes the candidate, and fails the Update saying why; the old version never stopped serving.
 */
import { ApplicationFailure, CancellationScope, isCancellation, log } from '@temporalio/workflow';

import { ROLLOUT_DEFAULTS } from '../src/shared/deploy-types';
import type { DeploymentSpec, RolloutRequest, RolloutResult, ServedVersion } from '../src/shared/deploy-types';
import { rootMessage } from '../src/shared/failure-message';
import { FailureType } from '../src/shared/failure-types';
import type { ImageResult } from '../src/shared/target-types';
import type { UpdateContext } from './deploy-updates';
import { activities } from './deploy-steps';

/** The validator's checks of a rollout request; the sentence it is refused with, or undefined. */
export function rolloutRefusal(ctx: UpdateContext, request: unknown): string | undefined {
  const r = request as Partial<RolloutRequest> | undefined;
  const { input, status, live } = ctx;
  if (!r || typeof r.modelPath !== 'string' || !r.modelPath.startsWith('/')) {
    return `rollout needs the new model's absolute path (got ${JSON.stringify(r?.modelPath)}).`;
  }
  const canary = r.canaryPercent ?? ROLLOUT_DEFAULTS.canaryPercent;
  if (!Number.isInteger(canary) || canary < 1 || canary > 100) {
    return `the canary share must be a whole percentage from 1 to 100 (got ${canary}).`;
  }
  const bake = r.bakeSeconds ?? ROLLOUT_DEFAULTS.bakeSeconds;
  if (!(bake > 0 && bake <= 86400)) return `the bake must last from 1 second to a day (got ${bake}s).`;
  const rate = r.maxErrorRate ?? ROLLOUT_DEFAULTS.maxErrorRate;
  if (!(rate >= 0 && rate < 1)) return `the error-rate threshold must be a fraction in [0, 1) (got ${rate}).`;
  if (status.stage !== 'serving') {
    return `Deployment "${input.name}" is ${status.stage}; roll out once it serves (inferctl status ${input.name}).`;
  }
  if (live.changing) return `Deployment "${input.name}" is already changing (a scale or a rollout is in flight).`;
  return undefined;
}

export async function rollout(ctx: UpdateContext, request: RolloutRequest): Promise<RolloutResult> {
  const { input, spec, status, live } = ctx;
  const canaryPercent = request.canaryPercent ?? ROLLOUT_DEFAULTS.canaryPercent;
  const bakeSeconds = request.bakeSeconds ?? ROLLOUT_DEFAULTS.bakeSeconds;
  const maxErrorRate = request.maxErrorRate ?? ROLLOUT_DEFAULTS.maxErrorRate;
  const preprocess = request.preprocess ?? input.preprocess;
  const labelsPath = request.labelsPath ?? input.labelsPath;
  const candidate: DeploymentSpec = {
    ...spec,
    modelPath: request.modelPath,
    ...(preprocess ? { preprocess } : {}),
    ...(labelsPath ? { labelsPath } : {}),
  };
  if (!preprocess) delete candidate.preprocess;
  if (!labelsPath) delete candidate.labelsPath;
  const smoke = request.smoke ?? input.smoke;
  const wait = {
    timeoutSeconds: ctx.timings.readyTimeoutSeconds,
    pollIntervalMs: ctx.timings.readinessPollSeconds * 1000,
  };
  const quick = (summary: string) => activities(ctx.quick, summary);
  const infra = (summary: string) => activities(ctx.infra, summary);
  const versions = (status.versions ??= []);
  const version: ServedVersion = { modelPath: request.modelPath, from: new Date().toISOString() };
  const previous = versions.find((v) => v.until === undefined);
  const oldImage = live.image!;
  status.rollout = { modelPath: request.modelPath, stage: 'validating', canaryPercent };
  const stage = (name: string) => {
    status.rollout!.stage = name;
    log.info('Rollout', { stage: name, modelPath: request.modelPath });
  };

  const scope = new CancellationScope();
  live.change = scope;
  live.changing = true;
  let started = false;
  let promoting = false;
  try {
    return await scope.run(async () => {
      const validated = await quick('Validate the new version').validateDeployment({ ...input, ...candidate });
      version.modelDigest = validated.modelDigest;
      status.rollout!.modelDigest = validated.modelDigest;
      stage('building');
      const image = await infra('Build the new version').buildImage(candidate);
      stage('starting the candidate');
      started = true;
      await infra(`Start the candidate's ${spec.replicas} replica(s)`).startCandidate(candidate, image);
      const ready = await activities(ctx.waiting, 'Wait for the candidate').waitForCandidate(candidate, wait);
      if (smoke) {
        stage('smoke-testing');
        await quick('Smoke query on every candidate replica').smokeCandidate(candidate, ready.replicaUrls, smoke);
      }
      stage(`baking at ${canaryPercent}%`);
      await quick(`Send ${canaryPercent}% of requests to the candidate`).routeToCandidate(candidate, canaryPercent);
      const bake = await activities(
        {
          startToCloseTimeout: `${bakeSeconds + 120}s`,
          heartbeatTimeout: `${ctx.timings.heartbeatTimeoutSeconds}s`,
          retry: { initialInterval: '1s', maximumAttempts: 5 },
        },
        `Bake for ${bakeSeconds}s under ${(maxErrorRate * 100).toFixed(1)}% errors`,
      ).bakeCandidate(candidate, { seconds: bakeSeconds, maxErrorRate, minRequests: 1 });

      stage('promoting');
      promoting = true;
      await quick('Send every request to the candidate').routeToCandidate(candidate, 100);
      await promote(ctx, candidate, image, wait);
      await quick('Send every request to the serving set').routeToCandidate(candidate, 0);
      await activities(ctx.cleanup, 'Remove the candidate').removeCandidate(candidate);
      promoting = false;

      const now = new Date().toISOString();
      if (previous) Object.assign(previous, { until: now, ended: `replaced by ${request.modelPath}` });
      version.from = now;
      versions.push(version);
      Object.assign(spec, {
        modelPath: candidate.modelPath,
        preprocess: candidate.preprocess,
        labelsPath: candidate.labelsPath,
      });
      if (!candidate.preprocess) delete spec.preprocess;
      if (!candidate.labelsPath) delete spec.labelsPath;
      Object.assign(input, { modelPath: spec.modelPath, preprocess: spec.preprocess, labelsPath: spec.labelsPath });
      if (!spec.preprocess) delete input.preprocess;
      if (!spec.labelsPath) delete input.labelsPath;
      const previousModelDigest = status.modelDigest;
      status.modelDigest = validated.modelDigest;
      status.v2ModelName = validated.v2ModelName; // the V2 name follows the model's file name
      status.imageRef = image.imageRef;
      live.image = image;
      log.info('Rollout done', { modelDigest: validated.modelDigest, requests: bake.requests, errors: bake.errors });
      return {
        ...(validated.modelDigest ? { modelDigest: validated.modelDigest } : {}),
        ...(previousModelDigest ? { previousModelDigest } : {}),
        bake,
        versions,
      };
    });
  } catch (err) {
    const reason = isCancellation(err) ? 'a teardown was requested' : rootMessage(err);
    if (started) {
      await CancellationScope.nonCancellable(async () => {
        if (promoting) await promote(ctx, spec, oldImage, wait); // the serving set back on the old image
        await activities(ctx.cleanup, 'Send every request to the serving set').routeToCandidate(candidate, 0);
        await activities(ctx.cleanup, 'Remove the candidate').removeCandidate(candidate);
      });
      versions.push({ ...version, until: new Date().toISOString(), ended: `rolled back: ${reason}` });
    }
    throw ApplicationFailure.create({
      type: FailureType.RolloutFailed,
      message:
        `Rollout of ${request.modelPath} to "${input.name}" ${started ? 'rolled back' : 'stopped'} (${reason}); ` +
        `${previous?.modelPath ?? spec.modelPath} still serves.`,
      nonRetryable: true,
      cause: err instanceof Error ? err : undefined,
    });
  } finally {
    live.changing = false;
    live.change = undefined;
    status.rollout = undefined;
  }
}

/** The serving set redeployed with `image` (while the candidate answers everything), and ready again. */
async function promote(
  ctx: UpdateContext,
  spec: DeploymentSpec,
  image: ImageResult,
  wait: { timeoutSeconds: number; pollIntervalMs: number },
): Promise<void> {
  await activities(ctx.infra, 'Restart the serving set on the new image').deploy(spec, image);
  const ready = await activities(ctx.waiting, 'Wait for the serving set').waitForDeployment(spec, wait);
  ctx.status.replicaUrls = ready.replicaUrls;
}
