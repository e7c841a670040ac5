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

/** A tagged cloud resource and what Temporal says about the workflow in its owner tag. */
export interface OwnedResource {
  kind: 'cluster' | 'resource group';
  name: string;
  resourceGroup: string;
  owner: string;
  /** RUNNING, COMPLETED, FAILED, TERMINATED, CANCELLED, TIMED_OUT, … or UNKNOWN (no such workflow). */
  ownerStatus: string;
}

export interface JanitorReport {
  dryRun: boolean;
  /** Every tagged resource found. */
  checked: number;
  /** Resources whose owner is closed or unknown. */
  orphans: OwnedResource[];
  /** What was deleted (empty on a dry run). */
  deleted: string[];
}
