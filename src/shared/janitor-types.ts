/**
 * Types the janitor workflow, its activities and the CLI share. Workflow-safe: plain data only.
 */

export const JANITOR_WORKFLOW_TYPE = 'janitor';
/** The id of the Schedule `inferctl janitor --every` creates. */
export const JANITOR_SCHEDULE_ID = 'inferctl-janitor';

export interface JanitorInput {
  /** Report what would be deleted, delete nothing. */
  dryRun?: boolean;
}

/**
 * A resource inferctl made, and what Temporal says about the workflow that owns it: an AKS cluster or
 * resource group (tagged inferctl-owner), a Kubernetes namespace in a cluster inferctl did not create, or a
 * scoring image in the registry that no deployment in the subscription's clusters uses (status UNUSED), or
 * an AcrPull role assignment on the registry whose cluster is gone (its name is the assignment's GUID).
 */
export interface OwnedResource {
  kind: 'cluster' | 'resource group' | 'namespace' | 'agent pool' | 'image' | 'role assignment';
  name: string;
  resourceGroup: string;
  /** For a namespace or an agent pool (a batch job's GPU pool): the cluster it is in. */
  cluster?: string;
  /** For an image (name `<repository>:<tag>`): its digest, which deleting it goes by. */
  digest?: string;
  /** The owner workflow's id; for an image, what it was found to be (no deployment uses it). */
  owner: string;
  /** The installation that made it (`<Temporal address>/<namespace>`), when it says. */
  environment?: string;
  /** RUNNING, COMPLETED, FAILED, TERMINATED, CANCELLED, TIMED_OUT, … or UNKNOWN (no such workflow). */
  ownerStatus: string;
  /** Why the janitor leaves it alone although its owner is not running here (another installation's). */
  skipReason?: string;
}

export interface JanitorReport {
  dryRun: boolean;
  /** Every resource found that inferctl made. */
  checked: number;
  /** This installation's resources whose owner is closed or unknown. */
  orphans: OwnedResource[];
  /** Resources left alone: another installation's, or with no environment tag and an owner unknown here. */
  skipped: OwnedResource[];
  /** What was deleted (empty on a dry run). */
  deleted: string[];
}

/** How the report names a resource: `cluster x`, `namespace y in cluster x`. */
export function resourceLabel(r: Pick<OwnedResource, 'kind' | 'name' | 'cluster'>): string {
  return `${r.kind} ${r.name}${r.cluster ? ` in cluster ${r.cluster}` : ''}`;
}
