/**
 * Types of a batch job whose GPU workers run on an AKS GPU node pool the job adds and always removes
 * (workflows/gpu-pool.ts). Workflow-safe: plain data only; no secret ever travels in them (the Temporal
 * API key and codec keys go from the control worker's environment straight into a Kubernetes Secret).
 */
import type { BatchCarryOver, BatchScoreInput, BatchScriptSpec } from './batch-types';
import type { PreprocessConfig } from './preprocess-types';

export const GPU_POOL_WORKFLOW_TYPE = 'gpuPoolBatchScore';

/** What `inferctl score --target aks` asks for. */
export interface GpuPoolOptions {
  /** The user's AKS cluster the pool is added to (kept standing: only the pool and the pods are removed). */
  cluster: string;
  /** The cluster's resource group (default: the worker's INFERCTL_AKS_RESOURCE_GROUP). */
  resourceGroup?: string;
  /** GPU nodes in the pool, one GPU-worker pod on each. */
  gpuNodes: number;
  /** Default Standard_NC4as_T4_v3 (gpu-sizes.ts). */
  gpuVmSize?: string;
  /** Shards each pod scores at once (default 1: one GPU each). */
  shardsPerWorker?: number;
}

/** Everything the pool's activities need, derived once by the workflow. */
export interface GpuPoolSpec extends GpuPoolOptions {
  jobName: string;
  /** The owning workflow id: tagged on the pool and annotated on the namespace (the janitor's back stop). */
  ownerId: string;
  /** The job's own task queue: only this job's pods poll it. */
  taskQueue: string;
  /** The model (on the control worker) baked into the worker image, with what it is served with. */
  modelPath: string;
  labelsPath?: string;
  preprocess?: PreprocessConfig;
  /** A script job's script (on the control worker), built into the worker image with its environment and the model. */
  script?: BatchScriptSpec;
  /** Where the job reads and writes: the pods get a SAS for exactly these containers (gpu-worker-secrets.ts). */
  storage?: { inputs: string[]; outputs: string[] };
}

export interface GpuPoolBatchInput {
  batch: BatchScoreInput;
  pool: GpuPoolOptions;
  /** How long the pods may take to start polling (default 20 minutes: node start, image pull). */
  readyTimeoutSeconds?: number;
  /** A pool step whose worker stops heartbeating for this long is retried elsewhere (default 60). */
  heartbeatTimeoutSeconds?: number;
  /** How often the pods are polled while they start (default 5). */
  pollIntervalSeconds?: number;
  /** `score resume`: the stopped job's carry-over (its done shards are skipped, its ledger carried on). */
  resume?: BatchCarryOver;
}

/** What the job returns: the batch's outcome (batch-score.ts) and what the pool was and what teardown removed. */
export interface GpuPoolBatchOutcome<Batch> {
  batch: Batch;
  pool: GpuPoolReport;
  /** Set when the budget stopped the job: what `score resume` starts again (with a new budget). */
  resume?: GpuPoolBatchInput;
}

/** What the pool's steps report back: names and counts, for the job's result and the user. */
export interface GpuPoolReport {
  poolName: string;
  vmSize: string;
  nodes: number;
  imageRef?: string;
  /** What teardown removed ("agent pool …", "namespace …"). */
  removed: string[];
  /** Workflow time, ISO 8601: the ledger bills the pool from when it was asked for until its removal finished. */
  billedFrom?: string;
  billedUntil?: string;
}

/** The job's own GPU task queue: derived from the workflow id, so a retry or a new run finds the same one. */
export function gpuPoolTaskQueue(ownerId: string): string {
  return `inferctl-gpu-${ownerId}`;
}
