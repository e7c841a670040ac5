/**
 * An in-memory `Target` for activity tests: it records every call (with the abort signal it was given)
 * and answers readiness from a script, so a test decides when a deployment becomes ready, stays stuck,
 * fails for good or hangs. Only our own interface is faked; the activities under test are the real ones.
 */
import type { EndpointAccess, StepProgress, Target } from '../../src/targets/target';
import type {
  DeployResult,
  DeploymentSpec,
  ImageResult,
  ProvisionResult,
  ReadinessReport,
  TargetKind,
  TeardownReport,
} from '../../src/shared/target-types';

export interface FakeTargetCall {
  method: keyof Omit<Target, 'kind'>;
  spec: DeploymentSpec;
  signal?: AbortSignal;
  /** Date.now() when the call was made. */
  at: number;
}

/** Answers the n-th readiness check (1-based); may wait on the signal, or throw. */
export type ReadinessScript = (
  call: number,
  signal: AbortSignal | undefined,
) => ReadinessReport | Promise<ReadinessReport>;

export interface FakeTargetOptions {
  kind?: TargetKind;
  readiness?: ReadinessScript;
  /** What `endpointAccess` returns (a test's HTTP server, say). */
  access?: EndpointAccess;
  /** Progress lines `provision` reports before it returns. */
  provisionProgress?: string[];
}

/** A report for `ready` of `desired` replicas; ready when all are. */
export function readiness(ready: number, desired: number, reason?: string): ReadinessReport {
  return {
    ready: ready === desired,
    readyReplicas: ready,
    desiredReplicas: desired,
    ...(reason === undefined ? {} : { reason }),
    ...(ready === desired ? { endpoint: 'http://127.0.0.1:1' } : {}),
    replicaUrls: [],
  };
}

export class FakeTarget implements Target {
  readonly kind: TargetKind;
  readonly calls: FakeTargetCall[] = [];
  private readonly options: FakeTargetOptions;

  constructor(options: FakeTargetOptions = {}) {
    this.options = options;
    this.kind = options.kind ?? 'local';
  }

  /** The calls of one method, in order. */
  callsOf(method: FakeTargetCall['method']): FakeTargetCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  provision(spec: DeploymentSpec, signal?: AbortSignal, progress?: StepProgress): Promise<ProvisionResult> {
    this.record('provision', spec, signal);
    for (const line of this.options.provisionProgress ?? []) progress?.(line);
    return Promise.resolve({ clusterId: `fake/${spec.name}`, created: true, secretRef: `fake-secret/${spec.name}` });
  }

  buildImage(spec: DeploymentSpec, signal?: AbortSignal): Promise<ImageResult> {
    this.record('buildImage', spec, signal);
    return Promise.resolve({ imageRef: `fake/${spec.name}:1`, digest: 'sha256:fake', reused: false });
  }

  deploy(spec: DeploymentSpec, _image: ImageResult, signal?: AbortSignal): Promise<DeployResult> {
    this.record('deploy', spec, signal);
    return Promise.resolve({ started: spec.replicas, replicas: spec.replicas });
  }

  async checkReadiness(spec: DeploymentSpec, signal?: AbortSignal): Promise<ReadinessReport> {
    this.record('checkReadiness', spec, signal);
    const script = this.options.readiness ?? (() => readiness(spec.replicas, spec.replicas));
    return script(this.callsOf('checkReadiness').length, signal);
  }

  endpointAccess(spec: DeploymentSpec): Promise<EndpointAccess> {
    this.record('endpointAccess', spec);
    if (!this.options.access) return Promise.reject(new Error('FakeTarget: no endpoint access scripted'));
    return Promise.resolve(this.options.access);
  }

  teardown(spec: DeploymentSpec, signal?: AbortSignal): Promise<TeardownReport> {
    this.record('teardown', spec, signal);
    return Promise.resolve({ removed: [`fake ${spec.name}`] });
  }

  private record(method: FakeTargetCall['method'], spec: DeploymentSpec, signal?: AbortSignal): void {
    this.calls.push({ method, spec, ...(signal ? { signal } : {}), at: Date.now() });
  }
}
