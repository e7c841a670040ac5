/**
 * The `aks` target: an AKS cluster with a GPU node pool (created, or an existing one adopted), the
 * scoring image built by ACR Tasks, and the scoring Deployment behind a LoadBalancer Service. Every
 * method looks before it acts, so a retried activity converges; teardown deletes only what this
 * deployment created (its namespace, and the cluster and resource group when it made them).
 */
import type { KubeConfig } from '@kubernetes/client-node';

import { InvalidInputError } from '../../errors';
import { generateApiKey } from '../api-key';
import type { EndpointAccess, GatewayCounts, RequestCounts, StepProgress, Target } from '../target';
import type {
  DeployResult,
  DeploymentSpec,
  GpuPoolWant,
  ImageResult,
  ProvisionResult,
  ReadinessReport,
  TeardownReport,
} from '../../shared/target-types';
import { grantAcrPull, revokeAcrPull } from './acr-pull';
import { aksPlan } from './aks-config';
import type { AksPlan, AksSettings } from './aks-config';
import { createAzureClients } from './azure-clients';
import type { AzureClients } from './azure-clients';
import { azureFailure, isNotFound } from './azure-errors';
import { clusterKubeConfig } from './cluster-credentials';
import {
  applyObjects,
  assertNamespaceClaimable,
  deleteNamespace,
  ensureApiKeySecret,
  ensureDevicePlugin,
  namespaceOwnedBy,
  readApiKey,
  rolloutStatus,
} from './kubernetes-deployment';
import { ENDPOINT_LABEL, namespaceManifest, secretName } from './kubernetes-manifests';
import { AksCandidates } from './candidate-deployment';
import type { AksClusterAccess } from './candidate-deployment';
import { podLoadCounts, podRequestCounts } from './pod-metrics';
import { fitGpuPool, growForDeploy, type FitScope } from './gpu-pool-fit';
import { deploymentObjects } from './front-manifests';
import { frontCounts, frontReady, poolGpuCount, scaleGpuPool, waitForScorersGone } from './gpu-pool-scale';
import {
  type ClusterScope,
  deleteCluster,
  deleteResourceGroupIfOurs,
  ensureCluster,
  ensureResourceGroup,
  scopeOwner,
} from './managed-cluster';
import { tagsOwnedBy } from './ownership';
import { KubernetesRefusedError, kubernetesFailure } from './kubernetes-errors';
import { buildDeploymentImage } from './deployment-image';
import { FailureType } from '../../shared/failure-types';
import { endpointExposure, endpointUrl, type EndpointExposure } from './tls-exposure';
import { ensureTlsSecret, pinnedTls, readTlsSecret, tlsSummary } from './tls-secret';
import { renewEndpointCertificate } from './tls-renewal';

const KUBECONFIG_CACHE_MS = 5 * 60_000;

/** The key of a cluster's cached credentials. */
function clusterKey(plan: AksPlan): string {
  return `${plan.resourceGroup}/${plan.clusterName}`;
}

export class AksTarget implements Target, AksClusterAccess {
  readonly kind = 'aks' as const;
  /** A rollout's candidate: a second Deployment beside the serving one (candidate-deployment.ts). */
  readonly candidates: AksCandidates = new AksCandidates(this);
  private clients?: AzureClients;
  private readonly kubeConfigs = new Map<string, { kc: KubeConfig; until: number }>();

  constructor(private readonly settings: AksSettings) {}

  private azure(): AzureClients {
    this.clients ??= createAzureClients(this.settings);
    return this.clients;
  }

  plan(spec: DeploymentSpec): AksPlan {
    return aksPlan(spec.name, spec.replicas, this.settings, spec.aks);
  }

  /** Public HTTPS, internal, or (asked for) public HTTP: see tls-exposure.ts. */
  exposure(spec: DeploymentSpec, plan: AksPlan = this.plan(spec)): EndpointExposure {
    return endpointExposure(
      {
        name: spec.name,
        subscriptionId: this.settings.subscriptionId,
        resourceGroup: plan.resourceGroup,
        location: this.settings.location,
        servicePort: this.settings.servicePort,
      },
      spec.aks,
    );
  }

  /**
   * Runs Kubernetes calls on the deployment's cluster. Refusals that another attempt cannot change (401,
   * 403, 422) become permanent errors saying what to do; the cached credentials are dropped on a 401.
   */
  async onCluster<T>(
    plan: AksPlan,
    doing: string,
    signal: AbortSignal | undefined,
    fn: (kc: KubeConfig) => Promise<T>,
  ): Promise<T> {
    const kc = await this.kubeConfig(plan, signal);
    try {
      return await fn(kc);
    } catch (err) {
      const failure = kubernetesFailure(err, doing);
      if (failure instanceof KubernetesRefusedError && failure.status === 401)
        this.kubeConfigs.delete(clusterKey(plan));
      throw failure;
    }
  }

  /** The deployment's whole owner: its workflow id and this installation. */
  owner(spec: DeploymentSpec) {
    return { id: spec.ownerId, environment: this.settings.environment };
  }

  private clusterScope(
    spec: DeploymentSpec,
    plan: AksPlan,
    signal: AbortSignal | undefined,
    progress: StepProgress = () => undefined,
  ): ClusterScope {
    return {
      clients: this.azure(),
      plan,
      settings: this.settings,
      ownerId: spec.ownerId,
      name: spec.name,
      signal,
      progress,
    };
  }

  async provision(
    spec: DeploymentSpec,
    signal?: AbortSignal,
    progress?: StepProgress,
    firstAttemptAt = Date.now(),
  ): Promise<ProvisionResult> {
    const plan = this.plan(spec);
    const exposure = this.exposure(spec, plan); // contradictory options fail before anything is created
    progress?.(`checking resource group ${plan.resourceGroup}`);
    const scope = {
      ...this.clusterScope(spec, plan, signal, progress),
      deadlineAt: firstAttemptAt + this.settings.provisionTimeoutMs,
    };
    await ensureResourceGroup(scope);
    const cluster = await ensureCluster(scope);
    if (cluster.created) {
      progress?.(`granting cluster ${plan.clusterName} AcrPull on registry ${this.settings.registryName}`);
      await grantAcrPull(this.azure(), this.settings, cluster.cluster, signal);
    }
    this.kubeConfigs.delete(clusterKey(plan)); // a new cluster, new credentials
    const tls = exposure.tls
      ? await this.onCluster(plan, `making the TLS Secret of ${spec.name}`, signal, async (kc) => {
          progress?.(`TLS Secret ${plan.namespace}/${exposure.tls!.secretName} (${exposure.tls!.source})`);
          await assertNamespaceClaimable(kc, plan.namespace, this.owner(spec));
          await applyObjects(kc, [
            namespaceManifest(plan.namespace, spec.name, spec.ownerId, {
              environment: this.settings.environment,
              cluster: plan.clusterName,
            }),
          ]);
          const certs = await ensureTlsSecret(kc, {
            namespace: plan.namespace,
            name: spec.name,
            ownerId: spec.ownerId,
            exposure,
            validityDays: this.settings.certificateValidityDays,
          });
          return tlsSummary(exposure, certs!);
        })
      : undefined;
    return {
      clusterId: cluster.id,
      created: cluster.created,
      secretRef: `Kubernetes secret ${plan.namespace}/${secretName(spec.name)} in cluster ${plan.clusterName}`,
      ...(tls ? { tls } : {}),
    };
  }

  async buildImage(spec: DeploymentSpec, signal?: AbortSignal, progress?: StepProgress): Promise<ImageResult> {
    const plan = this.plan(spec);
    const tls = Boolean(this.exposure(spec, plan).tls);
    const where = { clients: this.azure(), settings: this.settings, repository: plan.imageRepository };
    return buildDeploymentImage(where, spec, tls, signal, progress);
  }

  async deploy(
    spec: DeploymentSpec,
    image: ImageResult,
    signal?: AbortSignal,
    progress?: StepProgress,
  ): Promise<DeployResult> {
    const plan = this.plan(spec);
    const exposure = this.exposure(spec, plan);
    // Scale to zero: the GPU pool gets its nodes before the replicas (and loses them after, below).
    const pool = this.poolScope(spec, plan, signal, progress);
    let gpuNodes = await growForDeploy(pool, spec); // autoscaling: fitGpuPool made room first and shrinks it
    const gpus = await this.poolGpus(plan, signal);
    if (spec.replicas > gpus) {
      throw new InvalidInputError(
        `${spec.replicas} replicas need ${spec.replicas} GPUs (one each), but the GPU pool of ${plan.clusterName} ` +
          `has ${gpus}. Use --replicas ${gpus || 1} or more --gpu-nodes.`,
        FailureType.NotEnoughGpus,
      );
    }
    const objects = this.scoringObjects(spec, image, plan, exposure);
    const [namespace, secret, ...workload] = objects;
    await this.onCluster(plan, `deploying ${spec.name} to cluster ${plan.clusterName}`, signal, async (kc) => {
      await assertNamespaceClaimable(kc, plan.namespace, this.owner(spec));
      if (await ensureDevicePlugin(kc)) progress?.('installed the NVIDIA device plugin (the cluster had none)');
      progress?.(
        `applying namespace ${plan.namespace}: API key Secret, Deployment (${spec.replicas} replicas), Service`,
      );
      await applyObjects(kc, [namespace!]);
      await ensureApiKeySecret(kc, secret!, generateApiKey);
      await applyObjects(kc, workload);
      if (spec.hold && spec.replicas === 0) await waitForScorersGone(kc, plan.namespace, spec.name, signal, progress);
    });
    if (spec.hold && spec.replicas === 0) gpuNodes = await scaleGpuPool(pool, 0);
    return { started: spec.replicas, replicas: spec.replicas, ...(gpuNodes !== undefined ? { gpuNodes } : {}) };
  }

  /** The deployment's objects: with scale to zero, the front on the system pool holds the endpoint. */
  scoringObjects(spec: DeploymentSpec, image: ImageResult, plan: AksPlan, exposure: EndpointExposure) {
    return deploymentObjects(spec, image.imageRef, plan, exposure, this.settings.environment);
  }

  get podFailureGraceMs(): number {
    return this.settings.podFailureGraceMs;
  }

  /** The scoring-request counters of every pod answering the endpoint, read through the API server. */
  async requestCount(spec: DeploymentSpec, signal?: AbortSignal): Promise<RequestCounts> {
    const plan = this.plan(spec);
    const https = Boolean(this.exposure(spec, plan).tls) && !spec.hold; // behind the front: plain HTTP
    return this.onCluster(plan, `reading the request counters of ${spec.name}`, signal, (kc) =>
      podRequestCounts(kc, plan.namespace, `${ENDPOINT_LABEL}=${spec.name}`, https),
    );
  }

  /** The endpoint's counters: the front's (requests received and held), or without one the scoring pods' own. */
  async gatewayCounts(spec: DeploymentSpec, signal?: AbortSignal): Promise<GatewayCounts> {
    const plan = this.plan(spec);
    const https = Boolean(this.exposure(spec, plan).tls);
    return this.onCluster(plan, `reading the endpoint's counters of ${spec.name}`, signal, (kc) =>
      spec.hold
        ? frontCounts(kc, plan.namespace, spec.name, https)
        : podLoadCounts(kc, plan.namespace, `${ENDPOINT_LABEL}=${spec.name}`, https),
    );
  }

  /** Autoscaling: room in the GPU pool for the replicas wanted (gpu-pool-fit.ts). */
  fitGpuPool(spec: DeploymentSpec, want: GpuPoolWant, signal?: AbortSignal, progress?: StepProgress) {
    const plan = this.plan(spec);
    return fitGpuPool(this.poolScope(spec, plan, signal, progress), want, {
      poolGpus: () => this.poolGpus(plan, signal),
      onCluster: (fn) => this.onCluster(plan, `waiting for the scoring pods of ${spec.name} to stop`, signal, fn),
    });
  }

  private poolScope(spec: DeploymentSpec, plan: AksPlan, signal?: AbortSignal, progress?: StepProgress): FitScope {
    const where = { clients: this.azure(), settings: this.settings, plan, owner: this.owner(spec) };
    return { ...where, signal, progress, name: spec.name, namespace: plan.namespace };
  }

  async checkReadiness(spec: DeploymentSpec, signal?: AbortSignal): Promise<ReadinessReport> {
    const plan = this.plan(spec);
    const exposure = this.exposure(spec, plan);
    const { rollout, tls } = await this.onCluster(plan, `reading the rollout of ${spec.name}`, signal, async (kc) => {
      const report = await rolloutStatus(kc, plan.namespace, spec.name, spec.replicas, this.settings.podFailureGraceMs);
      if (spec.hold && report.ready && !(await frontReady(kc, plan.namespace, spec.name))) {
        Object.assign(report, { ready: false, reason: 'the front has no ready pod yet' });
      }
      return { rollout: report, tls: report.loadBalancer && (await this.endpointTls(kc, plan, exposure)) };
    });
    return {
      ready: rollout.ready,
      readyReplicas: rollout.readyReplicas,
      desiredReplicas: rollout.desiredReplicas,
      reason: rollout.reason,
      fatal: rollout.fatal,
      endpoint: rollout.loadBalancer && endpointUrl(exposure, rollout.loadBalancer.address, tls?.servername),
      replicaUrls: [],
    };
  }

  async endpointAccess(spec: DeploymentSpec): Promise<EndpointAccess> {
    const plan = this.plan(spec);
    const exposure = this.exposure(spec, plan);
    const { rollout, apiKey, tls } = await this.onCluster(
      plan,
      `reading the endpoint of ${spec.name}`,
      undefined,
      async (kc) => ({
        rollout: await rolloutStatus(kc, plan.namespace, spec.name, spec.replicas, Number.POSITIVE_INFINITY),
        apiKey: await readApiKey(kc, plan.namespace, spec.name),
        tls: await this.endpointTls(kc, plan, exposure),
      }),
    );
    const lb = rollout.loadBalancer;
    if (!lb || !apiKey) {
      throw new Error(`Deployment "${spec.name}" has no ${lb ? 'key' : 'LoadBalancer address'} yet.`);
    }
    return {
      endpoint: endpointUrl(exposure, lb.address, tls?.servername),
      apiKey,
      ...(tls ? { connectTo: lb.address, tls } : {}),
    };
  }

  /** How an HTTPS endpoint is verified, from its TLS Secret (certificates only); undefined for HTTP. */
  async endpointTls(kc: KubeConfig, plan: AksPlan, exposure: EndpointExposure) {
    if (!exposure.tls) return undefined;
    const certs = await readTlsSecret(kc, plan.namespace, exposure.tls.secretName);
    if (!certs) throw new Error(`TLS Secret ${plan.namespace}/${exposure.tls.secretName} is missing`);
    return pinnedTls(exposure, certs);
  }

  /** Renews a per-deployment certificate that is due and restarts the pods onto it (tls-renewal.ts). */
  async renewCertificate(spec: DeploymentSpec, signal?: AbortSignal, progress?: StepProgress) {
    const plan = this.plan(spec);
    const exposure = this.exposure(spec, plan);
    const spareGpu =
      !spec.hold && exposure.tls?.source === 'deployment-ca' && (await this.poolGpus(plan, signal)) > spec.replicas;
    const scope = { namespace: plan.namespace, name: spec.name, exposure, hold: Boolean(spec.hold), spareGpu };
    return this.onCluster(plan, `renewing the certificate of ${spec.name}`, signal, (kc) =>
      renewEndpointCertificate(kc, { ...scope, validityDays: this.settings.certificateValidityDays }, signal, progress),
    );
  }

  async teardown(spec: DeploymentSpec, signal?: AbortSignal, progress?: StepProgress): Promise<TeardownReport> {
    const plan = this.plan(spec);
    const removed: string[] = [];
    const cluster = await this.azure()
      .containerService.managedClusters.get(plan.resourceGroup, plan.clusterName, { abortSignal: signal })
      .catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw azureFailure(err, `reading cluster ${plan.clusterName}`);
      });
    const scope = this.clusterScope(spec, plan, signal, progress);
    const clusterIsOurs = !plan.existingCluster && tagsOwnedBy(cluster?.tags, scopeOwner(scope));
    // Delete the namespace first: its LoadBalancer releases the public IP. When the whole cluster goes
    // anyway and is not running, skip it rather than wait on an API server that may never answer.
    if (cluster && (!clusterIsOurs || cluster.provisioningState === 'Succeeded')) {
      const kc = await this.kubeConfig(plan, signal);
      if (await namespaceOwnedBy(kc, plan.namespace, this.owner(spec))) {
        progress?.(`deleting namespace ${plan.namespace} (and its LoadBalancer)`);
        if (await deleteNamespace(kc, plan.namespace, signal)) removed.push(`namespace ${plan.namespace}`);
      }
    }
    // The AcrPull grant goes before the cluster: its kubelet identity (which names it) goes with the cluster.
    if (cluster && clusterIsOurs) {
      const grant = await revokeAcrPull(this.azure(), this.settings, cluster, signal);
      if (grant) removed.push(grant);
    }
    removed.push(...(await deleteCluster(scope)));
    removed.push(...(await deleteResourceGroupIfOurs(scope)));
    this.kubeConfigs.delete(clusterKey(plan));
    return { removed };
  }

  /**
   * Cluster credentials, fetched inside the activity: they never travel through history. Kept in this
   * worker's memory for a few minutes so readiness polling does not call ARM on every poll.
   */
  private async kubeConfig(plan: AksPlan, signal?: AbortSignal): Promise<KubeConfig> {
    const key = clusterKey(plan);
    const cached = this.kubeConfigs.get(key);
    if (cached && cached.until > Date.now()) return cached.kc;
    const kc = await this.fetchKubeConfig(plan, signal);
    this.kubeConfigs.set(key, { kc, until: Date.now() + KUBECONFIG_CACHE_MS });
    return kc;
  }

  private fetchKubeConfig(plan: AksPlan, signal?: AbortSignal): Promise<KubeConfig> {
    return clusterKubeConfig(this.azure(), { name: plan.clusterName, resourceGroup: plan.resourceGroup }, signal);
  }

  /** The GPUs of the cluster's GPU pool(s): what replicas can run on (gpu-pool-scale.ts). */
  poolGpus(plan: AksPlan, signal?: AbortSignal): Promise<number> {
    return poolGpuCount(this.azure(), this.settings, plan, signal);
  }
}
