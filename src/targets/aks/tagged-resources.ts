/**
 * What the janitor sees and removes: AKS clusters and resource groups in the subscription that carry the
 * `inferctl-owner` tag. Deleting is idempotent (404 means gone) and waits for the delete to finish.
 */
import type { AksSettings } from './aks-config';
import type { AzureClients } from './azure-clients';
import { azureFailure, isNotFound } from './azure-errors';
import { OWNER_TAG } from './managed-cluster';

export interface TaggedResource {
  kind: 'cluster' | 'resource group';
  name: string;
  resourceGroup: string;
  /** The workflow id in the owner tag. */
  owner: string;
  id: string;
}

export async function listTaggedResources(clients: AzureClients, signal?: AbortSignal): Promise<TaggedResource[]> {
  const found: TaggedResource[] = [];
  try {
    for await (const cluster of clients.containerService.managedClusters.list({ abortSignal: signal })) {
      const owner = cluster.tags?.[OWNER_TAG];
      if (!owner || !cluster.id || !cluster.name) continue;
      const resourceGroup = /\/resourcegroups\/([^/]+)\//i.exec(cluster.id)?.[1] ?? '';
      found.push({ kind: 'cluster', name: cluster.name, resourceGroup, owner, id: cluster.id });
    }
    for await (const group of clients.resources.resourceGroups.list({
      filter: `tagName eq '${OWNER_TAG}'`,
      abortSignal: signal,
    })) {
      const owner = group.tags?.[OWNER_TAG];
      if (!owner || !group.name) continue;
      found.push({ kind: 'resource group', name: group.name, resourceGroup: group.name, owner, id: group.id ?? '' });
    }
  } catch (err) {
    throw azureFailure(err, 'listing resources tagged inferctl-owner');
  }
  return found;
}

export async function deleteTaggedResource(
  clients: AzureClients,
  settings: AksSettings,
  resource: Pick<TaggedResource, 'kind' | 'name' | 'resourceGroup'>,
  signal?: AbortSignal,
): Promise<boolean> {
  const options = { abortSignal: signal, updateIntervalInMs: settings.pollIntervalMs };
  try {
    if (resource.kind === 'cluster') {
      await clients.containerService.managedClusters.delete(resource.resourceGroup, resource.name, options);
    } else {
      await clients.resources.resourceGroups.delete(resource.name, options);
    }
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw azureFailure(err, `deleting ${resource.kind} ${resource.name}`);
  }
}
