/**
 * Types and constants the deploy workflow, its activities, the CLI and tests share.
 * Workflow-safe: no Node built-ins, plain data only (everything here travels through history).
 */
import type { MirrorReport, MirrorRequest } from './mirror-types';
import type { CostInput, CostLedger, CostSummary } from './cost-types';
import type { AutoscaleInput, AutoscaleStatus } from './autoscale-types';
import type { CertificateStatus } from './certificate-renewal';
import type { PreprocessConfig } from './preprocess-types';
import type { AksDeploymentOptions, DeploymentSpec, EndpointTls, ScriptSpec, TargetKind } from './target-types';
import type { GatewayWatchStatus } from './gateway-watch-types';

export const CONTROL_TASK_QUEUE = 'inferctl-control';
export const DEPLOY_WORKFLOW_TYPE = 'deploy';

/** Bounds the deploy workflow enforces before anything is created. */
export const REPLICA_LIMITS: Record<TargetKind, number> = { local: 16, aks: 100 };

/** A deployment name becomes a workflow id, a directory and a cloud resource name. */
export const DEPLOYMENT_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/;

export const deployWorkflowId = (name: string): string => `deploy-${name}`;

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
export type DeployProtocol = 'classifier' | 'v2' | 'script';

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

/**
 * The smoke query of a script deployment: the sample's bytes POSTed to /score (without the key: 401; with
 * it: `expectStatus`) and at most one check of the answer.
 */
export interface ScriptSmokeSpec {
  /** Absolute path to the sample (any bytes: a JPEG, a JSON document). */
  samplePath: string;
  /** The Content-Type sent with it; default from the file's extension. */
  contentType?: string;
  /** Default 200. */
  expectStatus?: number;
  /** The top-1 label of a classifier-shaped answer. */
  expectLabel?: string;
  /** A JSON path (`predictions.0.label`, `$.label`) and the value it must hold (JSON, or a bare string). */
  expectJson?: { path: string; value: string };
  /** Text the answer's body must contain. */
  expectContains?: string;
}

export interface ScriptSmokeResult {
  status: number;
  latencyMs: number;
  contentType?: string;
  /** The first 200 characters of the answer. */
  excerpt: string;
  /** What was checked, in a phrase. */
  checked?: string;
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
  /** How long to serve after the smoke query before tearing down; null serves until teardown (`--ttl none`). */
  ttlSeconds: number | null;
  /**
   * Tear down after this long without a scoring request (`--idle-ttl`), read from the replicas' own request
   * counters; on top of the TTL, whichever ends first.
   */
  idleTtlSeconds?: number;
  topK?: number;
  /** `--min-replicas 0`: the replicas go to zero when unused and wake on the next request (local target). */
  scaleToZero?: ScaleToZeroInput;
  /** The price table the ledger uses, and `--budget` (docs/costs.md); left out, the shipped table and no budget. */
  cost?: CostInput;
  /** `--target-concurrency`: the replicas follow the load within `--min-replicas`/`--max-replicas` (autoscale.ts). */
  autoscale?: AutoscaleInput;
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
  /** The user's scoring script (--entry-script): served by azureml-inference-server-http, not an ONNX model. */
  script?: ScriptSpec;
  /** A script deployment's smoke query (--smoke-sample with --expect-*); instead of `smoke`. */
  scriptSmoke?: ScriptSmokeSpec;
  /** The V2 smoke query (--smoke-request, --smoke-expect); instead of `smoke`. */
  smokeRequest?: V2SmokeSpec;
  /** --protocol; left out, validate decides from the model (an image classifier, or V2 only). */
  protocol?: DeployProtocol;
  timings?: DeployTimings;
  /** Choices for the aks target (cluster, resource group, GPU pool). */
  aks?: AksDeploymentOptions;
  /**
   * While serving, continue as new once a run's history holds this many events (default 10,000, or sooner
   * when the server suggests it; at least 50). Tests set it low; no CLI flag.
   */
  historyEventsPerRun?: number;
}

/** `--min-replicas 0 --max-replicas N [--scale-down-after 10m] [--wake-timeout 15m]`. */
export interface ScaleToZeroInput {
  /** The most replicas it may run; a wake starts one. */
  maxReplicas: number;
  /** Replicas go to zero after this long without a scoring request. */
  scaleDownAfterSeconds: number;
  /** How long the endpoint holds a request while the replicas wake, before it answers 503 with Retry-After. */
  wakeTimeoutSeconds: number;
}

export const SCALE_TO_ZERO_DEFAULTS = { scaleDownAfterSeconds: 600, wakeTimeoutSeconds: 900 } as const;

/** Where a deployment that scales to zero stands: no replica (cold), starting one (waking), serving (warm). */
export interface ScaleToZeroStatus {
  state: 'cold' | 'waking' | 'warm';
  minReplicas: 0;
  maxReplicas: number;
  scaleDownAfterSeconds: number;
  wakeTimeoutSeconds: number;
  /** Wakes so far. */
  wakes: number;
  /** When the last wake began (the first held request seen), ISO 8601, and how long until a replica was ready. */
  lastWakeAt?: string;
  lastWakeMs?: number;
  /** The requests the gateway was holding when the last wake began. */
  lastWakeHeld?: number;
  /** When the replicas last went to zero, ISO 8601. */
  coldSince?: string;
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
  /** How to trust an HTTPS endpoint (its CA or certificate fingerprint, host name). */
  tls?: EndpointTls;
  /** An HTTPS endpoint's certificate while serving: when it expires, when it is renewed, the last renewal. */
  certificate?: CertificateStatus;
  modelDigest?: string;
  imageRef?: string;
  smoke?: SmokeResult;
  /** How the replicas serve the model, once validate has decided. */
  protocol?: DeployProtocol;
  /** The model's name on the Open Inference Protocol: POST {endpoint}/v2/models/{v2ModelName}/infer. */
  v2ModelName?: string;
  /** The V2 smoke query's answer. */
  v2Smoke?: V2SmokeResult;
  /** A script deployment's smoke answer. */
  scriptSmoke?: ScriptSmokeResult;
  /** When the TTL ends (ISO 8601), while serving. */
  expiresAt?: string;
  /** While serving: what ends it, in a sentence ("the TTL at …", "30m without a scoring request", "teardown only"). */
  endsBecause?: string;
  /** With `--min-replicas 0`: cold, waking or warm, and the last wake. */
  scaleToZero?: ScaleToZeroStatus;
  /** With `--target-concurrency`: the bounds, and the latest decisions with the counters they read. */
  autoscale?: AutoscaleStatus;
  /** local: the endpoint's gateway started again while serving, when it was found gone (the gateway watch). */
  gateway?: GatewayWatchStatus;
  /** aks: the GPU pool's node count, once a scale has set it (the ledger bills these nodes). */
  gpuNodes?: number;
  /** The idle TTL the deployment was started with (seconds), when it has one. */
  idleTtlSeconds?: number;
  /** Every version that has served, oldest first: the one serving has no `until`. */
  versions?: ServedVersion[];
  /** A rollout in progress. */
  rollout?: {
    modelPath: string;
    stage: string;
    canaryPercent: number;
    modelDigest?: string;
    /** A mirror rollout: the share mirrored, and the comparison so far. */
    mirrorPercent?: number;
    mirror?: MirrorReport;
  };
  steps: StepRecord[];
  lastError?: string;
  teardownRemoved?: string[];
  /** What it has billed, resource by resource (src/shared/cost-ledger.ts), and the sum when the status was published. */
  ledger?: CostLedger;
  cost?: CostSummary;
}

export type { CertificateStatus };

export interface DeployOutcome extends DeployStatus {
  /** Why serving ended: the TTL ran out, a teardown request (Update or legacy signal), or no requests for the idle TTL. */
  endedBy: 'ttl' | 'signal' | 'idle' | 'budget';
}

export interface ExtendTtlRequest {
  /** Keep serving for this many seconds from now (never shortens the current TTL). */
  seconds: number;
}

export interface TeardownRequest {
  reason?: string;
}

/** The `extend` Update's answer. */
export interface ExtendResult {
  /** The new end of the TTL (ISO 8601), once serving. */
  expiresAt?: string;
  /** Before serving: the TTL the deployment will serve once it is ready. */
  ttlSeconds?: number;
}

/** The `teardownNow` Update's answer, once teardown has run. */
export interface TeardownResult {
  removed: string[];
}

export interface ScaleRequest {
  replicas: number;
}

/** The `scale` Update's answer, once every replica is ready. */
export interface ScaleResult {
  replicas: number;
  previousReplicas: number;
  replicaUrls: string[];
  endpoint?: string;
}

/** One version of the model that served (or, as a canary, served part of the traffic). */
export interface ServedVersion {
  modelPath: string;
  modelDigest?: string;
  /** ISO 8601, workflow time. */
  from: string;
  until?: string;
  /** How it stopped serving: replaced by the next version, or rolled back (with why). */
  ended?: string;
}

export interface RolloutRequest {
  /** Absolute path to the new model on the workers' filesystem. */
  modelPath: string;
  /** The preprocessing spec (as --preprocess); default: the deployment's own. */
  preprocess?: PreprocessConfig;
  /** Absolute path to a labels file; default: the deployment's own. */
  labelsPath?: string;
  /** The percentage of requests the new version gets during its bake (1-100, default 10). */
  canaryPercent?: number;
  /** How long the canary serves its share before it replaces the old version (default 300 s). */
  bakeSeconds?: number;
  /** The largest error rate (5xx / requests) the canary may show during its bake (default 0.01). */
  maxErrorRate?: number;
  /** The smoke query the new version must pass first; default: the deployment's own. */
  smoke?: SmokeSpec;
  /**
   * A scoring-script candidate's smoke query and its expectation (`--smoke-sample` with `--expect-*`),
   * passed on every candidate replica before any traffic; default: the deployment's own when it is a script.
   */
  scriptSmoke?: ScriptSmokeSpec;
  /**
   * The new version is a scoring script (`rollout --entry-script`), with `modelPath` the file or folder it
   * loads. Left out, the new version is served by inferctl's own ONNX server, whatever serves now.
   */
  script?: ScriptSpec;
  /**
   * Instead of a canary: the serving version alone answers clients, and a share of its requests is also sent
   * to the candidate and the answers compared; promoted only when they agree (`--mirror --compare`).
   */
  mirror?: MirrorRequest;
  /**
   * The new version is inferctl's ONNX server even on a script deployment (`rollout --onnx-server`). Left out
   * (and no `script`), the new version is of the serving kind: a script deployment keeps its script.
   */
  onnxServer?: boolean;
}

export const ROLLOUT_DEFAULTS = { canaryPercent: 10, bakeSeconds: 300, maxErrorRate: 0.01 } as const;

/** The `rollout` Update's answer once the new version serves alone. */
export interface RolloutResult {
  modelDigest?: string;
  previousModelDigest?: string;
  /** What the canary answered during its bake (a mirror: the pairs compared, and those the candidate left unanswered). */
  bake: { requests: number; errors: number };
  /** A mirror rollout's comparison. */
  mirror?: MirrorReport;
  versions: ServedVersion[];
}

/** Update names, in one place for the CLI, the tests and the workflow. */
export const DEPLOY_UPDATES = {
  extend: 'extend',
  teardown: 'teardownNow',
  scale: 'scale',
  attach: 'attach',
  rollout: 'rollout',
  autoscale: 'autoscale',
} as const;
export type { AksDeploymentOptions, DeploymentSpec, ScriptSpec, TargetKind };
