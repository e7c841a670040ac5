/**
 * The `rollout` Update's handler: blue/green with a canary on one endpoint. The new version is validated
 * and built, started as a candidate replica set beside the serving one, smoke-queried replica by replica,
 * given the canary's share of the traffic for the bake while its own error rate is watched, then promoted:
 * the candidate carries all traffic while the serving set is redeployed with the new image, then the
 * candidate is removed. Any failure (or a teardown request) sends all traffic back to the serving set,
 * removes the candidate, and fails the Update saying why; the old version never stopped serving.
 *
 * With `mirror`, the bake is a comparison instead of a canary (mirror-bake.ts): the candidate answers no
 * client. The new version may be of another kind than the serving one (a scoring script, an ONNX model).
 */
import { ApplicationFailure, CancellationScope, isCancellation, log, patched } from '@temporalio/workflow';

import { ROLLOUT_DEFAULTS } from '../../src/shared/deploy-types';
import type {
  DeployInput,
  DeploymentSpec,
  RolloutRequest,
  RolloutResult,
  ServedVersion,
} from '../../src/shared/deploy-types';
import { rootMessage } from '../../src/shared/failure-message';
import type { MirrorReport, MirrorRequest } from '../../src/shared/mirror-types';
import { FailureType } from '../../src/shared/failure-types';
import type { ImageResult } from '../../src/shared/target-types';
import { mirrorBake } from './mirror-bake';
import { activities } from './steps';
import type { DeployState } from './state';

/** The validator's checks of a rollout request; the sentence it is refused with, or undefined. */
export function rolloutRefusal(d: DeployState, request: unknown): string | undefined {
  const r = request as Partial<RolloutRequest> | undefined;
  const { input, status } = d;
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
  const mirror = r.mirror ? mirrorProblem(r.mirror) : undefined;
  if (mirror) return mirror;
  if (input.target === 'aks' && input.scaleToZero) {
    // Its candidate would be built as a deployment without the front: its own TLS and Service, its GPU
    // node taken for granted while the pool may be at 0. Refused until a rollout is built behind the front.
    return (
      `a rollout of an aks deployment that scales to zero (--min-replicas 0) is not supported yet; deploy the new ` +
      `model under another name and move clients to it, or tear "${input.name}" down and deploy it again.`
    );
  }
  if (r.script !== undefined && !(typeof r.script?.entryScript === 'string' && r.script.entryScript.startsWith('/'))) {
    return `a scoring script rollout needs the entry script's absolute path (got ${JSON.stringify(r.script?.entryScript)}).`;
  }
  const scriptCandidate = r.script ?? (r.onnxServer ? undefined : d.spec.script);
  if (r.scriptSmoke && !r.smoke && !scriptCandidate) {
    return '--expect-status, --expect-json and --expect-contains check a scoring script’s answer; the new version is inferctl’s ONNX server (check it with --expect-label).';
  }
  if (status.stage !== 'serving') {
    return `Deployment "${input.name}" is ${status.stage}; roll out once it serves (inferctl status ${input.name}).`;
  }
  if (d.changing) return `Deployment "${input.name}" is already changing (a scale or a rollout is in flight).`;
  return undefined;
}

function mirrorProblem(m: Partial<MirrorRequest>): string | undefined {
  if (!Number.isInteger(m.percent) || m.percent! < 1 || m.percent! > 100) {
    return `the mirrored share must be a whole percentage from 1 to 100 (got ${m.percent}).`;
  }
  const c = m.compare;
  if (!(c?.mode === 'top1' || (c?.mode === 'tolerance' && c.tolerance >= 0 && Number.isFinite(c.tolerance)))) {
    return `the comparison must be top1 or tolerance:X with X ≥ 0 (got ${JSON.stringify(c)}).`;
  }
  if (!(m.minAgreement! > 0 && m.minAgreement! <= 1)) {
    return `the agreement required must be a fraction in (0, 1] (got ${m.minAgreement}).`;
  }
  if (!Number.isInteger(m.minPairs) || m.minPairs! < 1) {
    return `the pairs required must be a whole number from 1 (got ${m.minPairs}).`;
  }
  return undefined;
}

/** One rollout: the request with its defaults, the candidate it starts, and how far it has got. */
interface Plan {
  request: RolloutRequest;
  candidate: DeploymentSpec;
  canaryPercent: number;
  bakeSeconds: number;
  maxErrorRate: number;
  smoke: DeployInput['smoke'];
  /** A script candidate's smoke query (RolloutRequest.scriptSmoke). */
  scriptSmoke: DeployInput['scriptSmoke'];
  versions: ServedVersion[];
  version: ServedVersion;
  /** The version that serves now. */
  previous: ServedVersion | undefined;
  oldImage: ImageResult;
  /** The candidate may exist: a failure removes it. */
  started: boolean;
  /** The serving set may be on the new image: a failure puts it back on the old one. */
  promoting: boolean;
}

export async function rollout(d: DeployState, request: RolloutRequest): Promise<RolloutResult> {
  const plan = planOf(d, request);
  const scope = new CancellationScope();
  d.change = scope;
  d.changing = true;
  try {
    return await scope.run(() => rollOut(d, plan));
  } catch (err) {
    throw await rollBack(d, plan, err);
  } finally {
    d.changing = false;
    d.change = undefined;
    d.status.rollout = undefined;
  }
}

function planOf(d: DeployState, request: RolloutRequest): Plan {
  const { input, spec, status } = d;
  const canaryPercent = request.canaryPercent ?? ROLLOUT_DEFAULTS.canaryPercent;
  // The new version's kind: a script when one is given, inferctl's ONNX server when asked, else the serving
  // kind (a script deployment keeps its script and environment, with the new model).
  const script = request.script ?? (request.onnxServer ? undefined : spec.script);
  // A scoring script does its own preprocessing: a script candidate takes none, an ONNX one after a script
  // takes only what the request gives.
  const preprocess = script ? undefined : (request.preprocess ?? input.preprocess);
  const labelsPath = script ? undefined : (request.labelsPath ?? input.labelsPath);
  const candidate: DeploymentSpec = {
    ...spec,
    modelPath: request.modelPath,
    ...(preprocess ? { preprocess } : {}),
    ...(labelsPath ? { labelsPath } : {}),
    ...(script ? { script } : {}),
  };
  if (!preprocess) delete candidate.preprocess;
  if (!labelsPath) delete candidate.labelsPath;
  if (!script) delete candidate.script;
  const sameKind = Boolean(script) === Boolean(spec.script);
  const versions = (status.versions ??= []);
  const plan: Plan = {
    request,
    candidate,
    canaryPercent,
    bakeSeconds: request.bakeSeconds ?? ROLLOUT_DEFAULTS.bakeSeconds,
    maxErrorRate: request.maxErrorRate ?? ROLLOUT_DEFAULTS.maxErrorRate,
    ...candidateSmoke(d, request, Boolean(script), sameKind),
    versions,
    version: { modelPath: request.modelPath, from: new Date().toISOString() },
    previous: versions.find((v) => v.until === undefined),
    oldImage: d.image!,
    started: false,
    promoting: false,
  };
  status.rollout = {
    modelPath: request.modelPath,
    stage: 'validating',
    canaryPercent: request.mirror ? 0 : canaryPercent,
  };
  return plan;
}

/**
 * The candidate's smoke query: a script's with its expectation (the request's, else the deployment's own when
 * it is a script too), an ONNX server's by its top label. Runs recorded before script candidates had their
 * own query keep the classifier's.
 */
function candidateSmoke(
  d: DeployState,
  request: RolloutRequest,
  script: boolean,
  sameKind: boolean,
): Pick<Plan, 'smoke' | 'scriptSmoke'> {
  const smoke = request.smoke ?? (sameKind ? d.input.smoke : undefined);
  if (!script || !patched('rollout-script-smoke')) return { smoke, scriptSmoke: undefined };
  return { smoke: undefined, scriptSmoke: request.scriptSmoke ?? (sameKind ? d.input.scriptSmoke : undefined) };
}

/** Validate, build, start the candidate, smoke-query it, bake it under the canary's share, promote it. */
async function rollOut(d: DeployState, plan: Plan): Promise<RolloutResult> {
  const { input, spec, status } = d;
  const { candidate, canaryPercent, bakeSeconds, maxErrorRate, smoke, scriptSmoke } = plan;
  const wait = d.readiness();
  const quick = (summary: string) => d.activities('quick', summary);
  const infra = (summary: string) => d.activities('infra', summary);
  const stage = (name: string) => {
    status.rollout!.stage = name;
    log.info('Rollout', { stage: name, modelPath: plan.request.modelPath });
    d.recorder.publish(); // the cost ledger bills the candidate from its start (budget.ts)
  };

  const validated = await quick('Validate the new version').validateDeployment(
    candidateInput(input, candidate, scriptSmoke),
  );
  if (Boolean(candidate.script) !== Boolean(spec.script)) {
    // Another kind of version: its own protocol (a script has none of the ONNX server's).
    if (validated.protocol === 'v2') candidate.protocol = 'v2';
    else delete candidate.protocol;
  }
  plan.version.modelDigest = validated.modelDigest;
  status.rollout!.modelDigest = validated.modelDigest;
  stage('building');
  const image = await infra('Build the new version').buildImage(candidate);
  stage('starting the candidate');
  plan.started = true;
  await infra(`Start the candidate's ${spec.replicas} replica(s)`).startCandidate(candidate, image);
  const ready = await d.activities('waiting', 'Wait for the candidate').waitForCandidate(candidate, wait);
  if (smoke) {
    stage('smoke-testing');
    await quick('Smoke query on every candidate replica').smokeCandidate(candidate, ready.replicaUrls, smoke);
  }
  if (scriptSmoke) {
    stage('smoke-testing');
    await quick('Smoke query on every candidate replica').smokeScriptCandidate(
      candidate,
      ready.replicaUrls,
      scriptSmoke,
    );
  }
  let bake: { requests: number; errors: number };
  let mirror: MirrorReport | undefined;
  if (plan.request.mirror) {
    stage(`mirroring ${plan.request.mirror.percent}%`);
    mirror = await mirrorBake(d, candidate, plan.request.mirror, bakeSeconds);
    bake = { requests: mirror.pairs, errors: mirror.failed };
  } else {
    stage(`baking at ${canaryPercent}%`);
    await quick(`Send ${canaryPercent}% of requests to the candidate`).routeToCandidate(candidate, canaryPercent);
    bake = await activities(
      {
        startToCloseTimeout: `${bakeSeconds + 120}s`,
        heartbeatTimeout: `${d.timings.heartbeatTimeoutSeconds}s`,
        retry: { initialInterval: '1s', maximumAttempts: 5 },
      },
      `Bake for ${bakeSeconds}s under ${(maxErrorRate * 100).toFixed(1)}% errors`,
    ).bakeCandidate(candidate, { seconds: bakeSeconds, maxErrorRate, minRequests: 1 });
  }

  stage('promoting');
  plan.promoting = true;
  await quick('Send every request to the candidate').routeToCandidate(candidate, 100);
  await promote(d, candidate, image, wait);
  await quick('Send every request to the serving set').routeToCandidate(candidate, 0);
  await d.activities('cleanup', 'Remove the candidate').removeCandidate(candidate);
  plan.promoting = false;

  const previousModelDigest = adopt(d, plan, validated, image);
  log.info('Rollout done', { modelDigest: validated.modelDigest, requests: bake.requests, errors: bake.errors });
  return {
    ...(validated.modelDigest ? { modelDigest: validated.modelDigest } : {}),
    ...(previousModelDigest ? { previousModelDigest } : {}),
    bake,
    ...(mirror ? { mirror } : {}),
    versions: plan.versions,
  };
}

/** What validate checks for the new version: the deployment's input as the candidate's kind has it. */
function candidateInput(
  input: DeployInput,
  candidate: DeploymentSpec,
  scriptSmoke: DeployInput['scriptSmoke'],
): DeployInput {
  const checked: DeployInput = { ...input, ...candidate };
  if (candidate.script) {
    for (const key of ['smoke', 'smokeRequest', 'preprocess', 'labelsPath', 'scriptSmoke'] as const)
      delete checked[key];
    if (scriptSmoke) checked.scriptSmoke = scriptSmoke; // its sample and expectation checked with the rest
    if (checked.protocol !== 'script') delete checked.protocol;
  } else {
    delete checked.script;
    delete checked.scriptSmoke;
    if (checked.protocol === 'script') delete checked.protocol;
    if (input.script) delete checked.smoke;
  }
  return checked;
}

/** The new version is what serves now: in the versions, the spec, the input and the status. */
function adopt(
  d: DeployState,
  plan: Plan,
  validated: { modelDigest?: string; v2ModelName?: string; protocol?: DeployInput['protocol'] },
  image: ImageResult,
): string | undefined {
  const { input, spec, status } = d;
  const { candidate, previous, version } = plan;
  const now = new Date().toISOString();
  if (previous) Object.assign(previous, { until: now, ended: `replaced by ${plan.request.modelPath}` });
  version.from = now;
  plan.versions.push(version);
  const kindChanged = Boolean(candidate.script) !== Boolean(spec.script);
  for (const key of ['modelPath', 'preprocess', 'labelsPath', 'script', 'protocol'] as const) {
    if (candidate[key] === undefined) delete spec[key];
    else Object.assign(spec, { [key]: candidate[key] });
  }
  for (const key of ['modelPath', 'preprocess', 'labelsPath', 'script'] as const) {
    if (spec[key] === undefined) delete input[key];
    else Object.assign(input, { [key]: spec[key] });
  }
  if (kindChanged) {
    // The old kind's smoke query and protocol go with it.
    for (const key of ['smoke', 'smokeRequest', 'scriptSmoke', 'protocol'] as const) delete input[key];
    status.protocol = validated.protocol ?? 'classifier';
  }
  const previousModelDigest = status.modelDigest;
  status.modelDigest = validated.modelDigest;
  status.v2ModelName = validated.v2ModelName; // the V2 name follows the model's file name
  status.imageRef = image.imageRef;
  d.image = image;
  return previousModelDigest;
}

/** After a failure or a teardown request: the old version back in full, the candidate gone; the failure. */
async function rollBack(d: DeployState, plan: Plan, err: unknown): Promise<ApplicationFailure> {
  const { candidate, version, request } = plan;
  const reason = isCancellation(err) ? 'a teardown was requested' : rootMessage(err);
  if (plan.started) {
    await CancellationScope.nonCancellable(async () => {
      if (plan.promoting) await promote(d, d.spec, plan.oldImage, d.readiness()); // the serving set back on the old image
      await d.activities('cleanup', 'Send every request to the serving set').routeToCandidate(candidate, 0);
      await d.activities('cleanup', 'Remove the candidate').removeCandidate(candidate);
    });
    plan.versions.push({ ...version, until: new Date().toISOString(), ended: `rolled back: ${reason}` });
  }
  return ApplicationFailure.create({
    type: FailureType.RolloutFailed,
    message:
      `Rollout of ${request.modelPath} to "${d.input.name}" ${plan.started ? 'rolled back' : 'stopped'} (${reason}); ` +
      `${plan.previous?.modelPath ?? d.spec.modelPath} still serves.`,
    nonRetryable: true,
    cause: err instanceof Error ? err : undefined,
  });
}

/** The serving set redeployed with `image` (while the candidate answers everything), and ready again. */
async function promote(
  d: DeployState,
  spec: DeploymentSpec,
  image: ImageResult,
  wait: { timeoutSeconds: number; pollIntervalMs: number },
): Promise<void> {
  await d.activities('infra', 'Restart the serving set on the new image').deploy(spec, image);
  const ready = await d.activities('waiting', 'Wait for the serving set').waitForDeployment(spec, wait);
  d.status.replicaUrls = ready.replicaUrls;
}
