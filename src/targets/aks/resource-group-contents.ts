/**
 * What a resource group holds, as ARM lists it: a group inferctl created is deleted only when everything
 * in it is its owner's, because deleting a group deletes every resource in it (another deployment's
 * cluster that was put into the same `--resource-group`, a registry, anything a person added). Otherwise
 * the owner's own resources are deleted one by one and the group stays.
 */
import type { AzureClients } from './azure-clients';
import { azureFailure, isNotFound } from './azure-errors';
import { type Owner, ownerOfTags, tagsOwnedBy } from './ownership';

export interface ForeignResource {
  /** `Microsoft.ContainerService/managedClusters/inferctl-b` */
  label: string;
  /** Who it says owns it. */
  owner: string;
}

/**
 * The resources in `group` that are not `owner`'s (workflow and installation), or undefined when the group
 * is gone. ARM's list may still show a resource whose delete just finished: one of ours counts as ours.
 */
export async function foreignResources(
  clients: AzureClients,
  group: string,
  owner: Owner,
  signal?: AbortSignal,
): Promise<ForeignResource[] | undefined> {
  const foreign: ForeignResource[] = [];
  try {
    for await (const r of clients.resources.resources.listByResourceGroup(group, { abortSignal: signal })) {
      if (tagsOwnedBy(r.tags, owner)) continue;
      foreign.push({ label: `${r.type ?? 'resource'}/${r.name ?? r.id ?? '?'}`, owner: ownerOfTags(r.tags) });
    }
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw azureFailure(err, `listing the resources in resource group ${group}`);
  }
  return foreign;
}

/** One line for a log or an error: `2 resources of others (…)`. */
export function describeForeign(foreign: ForeignResource[]): string {
  const shown = foreign.slice(0, 3).map((f) => `${f.label}, owned by ${f.owner}`);
  const more = foreign.length > 3 ? `, and ${foreign.length - 3} more` : '';
  return `${foreign.length} resource(s) of others (${shown.join('; ')}${more})`;
}
