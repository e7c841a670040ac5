/**
 * The target interface: where a deployment's "cluster", "image" and replicas live.
 * `local` runs real scoring-server processes on loopback; `aks` drives Azure and Kubernetes.
 * Every method is idempotent: it is called from Temporal activities that may be retried at any point.
 * Secrets (the endpoint's API key, cluster credentials) never leave the target through these results.
 */

import type { MirrorCompare, MirrorReport } from '../shared/mirror-types';
import type {
  CertificateRenewal,
  DeployResult,
  DeploymentSpec,
  GpuPoolFit,
  GpuPoolWant,
  ImageResult,
  ProvisionResult,
  ReadinessReport,
  TargetKind,
  TeardownReport,
} from '../shared/target-types';
import type { GatewayRevival } from '../shared/gateway-watch-types';

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

/** The replicas' own counters of scoring requests (POST /score and V2 infer), summed over the replicas that answered. */
export interface RequestCounts {
  /** Answers of every status. */
  total: number;
  /** Answers with a 5xx status. */
  errors: number;
  /** Replicas whose counters were read. */
  replicasRead: number;
}

/** The endpoint's own counters, which stay while no replica runs. A restarted endpoint counts from zero. */
export interface GatewayCounts {
  /** Scoring requests (POSTs) received. */
  scoringTotal: number;
  /** Received and not answered yet (held ones included). */
  inFlight: number;
  /** Waiting now for a replica. */
  held: number;
  /** Ever held, ever answered after waiting, ever refused with 503 (wake timeout or queue full). */
  heldTotal: number;
  heldAnsweredTotal: number;
  heldRefusedTotal: number;
}

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
  /**
   * Reads the replicas' request counters (their /metrics). Optional: a target without it cannot serve an idle
   * TTL, and validation says so before anything is created. A replica that restarted counts from zero again.
   */
  requestCount?(spec: DeploymentSpec, signal?: AbortSignal): Promise<RequestCounts>;
  /**
   * Reads the endpoint's own counters (scale to zero: requests held while no replica runs). Optional: a
   * target without it cannot scale to zero, and validation says so. Read without the endpoint's key.
   */
  gatewayCounts?(spec: DeploymentSpec, signal?: AbortSignal): Promise<GatewayCounts>;
  /**
   * The serving loop's gateway watch: starts the endpoint's gateway again on its address when it is gone.
   * Optional: a target whose endpoint is restarted by its platform (aks: the front's ReplicaSet) has none.
   */
  reviveGateway?(spec: DeploymentSpec, signal?: AbortSignal): Promise<GatewayRevival>;

  /**
   * Autoscaling: grows the GPU pool to the nodes `want.replicas` need (within its maximum; a quota refusal
   * holds it where it is and says so), or shrinks it to them once the scoring pods beyond them are gone.
   * Optional: a target without a GPU pool (local) does not have it.
   */
  fitGpuPool?(
    spec: DeploymentSpec,
    want: GpuPoolWant,
    signal?: AbortSignal,
    progress?: StepProgress,
  ): Promise<GpuPoolFit>;

  /**
   * Renews the endpoint's per-deployment certificate when a third of its life is left, and moves the pods
   * that serve it onto the new one without dropping requests; the user's own certificate is never touched.
   * Optional: a target without it has no certificate of its own to renew (local serves plain HTTP on loopback).
   */
  renewCertificate?(spec: DeploymentSpec, signal?: AbortSignal, progress?: StepProgress): Promise<CertificateRenewal>;

  /**
   * Blue/green on one endpoint (optional; a target without it cannot roll out): a candidate replica set
   * beside the serving one, its readiness and counters, the share of traffic the endpoint sends it, and
   * its removal. Promotion is the serving set redeployed with the candidate's image (`deploy`) while the
   * candidate carries all traffic.
   */
  readonly candidates?: CandidateSets;
}

export interface CandidateSets {
  start(spec: DeploymentSpec, image: ImageResult, signal?: AbortSignal): Promise<DeployResult>;
  readiness(spec: DeploymentSpec, signal?: AbortSignal): Promise<ReadinessReport>;
  requestCount(spec: DeploymentSpec, signal?: AbortSignal): Promise<RequestCounts>;
  /** The percentage (0-100) of requests the endpoint sends to the candidate; the rest go to the serving set. */
  route(spec: DeploymentSpec, candidatePercent: number): Promise<void>;
  /** Routes nothing to the candidate, then stops and removes it. */
  remove(spec: DeploymentSpec, signal?: AbortSignal): Promise<void>;
  /**
   * Where the candidate alone answers, for a target whose replicas have no address of their own (aks: the
   * candidate's own load balancer); the smoke query goes there instead of to each replica URL.
   */
  access?(spec: DeploymentSpec, signal?: AbortSignal): Promise<EndpointAccess>;
  /**
   * A mirror rollout: the endpoint keeps answering from the serving set and copies `percent` of the requests
   * it answered to the candidate, comparing the answers (`route(spec, 0)` and `remove` stop it). Targets
   * without it cannot mirror.
   */
  mirror?(spec: DeploymentSpec, mirror: CandidateMirror, signal?: AbortSignal): Promise<void>;
  /** What the mirror `id` has compared so far (zero counters before the first pair). */
  mirrorReport?(spec: DeploymentSpec, id: string, signal?: AbortSignal): Promise<MirrorReport>;
}

/** A mirror as the rollout asks for it: its own id, the share copied, how pairs are compared. */
export interface CandidateMirror {
  id: string;
  percent: number;
  compare: MirrorCompare;
}
