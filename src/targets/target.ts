/**
 * The target interface: where a deployment's "cluster", "image" and replicas live.
 * `local` runs real scoring-server processes on loopback; `aks` drives Azure and Kubernetes.
 * Every method is idempotent: it is called from Temporal activities that may be retried at any point.
 * Secrets (the endpoint's API key, cluster credentials) never leave the target through these results.
 */

import type {
  DeployResult,
  DeploymentSpec,
  ImageResult,
  ProvisionResult,
  ReadinessReport,
  TargetKind,
  TeardownReport,
} from '../shared/target-types';

/** Credentials for calling the endpoint; only ever used inside an activity, never returned from one. */
export interface EndpointAccess {
  endpoint: string;
  apiKey: string;
  /** Connect here (the load balancer's IP) instead of resolving the endpoint's host name. */
  connectTo?: string;
  /** How an HTTPS endpoint is verified: nothing but these anchors is trusted (see endpoint-request.ts). */
  tls?: PinnedTls;
}

/** The trust an HTTPS endpoint is held to: pinned, not the system's roots. */
export interface PinnedTls {
  /** Trust anchors (PEM): the deployment's own CA, or the user's certificate (chain) itself. */
  ca: string;
  /** The name the server's certificate must carry. */
  servername: string;
  /** Accept an anchor that is not self-signed (a user's leaf or intermediate certificate, pinned). */
  partialChain?: boolean;
}

/**
 * What a long step is doing now, in a line ("creating cluster inferctl-x: running, 4m10s"). The
 * activity heartbeats the latest one as `{ progress }`, which the Web UI shows under the pending activity.
 */
export type StepProgress = (detail: string) => void;

export interface Target {
  readonly kind: TargetKind;
  /**
   * `firstAttemptAt` (ms since the epoch) is when the step's first attempt was scheduled: a deadline on
   * provisioning counts from it, so a retried attempt never restarts the clock.
   */
  provision(
    spec: DeploymentSpec,
    signal?: AbortSignal,
    progress?: StepProgress,
    firstAttemptAt?: number,
  ): Promise<ProvisionResult>;
  buildImage(spec: DeploymentSpec, signal?: AbortSignal, progress?: StepProgress): Promise<ImageResult>;
  deploy(
    spec: DeploymentSpec,
    image: ImageResult,
    signal?: AbortSignal,
    progress?: StepProgress,
  ): Promise<DeployResult>;
  checkReadiness(spec: DeploymentSpec, signal?: AbortSignal): Promise<ReadinessReport>;
  endpointAccess(spec: DeploymentSpec): Promise<EndpointAccess>;
  teardown(spec: DeploymentSpec, signal?: AbortSignal, progress?: StepProgress): Promise<TeardownReport>;
}
