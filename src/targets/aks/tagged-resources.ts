/**
 * What the janitor sees and removes: AKS clusters and resource groups in the subscription that carry the
 * `inferctl-owner` tag (with the `inferctl-environment` tag saying which installation made them), and the
 * namespaces and GPU agent pools (batch jobs') inferctl created in clusters it did not create, and the images inferctl's Deployments run in
 * every cluster it can read (so the janitor knows which scoring images are unused). Deleting is idempotent (404 means gone) and
 * waits for the delete to finish.
 */
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ManagedCluster } from '@azure/arm-containerservice';

import type { AksSettings } from './aks-config';
import type { AzureClients } from './azure-clients';
import { azureFailure, isNotFound } from './azure-errors';
import { CLUSTER_ANNOTATION, ENVIRONMENT_ANNOTATION, ENVIRONMENT_TAG } from './environment-tag';
import { clusterKubeConfig } from './cluster-credentials';
import { deleteNamespace } from './kubernetes-deployment';
import { kubernetesFailure } from './kubernetes-errors';
import { MANAGED_BY_LABEL, OWNER_ANNOTATION } from './kubernetes-manifests';
import { OWNER_TAG } from './managed-cluster';
import { describeForeign, foreignResources } from './resource-group-contents';

export interface TaggedResource {
  kind: 'cluster' | 'resource group' | 'namespace' | 'agent pool';
  name: string;
  resourceGroup: string;
  /** For a namespace or an agent pool: the cluster it is in. */
  cluster?: string;
  /** The workflow id in the owner tag. */
  owner: string;
  /** The installation in the environment tag (absent on resources made before it existed). */
  environment?: string;
  id: string;
}

export interface TaggedScan {
  resources: TaggedResource[];
  /** The images inferctl's Deployments run, in every cluster of the subscription (but those being deleted). */
  imagesInUse: Set<string>;
  /** Clusters that could not be read, in any state, and why (then no image counts as unused). */
  unreadable: { cluster: string; reason: string }[];
}

/** The tagged clusters and groups, and inferctl's namespaces in the untagged (users') clusters. */
export async function listTaggedResources(clients: AzureClients, signal?: AbortSignal): Promise<TaggedScan> {
  const found: TaggedResource[] = [];
  const running: { name: string; resourceGroup: string; tagged: boolean }[] = [];
  try {
    for await (const cluster of clients.containerService.managedClusters.list({ abortSignal: signal })) {
      if (!cluster.id || !cluster.name) continue;
      const owner = cluster.tags?.[OWNER_TAG];
      const resourceGroup = /\/resourcegroups\/([^/]+)\//i.exec(cluster.id)?.[1] ?? '';
      // Every cluster that may run pods is read, whatever operation is under way on it: an Updating or
      // Upgrading (or Failed, or stopped) cluster keeps its Deployments. One that cannot be read counts as
      // unreadable, and then no image counts as unused. Only a cluster being deleted is skipped.
      if (cluster.provisioningState !== 'Deleting')
        running.push({ name: cluster.name, resourceGroup, tagged: !!owner });
      // A batch job's GPU pool in a user's cluster (gpu-node-pool.ts) carries the owner tag itself.
      if (!owner) found.push(...ownedPools(cluster, resourceGroup));
      if (!owner) continue;
      const environment = cluster.tags?.[ENVIRONMENT_TAG];
      found.push({ kind: 'cluster', name: cluster.name, resourceGroup, owner, environment, id: cluster.id });
    }
    for await (const group of clients.resources.resourceGroups.list({
      filter: `tagName eq '${OWNER_TAG}'`,
      abortSignal: signal,
    })) {
      const owner = group.tags?.[OWNER_TAG];
      if (!owner || !group.name) continue;
      const environment = group.tags?.[ENVIRONMENT_TAG];
      found.push({
        kind: 'resource group',
        name: group.name,
        resourceGroup: group.name,
        owner,
        environment,
        id: group.id ?? '',
      });
    }
  } catch (err) {
    throw azureFailure(err, 'listing resources tagged inferctl-owner');
  }
  const unreadable: TaggedScan['unreadable'] = [];
  const imagesInUse = new Set<string>();
  for (const cluster of running) {
    try {
      const kc = await clusterKubeConfig(clients, cluster, signal);
      if (!cluster.tagged) found.push(...(await inferctlNamespaces(kc, cluster)));
      for (const image of await inferctlImages(kc, cluster.name)) imagesInUse.add(image);
    } catch (err) {
      unreadable.push({
        cluster: cluster.name,
        reason: err instanceof Error ? err.message.split('\n')[0]! : String(err),
      });
    }
  }
  return { resources: found, imagesInUse, unreadable };
}

/** The agent pools inferctl added to a cluster it did not create (owner-tagged pools). */
function ownedPools(cluster: ManagedCluster, resourceGroup: string): TaggedResource[] {
  return (cluster.agentPoolProfiles ?? []).flatMap((pool) => {
    const owner = pool.tags?.[OWNER_TAG];
    if (!owner || !pool.name) return [];
    return [
      {
        kind: 'agent pool' as const,
        name: pool.name,
        resourceGroup,
        cluster: cluster.name!,
        owner,
        environment: pool.tags?.[ENVIRONMENT_TAG],
        id: `${cluster.id}/agentPools/${pool.name}`,
      },
    ];
  });
}

/** The images of inferctl's Deployments in a cluster. */
async function inferctlImages(kc: KubeConfig, cluster: string): Promise<string[]> {
  try {
    const list = await kc
      .makeApiClient(AppsV1Api)
      .listDeploymentForAllNamespaces({ labelSelector: `${MANAGED_BY_LABEL}=inferctl` });
    return list.items.flatMap((d) => (d.spec?.template.spec?.containers ?? []).map((c) => c.image ?? ''));
  } catch (err) {
    throw kubernetesFailure(err, `listing the Deployments of cluster ${cluster}`);
  }
}

/** The namespaces inferctl created in a cluster, as the cluster's user credentials list them. */
async function inferctlNamespaces(
  kc: KubeConfig,
  cluster: { name: string; resourceGroup: string },
): Promise<TaggedResource[]> {
  let items;
  try {
    items = (await kc.makeApiClient(CoreV1Api).listNamespace({ labelSelector: `${MANAGED_BY_LABEL}=inferctl` })).items;
  } catch (err) {
    throw kubernetesFailure(err, `listing the namespaces of cluster ${cluster.name}`);
  }
  const found: TaggedResource[] = [];
  for (const ns of items) {
    const a = ns.metadata?.annotations ?? {};
    const owner = a[OWNER_ANNOTATION];
    // A namespace is reclaimed only in the cluster it says it was deployed to.
    if (!owner || !ns.metadata?.name || a[CLUSTER_ANNOTATION] !== cluster.name) continue;
    found.push({
      kind: 'namespace',
      name: ns.metadata.name,
      resourceGroup: cluster.resourceGroup,
      cluster: cluster.name,
      owner,
      environment: a[ENVIRONMENT_ANNOTATION],
      id: `${cluster.resourceGroup}/${cluster.name}/${ns.metadata.name}`,
    });
  }
  return found;
}

/**
 * Deletes one resource; false when it was gone already, or (a resource group) when it holds anything that
 * is not its owner's: deleting a group deletes everything in it, so such a group stays.
 */
export async function deleteTaggedResource(
  clients: AzureClients,
  settings: AksSettings,
  resource: Pick<TaggedResource, 'kind' | 'name' | 'resourceGroup' | 'cluster' | 'owner' | 'environment'>,
  signal?: AbortSignal,
  log: (message: string) => void = () => undefined,
): Promise<boolean> {
  const options = { abortSignal: signal, updateIntervalInMs: settings.pollIntervalMs };
  try {
    if (resource.kind === 'namespace') {
      const kc = await clusterKubeConfig(
        clients,
        { name: resource.cluster!, resourceGroup: resource.resourceGroup },
        signal,
      );
      return await deleteNamespace(kc, resource.name, signal).catch((err: unknown) => {
        throw kubernetesFailure(err, `deleting namespace ${resource.name} in cluster ${resource.cluster}`);
      });
    }
    if (resource.kind === 'agent pool') {
      await clients.containerService.agentPools.delete(
        resource.resourceGroup,
        resource.cluster!,
        resource.name,
        options,
      );
    } else if (resource.kind === 'cluster') {
      await clients.containerService.managedClusters.delete(resource.resourceGroup, resource.name, options);
    } else {
      const owner = { id: resource.owner, environment: resource.environment ?? '' };
      const foreign = await foreignResources(clients, resource.name, owner, signal);
      if (!foreign) return false;
      if (foreign.length > 0) {
        log(`keeping resource group ${resource.name}: it holds ${describeForeign(foreign)}`);
        return false;
      }
      await clients.resources.resourceGroups.delete(resource.name, options);
    }
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw azureFailure(err, `deleting ${resource.kind} ${resource.name}`);
  }
}
