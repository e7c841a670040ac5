/**
 * What the aks tests share besides the testbed (azure/aks-suite.ts): the testbed with Azurite; the endpoint
 * reached from the test process as a client would reach it, and a client load through it; the namespace's
 * Deployments and Services, and the wait for it to be gone after a teardown; a job's input and output folders,
 * readable and writable by the pods' user (1000), which reach them only because the kubelet stand-in has no
 * mount namespace; and the check that nothing of a job's GPU pool is left.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';

import { before } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';

import { deployWorkflowId } from '../../src/shared/deploy-types';
import type { DeploymentSpec } from '../../src/shared/target-types';
import { aksSettingsFromEnv } from '../../src/targets/aks/aks-config';
import { AksTarget } from '../../src/targets/aks/aks-target';
import { kubeConfigFromYaml } from '../../src/targets/aks/kubernetes-deployment';
import { endpointRequest } from '../../src/targets/endpoint-request';
import type { EndpointAccess } from '../../src/targets/target';
import { writeSampleImages } from '../../src/demo/sample-images';
import { TEST_REGISTRY, TEST_RESOURCE_GROUP } from './azure/aks-testbed';
import { aksSuite } from './azure/aks-suite';
import type { AksSuite } from './azure/aks-suite';
import { useAzurite } from './azurite';
import type { Azurite } from './azurite';
import { fixture } from './script-fixtures';

/**
 * aksSuite() with Azurite beside it, whose environment (its connection string) the control worker gets.
 * Call it inside `describe`: Azurite's port is known once it runs, before the suite's worker starts.
 */
export function aksSuiteWithAzurite(taskQueuePrefix: string): { suite: AksSuite; azurite: Azurite } {
  const azurite = useAzurite();
  const storageEnv: NodeJS.ProcessEnv = {};
  before(() => void Object.assign(storageEnv, azurite.env));
  return { suite: aksSuite(taskQueuePrefix, storageEnv), azurite };
}

/**
 * A script job's own `score` flags, as the aks script tests pass them: `--entry-script`, `--environment`
 * (the v2 fixture's requirements unless given), `--model`, `--input` and `--output`.
 */
export function scriptJobArgs(
  entryScript: string,
  job: { model: string; input: string; output: string },
  environment = fixture('v2', 'requirements.txt'),
): string[] {
  return [
    '--entry-script',
    entryScript,
    '--environment',
    environment,
    '--model',
    job.model,
    '--input',
    job.input,
    '--output',
    job.output,
  ];
}

/** `<dir>/<name>/in` holding `files`, and `<dir>/<name>/out`, open to the pods' user. */
export async function podJobFolders(dir: string, name: string, files: Record<string, string>) {
  const input = path.join(dir, name, 'in');
  const output = path.join(dir, name, 'out');
  await fs.mkdir(input, { recursive: true });
  await fs.mkdir(output, { recursive: true });
  await fs.chmod(path.join(dir, name), 0o755);
  await fs.chmod(output, 0o777);
  for (const [file, text] of Object.entries(files)) await fs.writeFile(path.join(input, file), text);
  return { input, output };
}

/** `<dir>/<name>/in` holding `images` sample images and an empty `<dir>/<name>/out`, open to the pods' user. */
export async function podImageFolders(dir: string, name: string, images: number) {
  const folders = await podJobFolders(dir, name, {});
  return { ...folders, samples: await writeSampleImages(folders.input, images) };
}

/** A user's cluster `name` in the test group: a system pool only, attached to the registry (az aks update --attach-acr). */
export async function seedUserCluster(suite: AksSuite, name: string, tags: Record<string, string> = {}) {
  await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, name, tags, 0, [`${TEST_RESOURCE_GROUP}/${TEST_REGISTRY}`]);
}

/** Nothing of job `name`'s pool is left in ARM or in the cluster; `cluster` itself is, with its own pool. */
export async function assertGpuPoolGone(suite: AksSuite, cluster: string, name: string, said: string) {
  assert.match(said, new RegExp(`namespace inferctl-${name}-[0-9a-f]{8}, agent pool g[0-9a-f]{11}`), 'both removed');
  assert.ok(suite.bed.arm.clusterNames().includes(cluster), 'the user’s cluster is left standing');
  assert.deepEqual(suite.bed.arm.clusterPools(cluster), ['system'], 'only the cluster’s own pool is left');
  const nodes = await suite.bed.nodeNames();
  assert.deepEqual(
    nodes.filter((n) => /^aks-g[0-9a-f]{11}-/.test(n)),
    [],
    'the pool’s nodes are gone',
  );
  assert.deepEqual(
    (await suite.bed.namespaces()).filter((n) => n.startsWith(`inferctl-${name}`)),
    [],
    'the job’s namespace is gone',
  );
}

/** The aks target as this test process uses it, a client of the endpoints (the worker's Azure settings set here). */
export function aksClientTarget(suite: AksSuite): AksTarget {
  Object.assign(process.env, suite.bed.workerEnv());
  return new AksTarget(aksSettingsFromEnv());
}

/** Deployment `name` as a client names it (its owner, one replica, the top 5): what reaching it needs. */
export function clientSpec(name: string, extra: Partial<DeploymentSpec> = {}): DeploymentSpec {
  return { name, target: 'aks', ownerId: deployWorkflowId(name), modelPath: '', replicas: 1, topK: 5, ...extra };
}

/** How a client reaches deployment `name`: its endpoint, key and pinned certificate. */
export function aksEndpointAccess(suite: AksSuite, name: string, extra: Partial<DeploymentSpec> = {}) {
  return aksClientTarget(suite).endpointAccess(clientSpec(name, extra));
}

export interface LoadSample {
  /** The label the serving version answers for it. */
  label: string;
  body: Buffer;
}

export interface LoadResult {
  requests: number;
  /** Answers that were not 200 with the sample's own label, and requests that failed. */
  wrong: string[];
}

/** The top label of an answer shaped as the ONNX server's (and the how-to script's): `predictions[0].label`. */
export const topLabel = (text: string) =>
  (JSON.parse(text) as { predictions?: Array<{ label: string }> }).predictions?.[0]?.label;

/**
 * POSTs the samples round and round to the endpoint's /score with the key, `workers` at a time (each request
 * with its id `load-<worker>-<n>`), until `stop` is aborted; `label` reads an answer's label.
 */
export async function endpointLoad(
  access: EndpointAccess,
  samples: LoadSample[],
  stop: AbortSignal,
  opts: { workers?: number; contentType?: string; label?: (text: string) => string | undefined } = {},
): Promise<LoadResult> {
  const result: LoadResult = { requests: 0, wrong: [] };
  const label = opts.label ?? topLabel;
  const worker = async (w: number) => {
    for (let i = 0; !stop.aborted; i++) {
      const sample = samples[i % samples.length]!;
      result.requests++;
      try {
        const res = await endpointRequest(access, '/score', {
          method: 'POST',
          body: sample.body,
          headers: {
            authorization: `Bearer ${access.apiKey}`,
            'content-type': opts.contentType ?? 'image/jpeg',
            'x-request-id': `load-${w}-${i}`,
          },
        });
        if (res.status !== 200 || label(res.text) !== sample.label) {
          result.wrong.push(`${res.status} ${res.text.slice(0, 200)}`);
        }
      } catch (err) {
        result.wrong.push(`${new Date().toISOString()} ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.workers ?? 2 }, (_, w) => worker(w)));
  return result;
}

/** The names of the namespace's Deployments and Services, sorted. */
export async function namespaceObjects(suite: AksSuite, namespace: string) {
  const kc = kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig);
  const deployments = await kc.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace });
  const services = await kc.makeApiClient(CoreV1Api).listNamespacedService({ namespace });
  return {
    deployments: deployments.items.map((d) => d.metadata!.name!).sort(),
    services: services.items.map((s) => s.metadata!.name!).sort(),
  };
}

/** After a teardown: the namespace is gone (within 20 s), and the cluster inferctl made for it with it. */
export async function assertNamespaceGone(suite: AksSuite, namespace: string) {
  for (let i = 0; i < 100 && (await suite.bed.namespaces()).includes(namespace); i++) await delay(200);
  assert.ok(!(await suite.bed.namespaces()).includes(namespace), `namespace ${namespace} is gone`);
  assert.ok(!suite.bed.arm.clusterNames().includes(namespace), 'the cluster it made is deleted');
}
