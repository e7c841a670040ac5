/**
 * Types and constants the deploy workflow, its activities, the CLI and tests share.
 * Workflow-safe: no Node built-ins, plain data only (everything here travels through history).
 */
import type { PreprocessConfig } from './preprocess-types';
import type { AksDeploymentOptions, DeploymentSpec, TargetKind } from './target-types';

export const CONTROL_TASK_QUEUE = 'inferctl-control';
export const DEPLOY_WORKFLOW_TYPE = 'deploy';

/** Bounds the deploy workflow enforces before anything is created. */
export const REPLICA_LIMITS: Record<TargetKind, number> = { local: 16, aks: 100 };

/** A deployment name becomes a workflow id, a directory and a cloud resource name. */
export const DEPLOYMENT_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/;

export function deployWorkflowId(name: string): string {
  return `deploy-${name}`;
}

export interface SmokeSpec {
  /** Absolute path to a sample image on the worker's filesystem. */
  samplePath: string;
  /** When given, the smoke query fails unless this is the top-1 label. */
  expectedLabel?: string;
}

/**
 * How a deployment's replicas serve the model: `classifier` (an image classifier: POST /score, and the
 * Open Inference Protocol next to it) or `v2` (any ONNX model, on the /v2 routes only).
 */
export type DeployProtocol = 'classifier' | 'v2';

/**
 * The smoke query of the Open Inference Protocol (KServe V2): a request sent to /v2/models/{name}/infer
 * through the endpoint with the key, and the outputs it must answer. Files on the worker's filesystem,
 * like the sample image; validate reads and checks both against the model before anything is created.
 */
export interface V2SmokeSpec {
  /** Absolute path to a V2 inference request (JSON: {"inputs":[{"name","datatype","shape","data"}…]}). */
  requestPath: string;
  /** Absolute path to the expected outputs (JSON: {"outputs":[{"name","data"[, "datatype", "shape"]}…]}). */
  expectPath?: string;
  /**
   * Floating-point elements pass when |answer − expected| ≤ tolerance × max(1, |expected|): absolute
   * below 1, relative above (default V2_SMOKE_TOLERANCE). Integers and BOOL must be equal.
   */
  tolerance?: number;
}

/** A model's name on the Open Inference Protocol (/v2/models/{name}): its file name without `.onnx`. */
export function v2ModelName(modelPath: string): string {
  return (modelPath.split(/[\\/]/).pop() ?? modelPath).replace(/\.onnx$/i, '');
}

/** The default `V2SmokeSpec.tolerance`. */
export const V2_SMOKE_TOLERANCE = 1e-5;

/** Durations in seconds, each overriding the target's default in `TARGET_TIMINGS` (deploy-timings.ts). */
export interface DeployTimings {
  /** How long waitForDeployment may wait for every replica to be ready. */
  readyTimeoutSeconds?: number;
  /** Heartbeat timeout of the long activities: how fast a dead worker is noticed. */
  heartbeatTimeoutSeconds?: number;
  /** How often the wait step checks readiness. */
  readinessPollSeconds?: number;
}

export interface DeployInput {
  name: string;
  /** Absolute path to the ONNX model on the workers' filesystem. */
  modelPath: string;
  target: TargetKind;
  replicas: number;
  /** How long to serve after the smoke query before tearing down. */
  ttlSeconds: number;
  topK?: number;
  /**
   * The preprocessing spec given with --preprocess (a preset name expanded to `{ preset }`, or the file's
   * JSON), as plain data: validated against the model at validate, kept in the deployment's bundle.
   */
  preprocess?: PreprocessConfig;
  /**
   * Absolute path, on the workers' filesystem like modelPath, to a labels file given with --labels (one
   * per line, in output order): over the model's own. The bundle keeps a copy.
   */
  labelsPath?: string;
  smoke?: SmokeSpec;
  /** The V2 smoke query (--smoke-request, --smoke-expect); instead of `smoke`. */
  smokeRequest?: V2SmokeSpec;
  /** --protocol; left out, validate decides from the model (an image classifier, or V2 only). */
  protocol?: DeployProtocol;
  timings?: DeployTimings;
  /** Choices for the aks target (cluster, resource group, GPU pool). */
  aks?: AksDeploymentOptions;
}

/** Every stage of a deployment, in the order a successful one passes through them (then the two ends). */
export const DEPLOY_STAGES = [
  'validating',
  'provisioning',
  'building',
  'deploying',
  'waiting',
  'smoke-testing',
  'serving',
  'tearing-down',
  'done',
  'failed',
  'cancelled',
] as const;

export type DeployStage = (typeof DEPLOY_STAGES)[number];

export interface StepRecord {
  step: string;
  /** Workflow time, ISO 8601. */
  startedAt: string;
  durationMs?: number;
  ok?: boolean;
  detail?: string;
}

export interface Prediction {
  label: string;
  score: number;
}

export interface SmokeResult {
  predictions: Prediction[];
  latencyMs: number;
}

/** One output of a V2 smoke answer; `maxDifference` when it was compared with an expected tensor. */
export interface V2SmokeOutput {
  name: string;
  datatype: string;
  shape: number[];
  maxDifference?: number;
}

export interface V2SmokeResult {
  /** The model's name in /v2/models/{name}. */
  modelName: string;
  outputs: V2SmokeOutput[];
  latencyMs: number;
}

export interface DeployStatus {
  name: string;
  target: TargetKind;
  stage: DeployStage;
  replicas: number;
  endpoint?: string;
  replicaUrls?: string[];
  /** Where the endpoint key is kept (never the key itself). */
  apiKeyRef?: string;
  modelDigest?: string;
  imageRef?: string;
  smoke?: SmokeResult;
  /** How the replicas serve the model, once validate has decided. */
  protocol?: DeployProtocol;
  /** The model's name on the Open Inference Protocol: POST {endpoint}/v2/models/{v2ModelName}/infer. */
  v2ModelName?: string;
  /** The V2 smoke query's answer. */
  v2Smoke?: V2SmokeResult;
  /** When the TTL ends (ISO 8601), while serving. */
  expiresAt?: string;
  steps: StepRecord[];
  lastError?: string;
  teardownRemoved?: string[];
}

export interface DeployOutcome extends DeployStatus {
  /** Why serving ended: the TTL ran out, or a teardown signal arrived. */
  endedBy: 'ttl' | 'signal';
}

export interface ExtendTtlRequest {
  /** Keep serving for this many seconds from now (never shortens the current TTL). */
  seconds: number;
}

export interface TeardownRequest {
  reason?: string;
}

export type { AksDeploymentOptions, DeploymentSpec, TargetKind };
