/**
 * What the janitor finds and removes on Azure, as one entry for its activities (activities/janitor.ts):
 * every resource inferctl tagged (clusters, resource groups, agent pools, namespaces:
 * tagged-resources.ts), the scoring images no Deployment runs (registry-images.ts), the AcrPull grants
 * whose kubelet identity no cluster has any more (acr-pull-orphans.ts), and the deletion of one of them. Whether an owner still runs is a Temporal question the activities answer, not this module.
 */
import type { OwnedResource } from '../../shared/janitor-types';
import { AKS_DEFAULTS, aksSettingsFromEnv } from './aks-config';
import type { AksSettings } from './aks-config';
import { deleteAcrPullAssignment } from './acr-pull';
import { orphanedAcrPullGrants } from './acr-pull-orphans';
import type { AcrPullGrant } from './acr-pull-orphans';
import { createAzureClients } from './azure-clients';
import type { AzureClients } from './azure-clients';
import { deleteRegistryImage, listRegistryTags } from './registry-images';
import { deleteTaggedResource, listTaggedResources } from './tagged-resources';
import type { TaggedScan } from './tagged-resources';

export type { TaggedScan } from './tagged-resources';
export type { AcrPullGrant } from './acr-pull-orphans';

/** What became of an unused image the janitor was asked to delete. */
export interface ImageDeletion {
  /** The image's full reference (`<registry>.azurecr.io/<repository>:<tag>`). */
  image: string;
  deleted: boolean;
  /** Left alone: a Deployment runs it again, or some cluster could not be read. */
  inUse: boolean;
}

export class AksJanitor {
  private readonly clients: AzureClients;

  constructor(private readonly settings: AksSettings) {
    this.clients = createAzureClients(settings);
  }

  /** The janitor of the aks configuration in this worker's environment. */
  static fromEnv(): AksJanitor {
    return new AksJanitor(aksSettingsFromEnv());
  }

  /** The installation this janitor works for (the `inferctl-environment` tag its resources carry). */
  get environment(): string {
    return this.settings.environment;
  }

  /** Every tagged resource, the images in use, and the clusters whose namespaces could not be read. */
  scan(signal: AbortSignal): Promise<TaggedScan> {
    return listTaggedResources(this.clients, signal);
  }

  /**
   * The scoring images no Deployment in the subscription's clusters runs, older than the grace period (a
   * deployment may be between its build and its apply). None when some cluster could not be read.
   */
  async unusedImages(scan: TaggedScan, signal: AbortSignal): Promise<OwnedResource[]> {
    if (scan.unreadable.length > 0) return [];
    const repository = AKS_DEFAULTS.imageRepository;
    const tags = await listRegistryTags(this.settings, repository, signal);
    return tags
      .filter((t) => !scan.imagesInUse.has(this.imageRef(`${repository}:${t.tag}`)))
      .filter((t) => Date.now() - t.createdAt >= this.settings.imageGraceMs)
      .map((t) => ({
        kind: 'image' as const,
        name: `${repository}:${t.tag}`,
        resourceGroup: this.settings.registryResourceGroup,
        digest: t.digest,
        owner: `no Deployment uses it (pushed ${new Date(t.createdAt).toISOString()})`,
        ownerStatus: 'UNUSED',
      }));
  }

  /** Deletes an unused image, after looking again: a deployment may have started on it since it was listed. */
  async deleteImage(resource: OwnedResource, signal: AbortSignal): Promise<ImageDeletion> {
    const scan = await listTaggedResources(this.clients, signal);
    const image = this.imageRef(resource.name);
    if (scan.unreadable.length > 0 || scan.imagesInUse.has(image)) return { image, deleted: false, inUse: true };
    const deleted = await deleteRegistryImage(this.settings, AKS_DEFAULTS.imageRepository, resource.digest!, signal);
    return { image, deleted, inUse: false };
  }

  /** The resource group of the registry, where the AcrPull grants live. */
  get registryResourceGroup(): string {
    return this.settings.registryResourceGroup;
  }

  /** The AcrPull grants on the registry whose kubelet identity belongs to no cluster any more. */
  orphanedAcrPullGrants(signal: AbortSignal): Promise<AcrPullGrant[]> {
    return orphanedAcrPullGrants(this.clients, this.settings, signal);
  }

  /**
   * Deletes an orphaned AcrPull grant, after looking again: only one whose kubelet identity still belongs to
   * no cluster goes. False when it is no longer an orphan or was already gone.
   */
  async deleteAcrPullGrant(name: string, signal: AbortSignal): Promise<boolean> {
    const still = await orphanedAcrPullGrants(this.clients, this.settings, signal);
    if (!still.some((g) => g.name === name)) return false;
    return (await deleteAcrPullAssignment(this.clients, this.settings, name, signal)) !== undefined;
  }

  /**
   * Deletes a tagged cluster, resource group, namespace or agent pool; false when it was already gone. A
   * resource group that holds others' resources is kept (its own resources go): `onKept` hears why.
   */
  deleteResource(
    resource: OwnedResource & { kind: Exclude<OwnedResource['kind'], 'image' | 'role assignment'> },
    signal: AbortSignal,
    onKept: (detail: string) => void = () => undefined,
  ): Promise<boolean> {
    return deleteTaggedResource(this.clients, this.settings, resource, signal, onKept);
  }

  private imageRef(name: string): string {
    return `${this.settings.registryName.toLowerCase()}.azurecr.io/${name}`;
  }
}
