/**
 * The janitor's activities: find AKS resources tagged `inferctl-owner` (and inferctl's namespaces in
 * clusters it did not create) whose owning workflow is closed, terminated or unknown, and delete them. This
 * is the guarantee that still holds when someone terminates a deploy workflow (no teardown runs then). An
 * owner that is still running is never touched, and neither is anything another installation made: a
 * resource tagged with another environment (Temporal address/namespace), or one with no environment tag
 * whose owner this namespace does not know.
 */
import { log } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';

import type { OwnedResource } from '../src/shared/janitor-types';
import { AKS_DEFAULTS, aksSettingsFromEnv } from '../src/targets/aks/aks-config';
import type { AksSettings } from '../src/targets/aks/aks-config';
import { createAzureClients } from '../src/targets/aks/azure-clients';
import type { AzureClients } from '../src/targets/aks/azure-clients';
import { deleteAcrPullAssignment } from '../src/targets/aks/acr-pull';
import { orphanedAcrPullGrants } from '../src/targets/aks/acr-pull-orphans';
import { deleteRegistryImage, listRegistryTags } from '../src/targets/aks/registry-images';
import { deleteTaggedResource, listTaggedResources } from '../src/targets/aks/tagged-resources';
import type { TaggedScan } from '../src/targets/aks/tagged-resources';
import { connectClient } from '../src/temporal/connection';
import { failingPermanently } from './failures';
import { withHeartbeat } from './heartbeat';

/** Why a resource is left alone although its owner is not running here; nothing when it is this installation's. */
function skipReason(environment: string | undefined, ownerStatus: string, ours: string): { skipReason?: string } {
  if (environment && environment !== ours) return { skipReason: `made by another installation (${environment})` };
  if (!environment && ownerStatus === 'UNKNOWN') {
    return { skipReason: `no environment tag, and its owner is unknown to ${ours}: it may be another installation's` };
  }
  return {};
}

function imageRef(settings: AksSettings, name: string): string {
  return `${settings.registryName.toLowerCase()}.azurecr.io/${name}`;
}

/**
 * The scoring images no Deployment in the subscription's clusters runs, older than the grace period (a
 * deployment may be between its build and its apply). None when some cluster could not be read.
 */
async function unusedImages(settings: AksSettings, scan: TaggedScan, signal: AbortSignal): Promise<OwnedResource[]> {
  if (scan.unreadable.length > 0) {
    log.warn('Not every cluster could be read; no image counts as unused', { clusters: scan.unreadable.length });
    return [];
  }
  const repository = AKS_DEFAULTS.imageRepository;
  const tags = await listRegistryTags(settings, repository, signal);
  return tags
    .filter((t) => !scan.imagesInUse.has(imageRef(settings, `${repository}:${t.tag}`)))
    .filter((t) => Date.now() - t.createdAt >= settings.imageGraceMs)
    .map((t) => ({
      kind: 'image' as const,
      name: `${repository}:${t.tag}`,
      resourceGroup: settings.registryResourceGroup,
      digest: t.digest,
      owner: `no Deployment uses it (pushed ${new Date(t.createdAt).toISOString()})`,
      ownerStatus: 'UNUSED',
    }));
}

export function createJanitorActivities() {
  let azure: { settings: AksSettings; clients: AzureClients } | undefined;
  let temporal: Promise<Client> | undefined;
  const cloud = () => {
    if (!azure) {
      const settings = aksSettingsFromEnv();
      azure = { settings, clients: createAzureClients(settings) };
    }
    return azure;
  };
  const client = () => (temporal ??= connectClient().then((c) => c.client));

  async function ownerStatus(owner: string): Promise<string> {
    try {
      return (await (await client()).workflow.getHandle(owner).describe()).status.name;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return 'UNKNOWN';
      throw err;
    }
  }

  return {
    /** Every resource inferctl made, with its owner's status and, for another installation's, why it stays. */
    async listOwnedResources(): Promise<OwnedResource[]> {
      return withHeartbeat((signal) =>
        failingPermanently(async () => {
          const { settings, clients } = cloud();
          const scan = await listTaggedResources(clients, signal);
          for (const u of scan.unreadable) log.warn('Cannot read the namespaces of a cluster', { ...u });
          const grants = await orphanedAcrPullGrants(clients, settings, signal);
          const statuses = new Map<string, string>();
          for (const owner of new Set([...scan.resources, ...grants].map((r) => r.owner))) {
            statuses.set(owner, await ownerStatus(owner));
          }
          const granted: OwnedResource[] = grants.map((g) => ({
            kind: 'role assignment',
            name: g.name,
            resourceGroup: settings.registryResourceGroup,
            cluster: g.clusterId.split('/').pop()!,
            owner: g.owner,
            ...(g.environment ? { environment: g.environment } : {}),
            ownerStatus: statuses.get(g.owner)!,
            ...skipReason(g.environment, statuses.get(g.owner)!, settings.environment),
          }));
          const resources: OwnedResource[] = scan.resources.map((r) => {
            const status = statuses.get(r.owner)!;
            return {
              kind: r.kind,
              name: r.name,
              resourceGroup: r.resourceGroup,
              ...(r.cluster ? { cluster: r.cluster } : {}),
              owner: r.owner,
              ...(r.environment ? { environment: r.environment } : {}),
              ownerStatus: status,
              ...skipReason(r.environment, status, settings.environment),
            };
          });
          return [...resources, ...granted, ...(await unusedImages(settings, scan, signal))];
        }),
      );
    },

    /** Deletes one orphan, after checking again that its owner is not running (it may have been restarted). */
    async deleteOrphan(resource: OwnedResource): Promise<boolean> {
      return withHeartbeat((signal) =>
        failingPermanently(async () => {
          const { clients, settings } = cloud();
          if (resource.kind === 'image') {
            // Look again: a deployment may have started on it since it was listed.
            const scan = await listTaggedResources(clients, signal);
            const ref = imageRef(settings, resource.name);
            if (scan.unreadable.length > 0 || scan.imagesInUse.has(ref)) {
              log.info('Image is in use again, or not every cluster could be read; leaving it', { image: ref });
              return false;
            }
            const deleted = await deleteRegistryImage(settings, AKS_DEFAULTS.imageRepository, resource.digest!, signal);
            log.info('Deleted unused image', { image: ref, digest: resource.digest });
            return deleted;
          }
          const status = await ownerStatus(resource.owner);
          if (status === 'RUNNING') {
            log.info('Owner is running again; leaving it', { resource: resource.name, owner: resource.owner });
            return false;
          }
          if (resource.kind === 'role assignment') {
            // Look again: only a grant whose kubelet identity still belongs to no cluster goes.
            const still = await orphanedAcrPullGrants(clients, settings, signal);
            if (!still.some((g) => g.name === resource.name)) return false;
            const deleted = await deleteAcrPullAssignment(clients, settings, resource.name, signal);
            log.info('Deleted orphaned AcrPull grant', { name: resource.name, cluster: resource.cluster });
            return deleted !== undefined;
          }
          const deleted = await deleteTaggedResource(
            clients,
            settings,
            resource as OwnedResource & { kind: Exclude<OwnedResource['kind'], 'image' | 'role assignment'> },
            signal,
            (detail) => {
              log.info('Leaving a resource group that holds others’ resources', { detail });
            },
          );
          log.info('Deleted orphan', { kind: resource.kind, name: resource.name, owner: resource.owner, status });
          return deleted;
        }),
      );
    },
  };
}
