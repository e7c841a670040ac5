/**
 * Scale to zero on aks, the parts that touch the cluster: the GPU node pool's node count, set with
 * agentPools.createOrUpdate (the pool is kept at 0 nodes, never deleted: AKS lets a User pool scale to 0),
 * the wait for the scoring pods to be gone before their nodes go, and the front's counters (front.ts), read
 * through the API server's pod proxy as the replicas' are (pod-metrics.ts): no credential enters the cluster.
 * Only a cluster this deployment created has its pool scaled; on an adopted cluster the replicas go to zero
 * and the user's nodes stay as they are.
 */
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { AgentPool } from '@azure/arm-containerservice';

import { parseGatewayCounts } from '../local/gateway-counts';
import type { GatewayCounts, StepProgress } from '../target';
import type { AksPlan, AksSettings } from './aks-config';
import type { AzureClients } from './azure-clients';
import { azureFailure } from './azure-errors';
import { FRONT_LABEL, FRONT_PORT, frontName } from './front-manifests';
import { isKubeNotFound } from './kubernetes-deployment';
import { GPU_TAINT } from './managed-cluster';
import { tagsOwnedBy } from './ownership';
import type { Owner } from './ownership';
import { gpusPerVm } from './preflight';

export interface PoolScaleScope {
  clients: AzureClients;
  settings: AksSettings;
  plan: AksPlan;
  owner: Owner;
  signal?: AbortSignal;
  progress?: StepProgress;
}

/**
 * Gives the GPU pool the nodes `replicas` need (one GPU each), 0 for none; returns the node count it has
 * now, or undefined when the pool is not this deployment's to scale (an adopted cluster). `growOnly`: a pool
 * with more nodes keeps them (autoscaling shrinks it itself, once the pods are gone: gpu-pool-fit.ts).
 */
export async function scaleGpuPool(
  scope: PoolScaleScope,
  replicas: number,
  growOnly = false,
): Promise<number | undefined> {
  const found = await readGpuPool(scope);
  if (!found.managed) return undefined;
  const nodes = Math.ceil(replicas / found.gpusPerNode);
  const count = found.pool.count ?? 0;
  if ((count === nodes || (growOnly && count > nodes)) && found.pool.provisioningState === 'Succeeded') return count;
  await setPoolCount(scope, found.pool, nodes);
  return nodes;
}

/** The GPU pool as ARM has it, its GPUs per node, and whether it is this deployment's to scale. */
export async function readGpuPool(
  scope: PoolScaleScope,
): Promise<{ pool: AgentPool; gpusPerNode: number; managed: boolean }> {
  const { clients, settings, plan, owner, signal } = scope;
  let cluster;
  let pool;
  try {
    cluster = await clients.containerService.managedClusters.get(plan.resourceGroup, plan.clusterName, {
      abortSignal: signal,
    });
    pool = await clients.containerService.agentPools.get(plan.resourceGroup, plan.clusterName, plan.gpuPoolName, {
      abortSignal: signal,
    });
  } catch (err) {
    throw azureFailure(err, `reading agent pool ${plan.gpuPoolName} of cluster ${plan.clusterName}`);
  }
  const gpusPerNode = Math.max(1, await gpusPerVm(clients.compute, settings.location, pool.vmSize ?? '', signal));
  return { pool, gpusPerNode, managed: !plan.existingCluster && tagsOwnedBy(cluster.tags, owner) };
}

/** Sets the pool's node count (agentPools.createOrUpdate, awaited); Azure's refusals become azureFailure's errors. */
export async function setPoolCount(scope: PoolScaleScope, pool: AgentPool, nodes: number): Promise<void> {
  const { clients, settings, plan, signal, progress } = scope;
  const doing = `scaling agent pool ${plan.gpuPoolName} of cluster ${plan.clusterName}`;
  progress?.(`${doing}: ${pool.count ?? 0} → ${nodes} node(s) of ${pool.vmSize}`);
  try {
    const poller = clients.containerService.agentPools.createOrUpdate(
      plan.resourceGroup,
      plan.clusterName,
      plan.gpuPoolName,
      { ...pool, count: nodes },
      { abortSignal: signal, updateIntervalInMs: settings.pollIntervalMs },
    );
    poller.onProgress((state) => progress?.(`${doing} to ${nodes} node(s): ${state.status}`));
    await poller;
  } catch (err) {
    throw azureFailure(err, doing);
  }
}

/** Waits until no more than `left` pods (none by default) of the scoring Deployment `name` are left (their nodes may go then). */
export async function waitForScorersGone(
  kc: KubeConfig,
  namespace: string,
  name: string,
  signal?: AbortSignal,
  progress?: StepProgress,
  left = 0,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  for (;;) {
    const pods = (await core.listNamespacedPod({ namespace, labelSelector: `app=${name}` })).items;
    if (pods.length <= left) return;
    progress?.(`waiting for ${pods.length} scoring pod(s) of ${name} to stop before their nodes go`);
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** The front's counters, summed over its running pods; throws when none answers. */
export async function frontCounts(kc: KubeConfig, namespace: string, name: string, https: boolean) {
  const core = kc.makeApiClient(CoreV1Api);
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: `${FRONT_LABEL}=${name}` })).items.filter(
    (p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp,
  );
  const sum: GatewayCounts = {
    scoringTotal: 0,
    inFlight: 0,
    held: 0,
    heldTotal: 0,
    heldAnsweredTotal: 0,
    heldRefusedTotal: 0,
  };
  let read = 0;
  for (const pod of pods) {
    const proxied = `${https ? 'https' : 'http'}:${pod.metadata!.name!}:${FRONT_PORT}`;
    let text: string;
    try {
      text = await core.connectGetNamespacedPodProxyWithPath({ name: proxied, namespace, path: 'gateway/metrics' });
    } catch {
      continue; // starting or restarting: it counts from zero once it answers
    }
    const counts = parseGatewayCounts(text);
    for (const key of Object.keys(sum) as (keyof GatewayCounts)[]) sum[key] += counts[key];
    read++;
  }
  if (read === 0) throw new Error(`The front of ${name} in namespace ${namespace} did not answer for its counters.`);
  return sum;
}

/** Whether the front's Deployment has an available pod. */
export async function frontReady(kc: KubeConfig, namespace: string, name: string): Promise<boolean> {
  try {
    const front = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name: frontName(name), namespace });
    return (front.status?.availableReplicas ?? 0) >= 1;
  } catch (err) {
    if (isKubeNotFound(err)) return false;
    throw err;
  }
}

/** The GPUs of the cluster's GPU pool(s) (the pool named in the plan, or any with the GPU taint). */
export async function poolGpuCount(
  clients: AzureClients,
  settings: AksSettings,
  plan: AksPlan,
  signal?: AbortSignal,
): Promise<number> {
  let cluster;
  try {
    cluster = await clients.containerService.managedClusters.get(plan.resourceGroup, plan.clusterName, {
      abortSignal: signal,
    });
  } catch (err) {
    throw azureFailure(err, `reading cluster ${plan.clusterName}`);
  }
  let total = 0;
  for (const pool of cluster.agentPoolProfiles ?? []) {
    if (pool.name !== plan.gpuPoolName && !(pool.nodeTaints ?? []).includes(GPU_TAINT)) continue;
    total += (pool.count ?? 0) * (await gpusPerVm(clients.compute, settings.location, pool.vmSize ?? '', signal));
  }
  return total;
}
