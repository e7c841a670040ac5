/**
 * The plain data a deployment target takes and returns: what the deploy workflow asks for and what each
 * step reports. Workflow-safe (no Node built-ins); it travels through workflow history. The `Target`
 * interface that acts on it lives with the targets, in `src/targets/target.ts`.
 */

import type { PreprocessConfig } from './preprocess-types';

export type TargetKind = 'local' | 'aks';

/**
 * A deployment of the user's own scoring script (`--entry-script`), run by Microsoft's
 * azureml-inference-server-http behind inferctl's front (src/script/). Paths are absolute, on the workers'
 * filesystem; the model is `DeployInput.modelPath` (a file or a folder).
 */
export interface ScriptSpec {
  /** The entry script (score.py): init() and run(). */
  entryScript: string;
  /** The folder copied with it (its imports, files); default: the entry script's folder. */
  sourceDir?: string;
  /** A requirements file or a conda environment file (.yml/.yaml); left out, the server alone. */
  environmentFile?: string;
  /** The name Model.get_model_path(name) finds it by; default: the model file or folder name. */
  modelName?: string;
  /** Its version under azureml-models/<name>/ (default 1). */
  modelVersion?: string;
  /** aks: a CUDA base image (src/targets/aks/script-image.ts) rather than the official Python one. */
  gpu?: boolean;
  /**
   * Set by the worker, never by a caller: the local copy of an az:// model (under the worker's blob cache),
   * which the image step reads instead of modelPath. Refused in any input (src/script/model-tree.ts).
   */
  modelCopy?: string;
}

/** What the deploy workflow asks a target to run. Plain data: it travels through workflow history. */
export interface DeploymentSpec {
  /** Deployment name, DNS-label safe; also the resource name prefix. */
  name: string;
  /** Which target runs it; activities route on this. */
  target: TargetKind;
  /** The workflow id that owns every resource (tagged on cloud resources; recorded on disk locally). */
  ownerId: string;
  /** Absolute path to the ONNX model on the worker's filesystem. */
  modelPath: string;
  replicas: number;
  /** Top-k labels each response returns. */
  topK: number;
  /** The deployment's own preprocessing spec (--preprocess), over the model's sidecar and metadata. */
  preprocess?: PreprocessConfig;
  /** The deployment's own labels file (--labels, absolute, on the worker), over the model's labels. */
  labelsPath?: string;
  /** 'v2': a model that is not an image classifier, served on the Open Inference Protocol only (--v2-only). */
  protocol?: 'v2';
  /** The user's scoring script: replicas run it in azureml-inference-server-http behind inferctl's front. */
  script?: ScriptSpec;
  /** Choices for the aks target; ignored by others. */
  aks?: AksDeploymentOptions;
  /**
   * Scale to zero: the endpoint stays while no replica runs and holds requests this long (seconds) for a
   * replica to wake, then answers 503 with Retry-After.
   */
  hold?: { wakeTimeoutSeconds: number };
  /**
   * Autoscaling on aks: the GPU pool follows the replicas. A deploy only grows the pool to what its replicas
   * need; the autoscaler shrinks it (Target.fitGpuPool) once the replicas it no longer needs are gone.
   */
  gpuPoolFollows?: true;
}

/** What an autoscaled deployment asks of the GPU pool: room for `replicas`, within `maxNodes`. */
export interface GpuPoolWant {
  replicas: number;
  /** --max-gpu-nodes; left out, what `maxReplicas` replicas need. */
  maxNodes?: number;
  maxReplicas: number;
  /** Never fewer nodes than these replicas need (--min-replicas; 0 with scale to zero). */
  minReplicas: number;
}

/** The GPU pool after a fit: its nodes before and now, and how many replicas it has room for. */
export interface GpuPoolFit {
  previousNodes: number;
  nodes: number;
  gpusPerNode: number;
  /** The most nodes it may grow to (--max-gpu-nodes, or what --max-replicas need). */
  maxNodes: number;
  /** Replicas the pool has room for now (one GPU each). */
  room: number;
  /** Why it did not grow as far as the replicas asked ("quota: …", "--max-gpu-nodes 2"); none when it did. */
  held?: string;
  /** False on a cluster inferctl did not create (--cluster): its pool is the user's, never scaled. */
  managed: boolean;
}

/** What a user may choose per AKS deployment (the rest comes from the worker's environment). */
export interface AksDeploymentOptions {
  /** Deploy into this existing cluster instead of creating one; it is never deleted. */
  cluster?: string;
  /** Resource group for the cluster (default: the worker's INFERCTL_AKS_RESOURCE_GROUP). */
  resourceGroup?: string;
  /** Create the resource group when it does not exist (and delete it at teardown, since we made it). */
  createResourceGroup?: boolean;
  /** VM size of the GPU node pool; default Standard_NC4as_T4_v3 (one T4 per node). */
  gpuVmSize?: string;
  /** GPU nodes; default one per replica. */
  gpuNodeCount?: number;
  /**
   * Put the Service on an internal load balancer (a private address in the cluster's VNet), not a public
   * IP. Plain HTTP inside the VNet unless given a certificate (tlsSecret or tlsCertPath/tlsKeyPath).
   */
  internal?: boolean;
  /** Serve plain HTTP on the public IP (the key travels in clear). Without it a public endpoint is HTTPS. */
  insecureHttp?: boolean;
  /** The user's certificate: a kubernetes.io/tls Secret already in the deployment's namespace (--cluster only). */
  tlsSecret?: string;
  /** The user's certificate chain and key, PEM files on the worker's filesystem (absolute paths, never contents). */
  tlsCertPath?: string;
  tlsKeyPath?: string;
  /** `--allow-from`: the client address ranges (CIDR) the load balancer admits; left out, any address. */
  allowFrom?: string[];
}

/** How an HTTPS endpoint is to be trusted: public facts only (no key), shown by the CLI. */
export interface EndpointTls {
  /** Who made the certificate: inferctl at provision (a one-use CA per deployment), or the user. */
  source: 'deployment-ca' | 'user-certificate';
  /** The host name the certificate is for: what clients must connect by. */
  hostname: string;
  /** SHA-256 fingerprint (AB:CD:…) of what to trust: the deployment's CA, or the user's certificate. */
  fingerprint: string;
  /** The deployment's CA certificate (PEM), for clients to trust; only for source 'deployment-ca'. */
  caPem?: string;
  /** When the server certificate expires (ISO 8601). */
  notAfter: string;
  /** When the server certificate became valid (ISO 8601): with notAfter, when it is renewed. */
  notBefore?: string;
}

/** What a certificate renewal did (`Target.renewCertificate`); public facts only. */
export interface CertificateRenewal {
  /**
   * renewed: a new certificate serves now; current: the one served was not due, nothing changed (the pods
   * were moved onto it if a previous attempt had not); user-certificate: the user's own, never touched;
   * none: plain HTTP.
   */
  outcome: 'renewed' | 'current' | 'user-certificate' | 'none';
  /** The certificate that serves now. */
  tls?: EndpointTls;
  /** The Deployments restarted onto it (rolling). */
  restarted: string[];
}

export interface ProvisionResult {
  /** Human-readable cluster identifier (a directory for local, an ARM id for aks). */
  clusterId: string;
  /** True when this deployment created the cluster (and so may delete it). */
  created: boolean;
  /** Where the endpoint key lives (a 0600 file for local, a Kubernetes Secret for aks); never the key. */
  secretRef: string;
  /** An HTTPS endpoint's trust (aks): made or checked at provision, so the CLI can show it before serving. */
  tls?: EndpointTls;
}

export interface ImageResult {
  /** Image reference (local: bundle path; aks: registry/repo:tag). */
  imageRef: string;
  /** sha256 of the image's contents; the tag. */
  digest: string;
  /** True when an image with this digest already existed and nothing was built. */
  reused: boolean;
}

export interface DeployResult {
  /** How many replicas were started by this call (0 when all were already running). */
  started: number;
  /** How many replicas are meant to run. */
  replicas: number;
  /** aks, when the deploy scaled the GPU pool (scale to zero, autoscaling): its node count now. */
  gpuNodes?: number;
}

export interface ReadinessReport {
  ready: boolean;
  readyReplicas: number;
  desiredReplicas: number;
  /** Why it is not ready yet, in words a user can act on. */
  reason?: string;
  /** True when waiting longer cannot help (a replica crashed on start, an image cannot be pulled). */
  fatal?: boolean;
  /** Base URL clients use (POST `${endpoint}/score`), once known. */
  endpoint?: string;
  /** Replica URLs when the target exposes them (local), else empty. */
  replicaUrls: string[];
}

export interface TeardownReport {
  /** What was removed, e.g. ['replica pid 1234', 'bundle sha256:…']; empty when nothing was left. */
  removed: string[];
}
