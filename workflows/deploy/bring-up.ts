/**
 * The deploy workflow's steps up to serving, each recorded in the status: validate the model, provision the
 * cluster and build the image, start the replicas and wait until they are ready, smoke-query the endpoint.
 */
import { workflowInfo } from '@temporalio/workflow';

import type { DeployInput, DeploymentSpec } from '../../src/shared/deploy-types';
import type { DeployState } from './state';

/** The target's view of a new deployment, owned by this workflow id. */
export function deploymentSpec(input: DeployInput): DeploymentSpec {
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
    ...(input.scaleToZero ? { hold: { wakeTimeoutSeconds: input.scaleToZero.wakeTimeoutSeconds } } : {}),
    ...(input.autoscale && input.target === 'aks' ? { gpuPoolFollows: true as const } : {}),
  };
}

/** The model is read and checked: its protocol (image classifier or V2 only) and digest. */
export async function validate(d: DeployState): Promise<void> {
  const { input, status } = d;
  const validated = await d.step(
    'validate',
    'validating',
    () => d.activities('quick', `Validate ${input.name}`).validateDeployment(input),
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
  if (validated.protocol === 'v2') d.spec.protocol = 'v2';
}

/** The cluster (or local directory) with its key, then the scoring image. */
export async function provision(d: DeployState): Promise<void> {
  const { input, spec, status } = d;
  const provisioned = await d.step('provision', 'provisioning', () =>
    d.activities('infra', `Provision ${input.target} cluster`).provision(spec),
  );
  status.apiKeyRef = provisioned.secretRef;
  if (provisioned.tls) status.tls = provisioned.tls;
  const image = await d.step(
    'buildImage',
    'building',
    () => d.activities('infra', 'Build the scoring image').buildImage(spec),
    (r) => `${r.digest.slice(0, 19)}${r.reused ? ' (reused)' : ''}`,
  );
  status.imageRef = image.imageRef;
  d.image = image;
}

/** The replicas started on the image, and every one of them ready. */
export async function startReplicas(d: DeployState): Promise<void> {
  const { input, spec, status } = d;
  const deployed = await d.step('deploy', 'deploying', () =>
    d.activities('infra', `Start ${input.replicas} replica(s)`).deploy(spec, d.image!),
  );
  if (deployed.gpuNodes !== undefined) status.gpuNodes = deployed.gpuNodes;
  const ready = await d.step('waitForDeployment', 'waiting', () =>
    d.activities('waiting', 'Wait until every replica is ready').waitForDeployment(spec, d.readiness()),
  );
  status.endpoint = ready.endpoint;
  status.replicaUrls = ready.replicaUrls;
}

/** One request through the endpoint with the sample the user gave, if any. */
export async function smokeQuery(d: DeployState): Promise<void> {
  const { input, spec, status } = d;
  if (input.smoke) {
    const smoke = input.smoke;
    status.smoke = await d.step(
      'smokeQuery',
      'smoke-testing',
      () => d.activities('quick', 'Smoke query with the sample image').smokeQuery(spec, smoke),
      (r) => `${r.predictions[0]?.label} ${r.predictions[0]?.score.toFixed(3)}`,
    );
  } else if (input.scriptSmoke) {
    const smoke = input.scriptSmoke;
    status.scriptSmoke = await d.step(
      'smokeQuery',
      'smoke-testing',
      () => d.activities('quick', 'Smoke query with the sample').smokeQueryScript(spec, smoke),
      (r) => `${r.status}${r.checked ? `, ${r.checked}` : ''}`,
    );
  } else if (input.smokeRequest) {
    const smoke = input.smokeRequest;
    status.v2Smoke = await d.step(
      'smokeQuery',
      'smoke-testing',
      () => d.activities('quick', 'Smoke query with the V2 request').smokeQueryV2(spec, smoke),
      (r) => r.outputs.map((o) => `${o.name} ${o.datatype} [${o.shape.join(', ')}]`).join(', '),
    );
  }
}
