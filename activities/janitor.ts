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
import { AksJanitor } from '../src/targets/aks/aks-janitor';
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

export function createJanitorActivities() {
  let aks: AksJanitor | undefined;
  let temporal: Promise<Client> | undefined;
  const cloud = () => (aks ??= AksJanitor.fromEnv());
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
          const janitor = cloud();
          const scan = await janitor.scan(signal);
          for (const u of scan.unreadable) log.warn('Cannot read the namespaces of a cluster', { ...u });
          const grants = await janitor.orphanedAcrPullGrants(signal);
          const statuses = new Map<string, string>();
          for (const owner of new Set([...scan.resources, ...grants].map((r) => r.owner))) {
            statuses.set(owner, await ownerStatus(owner));
          }
          const granted: OwnedResource[] = grants.map((g) => ({
            kind: 'role assignment',
            name: g.name,
            resourceGroup: janitor.registryResourceGroup,
            cluster: g.clusterId.split('/').pop()!,
            owner: g.owner,
            ...(g.environment ? { environment: g.environment } : {}),
            ownerStatus: statuses.get(g.owner)!,
            ...skipReason(g.environment, statuses.get(g.owner)!, janitor.environment),
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
              ...skipReason(r.environment, status, janitor.environment),
            };
          });
          if (scan.unreadable.length > 0) {
            log.warn('Not every cluster could be read; no image counts as unused', {
              clusters: scan.unreadable.length,
            });
          }
          return [...resources, ...granted, ...(await janitor.unusedImages(scan, signal))];
        }),
      );
    },

    /** Deletes one orphan, after checking again that its owner is not running (it may have been restarted). */
    async deleteOrphan(resource: OwnedResource): Promise<boolean> {
      return withHeartbeat((signal) =>
        failingPermanently(async () => {
          const janitor = cloud();
          if (resource.kind === 'image') {
            const { image, deleted, inUse } = await janitor.deleteImage(resource, signal);
            if (inUse) {
              log.info('Image is in use again, or not every cluster could be read; leaving it', { image });
              return false;
            }
            log.info('Deleted unused image', { image, digest: resource.digest });
            return deleted;
          }
          const status = await ownerStatus(resource.owner);
          if (status === 'RUNNING') {
            log.info('Owner is running again; leaving it', { resource: resource.name, owner: resource.owner });
            return false;
          }
          if (resource.kind === 'role assignment') {
            const deleted = await janitor.deleteAcrPullGrant(resource.name, signal);
            if (deleted) log.info('Deleted orphaned AcrPull grant', { name: resource.name, cluster: resource.cluster });
            return deleted;
          }
          const deleted = await janitor.deleteResource(
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
