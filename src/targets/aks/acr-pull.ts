/**
 * AcrPull for the cluster's kubelet identity on the registry: without it every image pull from ACR is a
 * 401 and the pods sit in ImagePullBackOff. A cluster inferctl creates is granted it (a role assignment
 * named by a GUID derived from cluster, registry AND kubelet identity, so a retry PUTs the same one and 409
 * RoleAssignmentExists means it is there, while a cluster of the same name made again, with a new kubelet
 * identity, gets a new name: Azure refuses a PUT that changes an existing name's principal with 409
 * RoleAssignmentUpdateNotPermitted). Its description names the cluster and the owner, so the janitor can
 * find one whose cluster is gone; teardown deletes it with the cluster. A cluster the user brings is only
 * checked, and the preflight names the command that attaches the registry.
 */
import crypto from 'node:crypto';

import type { RoleAssignmentCreateParameters } from '@azure/arm-authorization';
import type { ManagedCluster } from '@azure/arm-containerservice';
import { isRestError } from '@azure/core-rest-pipeline';

import { InvalidInputError } from '../../errors';
import { FailureType } from '../../shared/failure-types';
import type { AksPlan, AksSettings } from './aks-config';
import type { AzureClients } from './azure-clients';
import { AzureRefusedError, azureFailure } from './azure-errors';
import { ENVIRONMENT_TAG } from './environment-tag';
import { OWNER_TAG } from './ownership';

/** The built-in AcrPull role (the same id in every tenant). */
export const ACR_PULL_ROLE = '7f951dda-4ed3-4680-a7ca-43fe172d538d';
/** Built-in roles that include pulling from a registry: AcrPull, AcrPush, Contributor, Owner. */
const PULL_ROLES = [
  ACR_PULL_ROLE,
  '8311e382-0749-4cb8-b61a-304f252e45ec',
  'b24988ac-6180-42a0-ab88-20f7382dd24c',
  '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
];
/** RFC 4122's URL namespace, for name-based (v5) GUIDs. */
const NAMESPACE = Buffer.from('6ba7b8119dad11d180b400c04fd430c8', 'hex');

export function registryResourceId(
  settings: Pick<AksSettings, 'subscriptionId' | 'registryResourceGroup' | 'registryName'>,
) {
  return (
    `/subscriptions/${settings.subscriptionId}/resourceGroups/${settings.registryResourceGroup}` +
    `/providers/Microsoft.ContainerRegistry/registries/${settings.registryName}`
  );
}

/**
 * The assignment's name: a v5 GUID of cluster id, registry id and kubelet identity, so every attempt PUTs the
 * same assignment and a cluster made again under the same name (a new identity) gets another.
 */
export function acrPullAssignmentName(clusterId: string, registryId: string, principalId: string): string {
  const hash = crypto
    .createHash('sha1')
    .update(NAMESPACE)
    .update(`${clusterId.toLowerCase()}|${registryId.toLowerCase()}|${ACR_PULL_ROLE}|${principalId.toLowerCase()}`)
    .digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** How the description of an assignment inferctl made starts; what follows names the cluster and its owner. */
export const ACR_PULL_DESCRIPTION_PREFIX = 'inferctl AcrPull for the kubelet identity of cluster ';

/** The description inferctl gives its AcrPull assignment: the cluster's id and its owner tags. */
export function acrPullDescription(cluster: Pick<ManagedCluster, 'id' | 'tags'>): string {
  return (
    `${ACR_PULL_DESCRIPTION_PREFIX}${cluster.id}; ${OWNER_TAG}=${cluster.tags?.[OWNER_TAG] ?? ''}; ` +
    `${ENVIRONMENT_TAG}=${cluster.tags?.[ENVIRONMENT_TAG] ?? ''}`
  );
}

/** The cluster id and owner an inferctl AcrPull description names; undefined for any other description. */
export function parseAcrPullDescription(
  description: string | undefined,
): { clusterId: string; owner: string; environment?: string } | undefined {
  if (!description?.startsWith(ACR_PULL_DESCRIPTION_PREFIX)) return undefined;
  const [clusterId, ...fields] = description.slice(ACR_PULL_DESCRIPTION_PREFIX.length).split('; ');
  const value = (tag: string) => fields.find((f) => f.startsWith(`${tag}=`))?.slice(tag.length + 1) || undefined;
  const owner = value(OWNER_TAG);
  if (!clusterId || !owner) return undefined;
  const environment = value(ENVIRONMENT_TAG);
  return { clusterId, owner, ...(environment ? { environment } : {}) };
}

/** The body of the AcrPull assignment for a kubelet identity. */
export function acrPullAssignmentBody(
  subscriptionId: string,
  principalId: string,
  description?: string,
): RoleAssignmentCreateParameters {
  return {
    roleDefinitionId: `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${ACR_PULL_ROLE}`,
    principalId,
    // Set so a just-created identity is not looked up in a directory replica that has not seen it yet.
    principalType: 'ServicePrincipal',
    ...(description ? { description } : {}),
  };
}

/** What the SDK takes as `scope`: the resource id without its leading slash (the path adds one). */
export function scopeParam(id: string): string {
  return id.replace(/^\//, '');
}

export function kubeletObjectId(cluster: ManagedCluster): string | undefined {
  return cluster.identityProfile?.kubeletidentity?.objectId;
}

/** Grants AcrPull on the registry to the kubelet identity of a cluster inferctl created. Idempotent. */
export async function grantAcrPull(
  clients: AzureClients,
  settings: AksSettings,
  cluster: ManagedCluster,
  signal?: AbortSignal,
): Promise<{ name: string; created: boolean }> {
  const principalId = kubeletObjectId(cluster);
  // Transient: AKS fills the kubelet identity in as provisioning finishes.
  if (!principalId || !cluster.id) throw new Error(`cluster ${cluster.name} has no kubelet identity yet; retrying`);
  const registryId = registryResourceId(settings);
  const name = acrPullAssignmentName(cluster.id, registryId, principalId);
  try {
    await clients.authorization.roleAssignments.create(
      scopeParam(registryId),
      name,
      acrPullAssignmentBody(settings.subscriptionId, principalId, acrPullDescription(cluster)),
      { abortSignal: signal },
    );
    return { name, created: true };
  } catch (err) {
    if (isRestError(err) && err.statusCode === 409 && err.code === 'RoleAssignmentExists')
      return { name, created: false };
    // A new identity may not have reached every directory replica yet: another attempt will find it.
    if (isRestError(err) && err.code === 'PrincipalNotFound') {
      throw new Error(`the kubelet identity of ${cluster.name} is not in the directory yet; retrying`);
    }
    if (isRestError(err) && err.statusCode === 403) {
      throw new AzureRefusedError(
        `The worker's identity may not grant AcrPull on registry ${settings.registryName} to the new cluster ` +
          `${cluster.name} (403 ${err.code ?? ''}). Give it "Role Based Access Control Administrator" (or "User ` +
          `Access Administrator", or "Owner") on the registry, or deploy into a cluster that is attached to the ` +
          `registry already (--cluster).`,
        FailureType.AzurePermissionDenied,
      );
    }
    throw azureFailure(err, `granting AcrPull on registry ${settings.registryName} to cluster ${cluster.name}`);
  }
}

/**
 * Deletes the AcrPull assignment `grantAcrPull` made for a cluster inferctl created (at teardown, before the
 * cluster goes: its identity is gone after). Idempotent: false when there was none.
 */
export async function revokeAcrPull(
  clients: AzureClients,
  settings: AksSettings,
  cluster: ManagedCluster,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const principalId = kubeletObjectId(cluster);
  if (!principalId || !cluster.id) return undefined;
  return deleteAcrPullAssignment(
    clients,
    settings,
    acrPullAssignmentName(cluster.id, registryResourceId(settings), principalId),
    signal,
  );
}

/** Deletes one role assignment on the registry by name; its label, or undefined when it was not there. */
export async function deleteAcrPullAssignment(
  clients: AzureClients,
  settings: AksSettings,
  name: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  try {
    const deleted = await clients.authorization.roleAssignments.delete(scopeParam(registryResourceId(settings)), name, {
      abortSignal: signal,
    });
    return deleted?.id ? `AcrPull role assignment ${name} on registry ${settings.registryName}` : undefined;
  } catch (err) {
    if (isRestError(err) && (err.statusCode === 404 || err.statusCode === 204)) return undefined;
    throw azureFailure(err, `deleting the AcrPull role assignment ${name} on registry ${settings.registryName}`);
  }
}

/** Refuses an existing cluster whose kubelet identity cannot pull from the registry, naming the fix. */
export async function assertCanPull(
  clients: AzureClients,
  settings: AksSettings,
  plan: AksPlan,
  cluster: ManagedCluster,
  signal?: AbortSignal,
): Promise<void> {
  const registryId = registryResourceId(settings);
  const fix =
    `Attach the registry: az aks update -n ${plan.clusterName} -g ${plan.resourceGroup} --attach-acr ${registryId} ` +
    '(it grants the kubelet identity AcrPull), then deploy again.';
  const principalId = kubeletObjectId(cluster);
  if (!principalId) {
    throw new InvalidInputError(
      `Cluster ${plan.clusterName} has no kubelet managed identity, so inferctl cannot check that it may pull ` +
        `from registry ${settings.registryName}. ${fix}`,
      FailureType.AksAcrPullMissing,
    );
  }
  let holds = false;
  try {
    for await (const a of clients.authorization.roleAssignments.listForScope(scopeParam(registryId), {
      filter: `principalId eq '${principalId}'`,
      abortSignal: signal,
    })) {
      const role = /\/roleDefinitions\/([0-9a-f-]+)$/i.exec(a.roleDefinitionId ?? '')?.[1]?.toLowerCase();
      const scope = (a.scope ?? '').toLowerCase();
      const covers = registryId.toLowerCase() === scope || registryId.toLowerCase().startsWith(`${scope}/`);
      if (a.principalId === principalId && role && PULL_ROLES.includes(role) && covers) holds = true;
    }
  } catch (err) {
    throw azureFailure(err, `reading the role assignments on registry ${settings.registryName}`);
  }
  if (!holds) {
    throw new InvalidInputError(
      `Cluster ${plan.clusterName} cannot pull from registry ${settings.registryName}: its kubelet identity ` +
        `(${principalId}) holds no AcrPull there, so its pods would sit in ImagePullBackOff. ${fix}`,
      FailureType.AksAcrPullMissing,
    );
  }
}
