/**
 * The AKS cluster of a deployment: created (with its resource group when asked) or adopted, tagged with
 * the owning workflow id, and deleted only when this deployment created it. Every call is idempotent:
 * it looks first, so a retried activity picks up a cluster an earlier attempt started creating.
 */
import type { ManagedCluster } from '@azure/arm-containerservice';

import { formatDuration } from '../../shared/duration';
import { InvalidInputError, StepFailedError } from '../../errors';
import type { StepProgress } from '../target';
import type { AksPlan, AksSettings } from './aks-config';
import type { AzureClients } from './azure-clients';
import { azureFailure, isNotFound } from './azure-errors';
import { assertCanPull } from './acr-pull';
import { ENVIRONMENT_TAG } from './environment-tag';
import { OWNER_TAG, type Owner, ownerOfTags, tagsOwnedBy } from './ownership';
import { preflightQuota } from './preflight';
import { describeForeign, foreignResources } from './resource-group-contents';
import { FailureType } from '../../shared/failure-types';

export { OWNER_TAG } from './ownership';
export const DEPLOYMENT_TAG = 'inferctl-deployment';
export const GPU_TAINT = 'sku=gpu:NoSchedule';
export const GPU_POOL_LABEL = 'inferctl.dev/pool';

/** What every call about one deployment's cluster needs: the clients, the plan, and who owns it. */
export interface ClusterScope {
  clients: AzureClients;
  plan: AksPlan;
  settings: AksSettings;
  /** The owning workflow id, tagged on what this deployment creates. */
  ownerId: string;
  /** The deployment name, tagged on the cluster. */
  name: string;
  signal?: AbortSignal;
  progress: StepProgress;
  /** When cluster creation is declared stuck (ms since the epoch), counted from the step's first attempt. */
  deadlineAt?: number;
}

/** The scope's whole owner: its workflow id and this installation. */
export function scopeOwner(scope: Pick<ClusterScope, 'ownerId' | 'settings'>): Owner {
  return { id: scope.ownerId, environment: scope.settings.environment };
}

export interface ClusterHandle {
  id: string;
  created: boolean;
  gpuNodes: number;
  /** The cluster as ARM returned it (its kubelet identity is what AcrPull is granted to). */
  cluster: ManagedCluster;
}

/** The create-or-update body: a small system pool and a tainted GPU user pool. */
export function managedClusterBody(
  plan: AksPlan,
  settings: Pick<AksSettings, 'location' | 'environment'>,
  ownerId: string,
  name: string,
) {
  const body: ManagedCluster = {
    location: settings.location,
    tags: { [OWNER_TAG]: ownerId, [DEPLOYMENT_TAG]: name, [ENVIRONMENT_TAG]: settings.environment },
    identity: { type: 'SystemAssigned' },
    dnsPrefix: plan.clusterName,
    enableRbac: true,
    agentPoolProfiles: [
      {
        name: 'system',
        mode: 'System',
        vmSize: plan.systemVmSize,
        count: plan.systemNodeCount,
        osType: 'Linux',
      },
      {
        name: plan.gpuPoolName,
        mode: 'User',
        vmSize: plan.gpuVmSize,
        count: plan.gpuNodeCount,
        osType: 'Linux',
        nodeTaints: [GPU_TAINT],
        nodeLabels: { [GPU_POOL_LABEL]: plan.gpuPoolName },
      },
    ],
  };
  return body;
}

/** The resource group inferctl creates when asked: tagged so teardown and the janitor know it is ours. */
export function resourceGroupBody(settings: Pick<AksSettings, 'location' | 'environment'>, ownerId: string) {
  return { location: settings.location, tags: { [OWNER_TAG]: ownerId, [ENVIRONMENT_TAG]: settings.environment } };
}

async function getCluster(clients: AzureClients, plan: AksPlan, signal?: AbortSignal) {
  try {
    return await clients.containerService.managedClusters.get(plan.resourceGroup, plan.clusterName, {
      abortSignal: signal,
    });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw azureFailure(err, `reading cluster ${plan.clusterName}`);
  }
}

function gpuNodesOf(cluster: ManagedCluster, plan: AksPlan): number {
  return (cluster.agentPoolProfiles ?? [])
    .filter((p) => p.name === plan.gpuPoolName || (p.nodeTaints ?? []).includes(GPU_TAINT))
    .reduce((n, p) => n + (p.count ?? 0), 0);
}

export async function ensureResourceGroup({
  clients,
  plan,
  settings,
  ownerId,
  signal,
}: ClusterScope): Promise<boolean> {
  let exists: boolean;
  try {
    exists = (await clients.resources.resourceGroups.checkExistence(plan.resourceGroup, { abortSignal: signal })).body;
  } catch (err) {
    throw azureFailure(err, `checking resource group ${plan.resourceGroup}`);
  }
  if (exists) return false;
  if (!plan.createResourceGroup) {
    throw new InvalidInputError(
      `Resource group ${plan.resourceGroup} does not exist. Create it (az group create -n ${plan.resourceGroup} ` +
        `-l ${settings.location}) or pass --create-resource-group to have inferctl create and later delete it.`,
      FailureType.AzureResourceGroupMissing,
    );
  }
  try {
    // The owner tag is how teardown knows this deployment made the group, even after a worker crash.
    await clients.resources.resourceGroups.createOrUpdate(plan.resourceGroup, resourceGroupBody(settings, ownerId), {
      abortSignal: signal,
    });
  } catch (err) {
    throw azureFailure(err, `creating resource group ${plan.resourceGroup}`);
  }
  return true;
}

/** Creates the cluster (after the quota preflight) or adopts the one an earlier attempt created. */
export async function ensureCluster(scope: ClusterScope): Promise<ClusterHandle> {
  const { clients, plan, settings, ownerId, name, signal, progress } = scope;
  let cluster = await getCluster(clients, plan, signal);
  if (plan.existingCluster) {
    if (!cluster) {
      throw new InvalidInputError(
        `Cluster ${plan.clusterName} was not found in resource group ${plan.resourceGroup}. Check --cluster and ` +
          '--resource-group, or leave out --cluster to have inferctl create (and later delete) one.',
        FailureType.AksClusterNotFound,
      );
    }
    const gpuNodes = gpuNodesOf(cluster, plan);
    if (gpuNodes === 0) {
      throw new InvalidInputError(
        `Cluster ${plan.clusterName} has no GPU node pool. Add one (az aks nodepool add --cluster-name ` +
          `${plan.clusterName} -g ${plan.resourceGroup} -n gpu --node-vm-size ${plan.gpuVmSize} ` +
          `--node-taints ${GPU_TAINT} --labels ${GPU_POOL_LABEL}=gpu) or leave out --cluster.`,
        FailureType.AksNoGpuPool,
      );
    }
    progress(`checking that cluster ${plan.clusterName} may pull from registry ${settings.registryName}`);
    await assertCanPull(clients, settings, plan, cluster, signal);
    return { id: cluster.id ?? plan.clusterName, created: false, gpuNodes, cluster };
  }

  if (cluster && !tagsOwnedBy(cluster.tags, scopeOwner(scope))) {
    throw new InvalidInputError(
      `Cluster ${plan.clusterName} already exists and belongs to ${ownerOfTags(cluster.tags)}, not to ` +
        `${ownerId} of ${settings.environment}. Pick another deployment name, or pass --cluster to deploy into it ` +
        'without owning it.',
      FailureType.AksClusterNameInUse,
    );
  }
  if (!cluster || cluster.provisioningState === 'Failed') {
    progress(`checking that ${settings.location} offers ${plan.gpuVmSize} and the quota covers it`);
    await preflightQuota(
      clients.compute,
      settings.location,
      [
        { vmSize: plan.systemVmSize, count: plan.systemNodeCount },
        { vmSize: plan.gpuVmSize, count: plan.gpuNodeCount },
      ],
      signal,
    );
  }
  if (cluster?.provisioningState !== 'Succeeded') {
    const body = managedClusterBody(plan, settings, ownerId, name);
    cluster = await withDeadline(
      settings.provisionTimeoutMs,
      (scope.deadlineAt ?? Date.now() + settings.provisionTimeoutMs) - Date.now(),
      signal,
      () => lastKnownState(clients, plan),
      async (bounded) => {
        try {
          if (cluster && cluster.provisioningState !== 'Failed') {
            return await waitForSettled({ ...scope, signal: bounded });
          }
          const started = Date.now();
          progress(`creating cluster ${plan.clusterName} (${plan.gpuNodeCount}× ${plan.gpuVmSize})`);
          const poller = clients.containerService.managedClusters.createOrUpdate(
            plan.resourceGroup,
            plan.clusterName,
            body,
            { abortSignal: bounded, updateIntervalInMs: settings.pollIntervalMs },
          );
          poller.onProgress((state) =>
            progress(`creating cluster ${plan.clusterName}: ${state.status}, ${formatDuration(Date.now() - started)}`),
          );
          return await poller;
        } catch (err) {
          throw azureFailure(err, `creating cluster ${plan.clusterName}`);
        }
      },
    );
  }
  return { id: cluster.id ?? plan.clusterName, created: true, gpuNodes: gpuNodesOf(cluster, plan), cluster };
}

/** An earlier attempt's create is still running: poll the resource until it settles. */
async function waitForSettled({ clients, plan, settings, signal, progress }: ClusterScope) {
  const started = Date.now();
  for (;;) {
    const cluster = await getCluster(clients, plan, signal);
    if (!cluster) throw new Error(`Cluster ${plan.clusterName} vanished while it was being created; retrying.`);
    progress(
      `waiting for cluster ${plan.clusterName} (an earlier attempt created it): ${cluster.provisioningState}, ` +
        formatDuration(Date.now() - started),
    );
    if (cluster.provisioningState === 'Succeeded') return cluster;
    if (cluster.provisioningState === 'Failed') throw new Error(`Cluster ${plan.clusterName} failed to provision.`);
    await sleep(settings.pollIntervalMs, signal);
  }
}

async function lastKnownState(clients: AzureClients, plan: AksPlan): Promise<string> {
  const cluster = await getCluster(clients, plan).catch(() => undefined);
  return cluster?.provisioningState ?? 'unknown';
}

/**
 * Runs `work` with a signal that aborts at the activity's cancellation or once `remainingMs` of the step's
 * `ms` are left, whichever is first (a retried attempt gets only what its predecessors left over).
 * At the deadline the result is an AksProvisioningStuck error naming the last provisioning state, and the
 * poller is stopped (the cluster itself is deleted by the workflow's teardown).
 */
async function withDeadline<T>(
  ms: number,
  remainingMs: number,
  signal: AbortSignal | undefined,
  state: () => Promise<string>,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const deadline = new AbortController();
  const bounded = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        void state().then((s) => {
          const took = ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${ms / 1000} s`;
          reject(
            new StepFailedError(
              `Cluster provisioning did not finish within ${took} (provisioning state: ${s}). Check the ` +
                "cluster's activity log in the Azure portal; inferctl will now delete it.",
              FailureType.AksProvisioningStuck,
            ),
          );
          deadline.abort();
        });
      },
      Math.max(0, remainingMs),
    );
  });
  try {
    return await Promise.race([work(bounded), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Deletes the cluster if this deployment (workflow and installation) created it; 404 means it is already gone. */
export async function deleteCluster(scope: ClusterScope): Promise<string[]> {
  const { clients, plan, settings, signal, progress } = scope;
  if (plan.existingCluster) return [];
  const cluster = await getCluster(clients, plan, signal);
  if (!cluster) return [];
  if (!tagsOwnedBy(cluster.tags, scopeOwner(scope))) return []; // never delete what we did not create
  progress(`deleting cluster ${plan.clusterName} (${cluster.provisioningState})`);
  try {
    await clients.containerService.managedClusters.delete(plan.resourceGroup, plan.clusterName, {
      abortSignal: signal,
      updateIntervalInMs: settings.pollIntervalMs,
    });
  } catch (err) {
    if (isNotFound(err)) return [`cluster ${plan.clusterName}`];
    throw azureFailure(err, `deleting cluster ${plan.clusterName}`);
  }
  return [`cluster ${plan.clusterName}`];
}

/**
 * Deletes the resource group only when this deployment created it (its owner tags, workflow and
 * installation) and it holds nothing but this deployment's resources: a group that another deployment's
 * cluster (or anything else) was put into stays, with only our own resources deleted (the cluster, before
 * this is called). Deleting a group deletes everything in it.
 */
export async function deleteResourceGroupIfOurs(scope: ClusterScope): Promise<string[]> {
  const { clients, plan, settings, signal, progress } = scope;
  if (!plan.createResourceGroup) return [];
  try {
    const group = await clients.resources.resourceGroups.get(plan.resourceGroup, { abortSignal: signal });
    if (!tagsOwnedBy(group.tags, scopeOwner(scope))) return [];
    const foreign = await foreignResources(clients, plan.resourceGroup, scopeOwner(scope), signal);
    if (!foreign) return [];
    if (foreign.length > 0) {
      progress(`keeping resource group ${plan.resourceGroup}: it holds ${describeForeign(foreign)}`);
      return [];
    }
    progress(`deleting resource group ${plan.resourceGroup} (inferctl created it, and it holds nothing else)`);
    await clients.resources.resourceGroups.delete(plan.resourceGroup, {
      abortSignal: signal,
      updateIntervalInMs: settings.pollIntervalMs,
    });
  } catch (err) {
    if (isNotFound(err)) return [];
    throw azureFailure(err, `deleting resource group ${plan.resourceGroup}`);
  }
  return [`resource group ${plan.resourceGroup}`];
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      },
      { once: true },
    );
  });
}
