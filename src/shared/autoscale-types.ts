/**
 * Autoscaling (`--target-concurrency`): the replicas follow the load between `--min-replicas` and
 * `--max-replicas`, as the Kubernetes HPA scales a Deployment. What the deploy input carries, what one
 * reading of the endpoint's counters holds, and what `status` shows of each decision.
 */

/** `--min-replicas A --max-replicas B --target-concurrency C` and the HPA-like timings. */
export interface AutoscaleInput {
  /** The fewest replicas; 0 with scale to zero (then a wake brings it to 1 and autoscale takes it from there). */
  minReplicas: number;
  maxReplicas: number;
  /** Requests in flight (answered or queued) per replica it aims for. */
  targetConcurrency: number;
  /** How long each reading of the counters lasts (the HPA's sync period). */
  periodSeconds: number;
  /** A scale up takes the lowest recommendation over this window (the HPA's default: 0, at once). */
  scaleUpWindowSeconds: number;
  /** A scale down takes the highest recommendation over this window (the HPA's default: 300 s). */
  scaleDownWindowSeconds: number;
  /** No change while observed/target is within 1 ± tolerance (the HPA's default: 0.1). */
  tolerance: number;
  /** aks, --max-gpu-nodes: the most nodes the GPU pool may grow to (default: what --max-replicas need). */
  maxGpuNodes?: number;
}

/** The defaults, the HPA's own: a 15 s sync period, up at once, down after 5 minutes, a 10 % tolerance. */
export const AUTOSCALE_DEFAULTS = {
  periodSeconds: 15,
  scaleUpWindowSeconds: 0,
  scaleDownWindowSeconds: 300,
  tolerance: 0.1,
} as const;

/** One reading of the endpoint's counters over a period: its in-flight gauge, sampled. */
export interface LoadReading {
  /** Samples that answered; 0 when the counters could not be read. */
  samples: number;
  /** Requests in flight at the endpoint (at the replicas or queued for one), averaged over the samples. */
  meanInFlight: number;
  maxInFlight: number;
  /** Scoring requests the endpoint received during the reading. */
  requests: number;
  /** How long the reading lasted. */
  seconds: number;
}

/** A recommendation kept for the stabilisation windows (workflow time, ms since the epoch). */
export interface Recommendation {
  atMs: number;
  replicas: number;
}

/** One decision: what was read, what it recommended, what was done and why. */
export interface AutoscaleDecision {
  /** Workflow time, ISO 8601. */
  at: string;
  /** Replicas when the reading began, and after the decision. */
  from: number;
  to: number;
  /** ceil(from × observed / target) within the bounds, before the stabilisation windows. */
  recommended: number;
  /** Mean requests in flight per replica over the reading. */
  perReplica: number;
  reading: LoadReading;
  /** The decision in a sentence: the counters, the rule that decided. */
  reason: string;
  /** aks: the GPU pool's nodes before and after, and why it did not grow as asked (quota, --max-gpu-nodes). */
  nodes?: { from: number; to: number; held?: string };
}

/** aks: the GPU pool as autoscaling last left it. */
export interface GpuPoolStatus {
  nodes: number;
  maxNodes: number;
  gpusPerNode: number;
  grown: number;
  shrunk: number;
  /** Why it is held short of what the replicas asked (its latest refusal); none once it grew as asked. */
  held?: string;
  /** False on an adopted cluster (--cluster): its pool is the user's and is never scaled. */
  managed: boolean;
}

/** What `status` shows of autoscaling: the bounds and timings, the latest decisions, the windows' memory. */
export interface AutoscaleStatus extends AutoscaleInput {
  /** The most recent decisions, oldest first (at most AUTOSCALE_DECISIONS_KEPT). */
  decisions: AutoscaleDecision[];
  /** The recommendations within the longer window, for the stabilisation (carried over continue-as-new). */
  recommendations: Recommendation[];
  scaledUp: number;
  scaledDown: number;
  /** aks: the GPU pool, once autoscaling has fitted it. */
  gpuPool?: GpuPoolStatus;
}

export const AUTOSCALE_DECISIONS_KEPT = 10;

/** The `autoscale` Update (`inferctl scale NAME --min-replicas A --max-replicas B [--target-concurrency C]`). */
export interface AutoscaleRequest {
  minReplicas?: number;
  maxReplicas?: number;
  targetConcurrency?: number;
}

/** Its answer: the bounds now, and the replicas (moved into the bounds if they were outside). */
export interface AutoscaleResult {
  minReplicas: number;
  maxReplicas: number;
  targetConcurrency: number;
  replicas: number;
  previousReplicas: number;
}
