/**
 * A batch job's GPU pool on the user's AKS cluster, as one entry for the GPU-pool activities
 * (activities/gpu-pool.ts): add the pool, build the worker image, start the worker pods, watch how many
 * run, and remove pods and pool. Each step looks before it acts (gpu-node-pool.ts, kubernetes-deployment.ts,
 * registry-build.ts), so a retry converges. Heartbeats, retries and which failures are permanent stay
 * with the activities.
 */
import type { GpuPoolReport, GpuPoolSpec } from '../../shared/gpu-pool-types';
import type { PreprocessConfig } from '../../shared/preprocess-types';
import type { StepProgress } from '../target';
import type { AksSettings } from './aks-config';
import { createAzureClients } from './azure-clients';
import type { AzureClients } from './azure-clients';
import { azureFailure, isNotFound } from './azure-errors';
import { servedWith } from './build-context';
import { clusterKubeConfig } from './cluster-credentials';
import { deleteGpuPool, ensureGpuPool, gpuPoolPlan } from './gpu-node-pool';
import type { PoolScope } from './gpu-node-pool';
import { planScript } from '../../script/script-plan';
import { GPU_WORKER_REPOSITORY, gpuWorkerContext, scriptWorkerContext, scriptWorkerImage } from './gpu-worker-image';
import { gpuWorkerManifests, workerPodsStatus } from './gpu-worker-pods';
import type { WorkerConnection, WorkerPodsReport } from './gpu-worker-pods';
import { applyObjects, deleteNamespace, ensureDevicePlugin, namespaceOwnedBy } from './kubernetes-deployment';
import { buildContextInRegistry } from './registry-build';

export type { AksSettings } from './aks-config';
export { gpuWorkerSecrets } from './gpu-worker-secrets';
export type { JobStorage } from './gpu-worker-secrets';
export type { WorkerConnection, WorkerPodsReport } from './gpu-worker-pods';

/**
 * The GPU workers' image in the registry, and the model's resolved preprocessing spec baked into it (an
 * ONNX job's; a script job's image has the script, its environment and the model instead).
 */
export interface WorkerImage {
  imageRef: string;
  preprocess?: PreprocessConfig;
}

/** The GPU pools of one aks configuration; the Azure clients are made on first use and reused. */
export class AksGpuPools {
  private clients: AzureClients | undefined;

  constructor(private readonly settings: AksSettings) {}

  /** One job's pool, for one step: `signal` and `progress` are that step's. */
  pool(spec: GpuPoolSpec, signal: AbortSignal, progress: StepProgress): AksGpuPool {
    this.clients ??= createAzureClients(this.settings);
    return new AksGpuPool({
      clients: this.clients,
      settings: this.settings,
      plan: gpuPoolPlan(spec, this.settings),
      spec,
      signal,
      progress,
    });
  }
}

export class AksGpuPool {
  constructor(private readonly scope: PoolScope) {}

  /** Adds the job's GPU pool to the cluster (after the size and quota checks) and waits for its nodes. */
  async add(): Promise<GpuPoolReport> {
    const { plan } = this.scope;
    await ensureGpuPool(this.scope);
    return { poolName: plan.poolName, vmSize: plan.vmSize, nodes: plan.nodes, removed: [] };
  }

  /**
   * Builds (or reuses) the GPU workers' image in the registry: the model and what it is served with, or
   * for a script job the script, its environment and the model (gpu-worker-image.ts).
   */
  async buildWorkerImage(): Promise<WorkerImage> {
    const { spec, clients, settings, plan, signal, progress } = this.scope;
    if (spec.script) {
      const script = await planScript(spec.modelPath, spec.script);
      const image = scriptWorkerImage(script, plan.vmSize);
      progress(`packing the script worker's build context (${image.base})`);
      for (const warning of image.warnings) progress(`note: ${warning}`);
      // spec.script.modelCopy: the control worker's copy of an az:// model (activities/gpu-pool.ts).
      const context = await scriptWorkerContext(script, spec.modelPath, image, spec.script);
      const built = await buildContextInRegistry(clients, settings, GPU_WORKER_REPOSITORY, context, signal, progress);
      return { imageRef: built.imageRef };
    }
    const served = await servedWith(spec);
    const context = await gpuWorkerContext(spec.modelPath, served);
    const image = await buildContextInRegistry(clients, settings, GPU_WORKER_REPOSITORY, context, signal, progress);
    return {
      imageRef: image.imageRef,
      preprocess: JSON.parse(served.preprocess.toString('utf8')) as PreprocessConfig,
    };
  }

  /**
   * Applies the job's namespace, the Secret with the Temporal connection (`connection` goes there and
   * nowhere else) and the workers' Deployment on the pool; installs the NVIDIA device plugin when the
   * cluster has none.
   */
  async startWorkers(image: WorkerImage, connection: WorkerConnection): Promise<void> {
    const { spec, settings, plan, progress } = this.scope;
    const objects = gpuWorkerManifests({
      namespace: plan.namespace,
      jobName: spec.jobName,
      ownerId: spec.ownerId,
      poolName: plan.poolName,
      image: image.imageRef,
      replicas: spec.gpuNodes,
      taskQueue: spec.taskQueue,
      shardsPerWorker: spec.shardsPerWorker ?? 1,
      ...(spec.script ? { script: true } : {}),
      connection,
      connectionKeys: Object.keys(connection).sort(),
      environment: settings.environment,
      cluster: plan.clusterName,
    });
    const kc = await this.kubeConfig();
    if (await ensureDevicePlugin(kc)) progress('installed the NVIDIA device plugin (the cluster had none)');
    progress(
      `applying namespace ${plan.namespace}: Temporal connection Secret, ${spec.gpuNodes} GPU-worker pod(s) ` +
        `on pool ${plan.poolName} polling ${spec.taskQueue}`,
    );
    await applyObjects(kc, objects);
  }

  /** A probe of the worker pods (how many run, and why the others do not), signed in once for every poll. */
  async workerPods(): Promise<() => Promise<WorkerPodsReport>> {
    const { spec, settings, plan } = this.scope;
    const kc = await this.kubeConfig();
    return () => workerPodsStatus(kc, plan.namespace, spec.gpuNodes, settings.podFailureGraceMs);
  }

  /** Deletes the job's namespace (its pods, when this job owns it) and then its pool; safe to repeat. */
  async remove(): Promise<string[]> {
    const { spec, clients, settings, plan, signal, progress } = this.scope;
    const removed: string[] = [];
    const cluster = await clients.containerService.managedClusters
      .get(plan.resourceGroup, plan.clusterName, { abortSignal: signal })
      .catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw azureFailure(err, `reading cluster ${plan.clusterName}`);
      });
    if (!cluster) return removed; // the cluster (and so the pool) is gone
    const kc = await this.kubeConfig();
    if (await namespaceOwnedBy(kc, plan.namespace, { id: spec.ownerId, environment: settings.environment })) {
      progress(`deleting namespace ${plan.namespace} (the GPU-worker pods)`);
      if (await deleteNamespace(kc, plan.namespace, signal)) removed.push(`namespace ${plan.namespace}`);
    }
    removed.push(...(await deleteGpuPool(this.scope)));
    return removed;
  }

  private kubeConfig() {
    const { clients, plan, signal } = this.scope;
    return clusterKubeConfig(clients, { name: plan.clusterName, resourceGroup: plan.resourceGroup }, signal);
  }
}
