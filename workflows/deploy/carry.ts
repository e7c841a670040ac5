/**
 * What a serving deployment carries into its next run when it continues as new (continue-as-new.ts): the
 * whole state its handlers and its wait read, so that the next run resumes serving where this one stood.
 * Plain data, in the next run's input.
 */
import type { DeployStatus, DeploymentSpec } from '../../src/shared/deploy-types';
import type { ImageResult } from '../../src/shared/target-types';

/** Where the serving period stood: its TTL and deadline, and whether the expiry warning was logged. */
export interface ServingCarry {
  /** The TTL, as extended before serving; null for `--ttl none`. */
  ttlSeconds: number | null;
  /** When serving ends by the TTL (ms since the epoch, workflow time). */
  expiresAtMs?: number;
  /** The deadline the expiry warning was logged for. */
  warnedFor?: number;
}

export interface DeployCarryOver {
  /** What runs: replicas, model, protocol, owner (the same workflow id). */
  spec: DeploymentSpec;
  /** The image the replicas run. */
  image: ImageResult;
  /** Endpoint, key reference, TLS, versions, steps: what the `status` query answers. */
  status: DeployStatus;
  serving: ServingCarry;
  /** Counted as served (the metric): the last run counts it torn down. */
  counted: boolean;
  /** Runs before this one (the first run is 0). */
  continuedRuns: number;
}
