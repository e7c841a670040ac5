/**
 * The AcrPull role assignments inferctl made on the registry (acr-pull.ts: their description names the
 * cluster and its owner) whose kubelet identity belongs to no cluster in the subscription any more: the
 * cluster was deleted without its teardown (a terminated workflow, the janitor) or by hand. Azure keeps
 * such an assignment ("Identity not found") until someone deletes it; the janitor does.
 */
import type { AksSettings } from './aks-config';
import type { AzureClients } from './azure-clients';
import { azureFailure } from './azure-errors';
import { ACR_PULL_ROLE, kubeletObjectId, parseAcrPullDescription, registryResourceId, scopeParam } from './acr-pull';

export interface AcrPullGrant {
  /** The assignment's name (a GUID). */
  name: string;
  principalId: string;
  /** The cluster it was made for. */
  clusterId: string;
  owner: string;
  environment?: string;
}

/** The kubelet identities of every cluster in the subscription. */
async function liveKubelets(clients: AzureClients, signal?: AbortSignal): Promise<Set<string>> {
  const live = new Set<string>();
  try {
    for await (const cluster of clients.containerService.managedClusters.list({ abortSignal: signal })) {
      const id = kubeletObjectId(cluster);
      if (id) live.add(id.toLowerCase());
    }
  } catch (err) {
    throw azureFailure(err, 'listing the clusters of the subscription');
  }
  return live;
}

/** inferctl's AcrPull assignments on the registry whose kubelet identity no cluster has any more. */
export async function orphanedAcrPullGrants(
  clients: AzureClients,
  settings: AksSettings,
  signal?: AbortSignal,
): Promise<AcrPullGrant[]> {
  const registryId = registryResourceId(settings);
  const live = await liveKubelets(clients, signal);
  const orphans: AcrPullGrant[] = [];
  try {
    for await (const a of clients.authorization.roleAssignments.listForScope(scopeParam(registryId), {
      filter: 'atScope()',
      abortSignal: signal,
    })) {
      const made = parseAcrPullDescription(a.description);
      const role = a.roleDefinitionId?.split('/').pop()?.toLowerCase();
      if (!made || role !== ACR_PULL_ROLE || !a.name || !a.principalId) continue;
      if ((a.scope ?? '').toLowerCase() !== registryId.toLowerCase()) continue;
      if (live.has(a.principalId.toLowerCase())) continue;
      orphans.push({ name: a.name, principalId: a.principalId, ...made });
    }
  } catch (err) {
    throw azureFailure(err, `listing the role assignments on registry ${settings.registryName}`);
  }
  return orphans;
}
