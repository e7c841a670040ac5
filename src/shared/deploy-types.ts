/**
 * Types and constants the deploy workflow, its activities, the CLI and tests share.
 * Workflow-safe: no Node built-ins, plain data only (everything here travels through history).
 */
import type { PreprocessConfig } from './preprocess-types';
import type { AksDeploymentOptions, DeploymentSpec, EndpointTls, TargetKind } from './target-types';

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

export interface DeployStatus {
  name: string;
  target: TargetKind;
  stage: DeployStage;
  replicas: number;
  endpoint?: string;
  replicaUrls?: string[];
  /** Where the endpoint key is kept (never the key itself). */
  apiKeyRef?: string;
  /** How to trust an HTTPS endpoint (its CA or certificate fingerprint, host name). */
  tls?: EndpointTls;
  modelDigest?: string;
  imageRef?: string;
  smoke?: SmokeResult;
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
