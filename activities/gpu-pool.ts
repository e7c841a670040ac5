/**
 * The activities of a batch job's AKS GPU pool (workflows/gpu-pool.ts): add the pool, build the worker
 * image and start the worker pods, wait until they run, and remove pods and pool. Each looks before it
 * acts, so a retry (or a new attempt on another worker after a crash) converges; each heartbeats its
 * progress; teardown is retried until it succeeds. The Temporal connection (API key and codec keys
 * included) is read here, from this worker's environment, and goes only into the pods' Secret.
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { KubeConfig } from '@kubernetes/client-node';

import { FailureType } from '../src/shared/failure-types';
import type { GpuPoolReport, GpuPoolSpec } from '../src/shared/gpu-pool-types';
import type { PreprocessConfig } from '../src/shared/preprocess-types';
import type { AksSettings } from '../src/targets/aks/aks-config';
import { createAzureClients } from '../src/targets/aks/azure-clients';
import type { AzureClients } from '../src/targets/aks/azure-clients';
import { azureFailure, isNotFound } from '../src/targets/aks/azure-errors';
import { servedWith } from '../src/targets/aks/build-context';
import { clusterKubeConfig } from '../src/targets/aks/cluster-credentials';
import { deleteGpuPool, ensureGpuPool, gpuPoolPlan } from '../src/targets/aks/gpu-node-pool';
import type { PoolScope } from '../src/targets/aks/gpu-node-pool';
import { GPU_WORKER_REPOSITORY, gpuWorkerContext } from '../src/targets/aks/gpu-worker-image';
import { gpuWorkerManifests, workerPodsStatus } from '../src/targets/aks/gpu-worker-pods';
import type { WorkerConnection } from '../src/targets/aks/gpu-worker-pods';
import { gpuWorkerSecrets } from '../src/targets/aks/gpu-worker-secrets';
import type { JobStorage } from '../src/targets/aks/gpu-worker-secrets';
import {
  applyObjects,
  deleteNamespace,
  ensureDevicePlugin,
  namespaceOwnedBy,
} from '../src/targets/aks/kubernetes-deployment';
import { buildContextInRegistry } from '../src/targets/aks/registry-build';
import type { StepProgress } from '../src/targets/target';
import { failingPermanently } from './failures';
import { targetStep } from './heartbeat';

export interface GpuPoolActivityDeps {
  /** The aks settings; absent when this worker has none (each activity then fails saying so). */
  settings?: AksSettings;
  /** What the pods' Secret holds for a job's storage (default: gpu-worker-secrets.ts, from the environment). */
  connection?: (storage: JobStorage) => WorkerConnection;
}

/** What starting the workers gives the workflow: the image, and what the shards name on the workers. */
export interface StartedWorkers {
  imageRef: string;
  /** The model's resolved preprocessing spec, as baked into the image (the shards pass it as data). */
  preprocess: PreprocessConfig;
}

export interface WaitForWorkersOptions {
  timeoutSeconds: number;
  pollIntervalMs: number;
}

export function createGpuPoolActivities({
  settings,
  connection = (storage) => gpuWorkerSecrets(storage),
}: GpuPoolActivityDeps) {
  let clients: AzureClients | undefined;
  const aks = (): { settings: AksSettings; clients: AzureClients } => {
    if (!settings) {
      throw ApplicationFailure.nonRetryable(
        'This worker has no aks settings (AZURE_SUBSCRIPTION_ID, INFERCTL_AKS_RESOURCE_GROUP, INFERCTL_ACR_NAME). ' +
          'Start a control worker configured for aks (see "Deploy to AKS" in the README).',
        FailureType.TargetUnavailable,
      );
    }
    clients ??= createAzureClients(settings);
    return { settings, clients };
  };
  const scope = (spec: GpuPoolSpec, signal: AbortSignal, progress: StepProgress): PoolScope => {
    const { settings: s, clients: c } = aks();
    return { clients: c, settings: s, plan: gpuPoolPlan(spec, s), spec, signal, progress };
  };
  const kubeConfig = ({ clients: c, plan }: PoolScope, signal?: AbortSignal): Promise<KubeConfig> =>
    clusterKubeConfig(c, { name: plan.clusterName, resourceGroup: plan.resourceGroup }, signal);

  return {
    /** Adds the job's GPU pool to the cluster (after the size and quota checks) and waits for its nodes. */
    async addGpuPool(spec: GpuPoolSpec): Promise<GpuPoolReport> {
      return targetStep(async (signal, progress) => {
        const s = scope(spec, signal, progress);
        await failingPermanently(() => ensureGpuPool(s));
        return { poolName: s.plan.poolName, vmSize: s.plan.vmSize, nodes: s.plan.nodes, removed: [] };
      });
    },

    /** Builds (or reuses) the worker image in the registry and applies the namespace, Secret and Deployment. */
    async startGpuWorkers(spec: GpuPoolSpec): Promise<StartedWorkers> {
      return targetStep(async (signal, progress) => {
        const s = scope(spec, signal, progress);
        const served = await failingPermanently(() => servedWith(spec));
        const context = await failingPermanently(() => gpuWorkerContext(spec.modelPath, served));
        const image = await failingPermanently(() =>
          buildContextInRegistry(s.clients, s.settings, GPU_WORKER_REPOSITORY, context, signal, progress),
        );
        const env = connection({ inputs: spec.storage?.inputs ?? [], outputs: spec.storage?.outputs ?? [] });
        const objects = gpuWorkerManifests({
          namespace: s.plan.namespace,
          jobName: spec.jobName,
          ownerId: spec.ownerId,
          poolName: s.plan.poolName,
          image: image.imageRef,
          replicas: spec.gpuNodes,
          taskQueue: spec.taskQueue,
          shardsPerWorker: spec.shardsPerWorker ?? 1,
          connection: env,
          connectionKeys: Object.keys(env).sort(),
          environment: s.settings.environment,
          cluster: s.plan.clusterName,
        });
        const kc = await kubeConfig(s, signal);
        if (await ensureDevicePlugin(kc)) progress('installed the NVIDIA device plugin (the cluster had none)');
        progress(
          `applying namespace ${s.plan.namespace}: Temporal connection Secret, ${spec.gpuNodes} GPU-worker pod(s) ` +
            `on pool ${s.plan.poolName} polling ${spec.taskQueue}`,
        );
        await applyObjects(kc, objects);
        return {
          imageRef: image.imageRef,
          preprocess: JSON.parse(served.preprocess.toString('utf8')) as PreprocessConfig,
        };
      });
    },

    /** Polls until every worker pod runs; a pod that cannot start fails the step once the grace period is over. */
    async waitForGpuWorkers(spec: GpuPoolSpec, opts: WaitForWorkersOptions): Promise<number> {
      const ctx = Context.current();
      const s = scope(spec, ctx.cancellationSignal, () => undefined);
      const firstPolledAt =
        (ctx.info.heartbeatDetails as { firstPolledAt?: number } | undefined)?.firstPolledAt ?? Date.now();
      const kc = await kubeConfig(s, ctx.cancellationSignal);
      for (;;) {
        const report = await workerPodsStatus(kc, s.plan.namespace, spec.gpuNodes, s.settings.podFailureGraceMs);
        ctx.heartbeat({ firstPolledAt, running: report.running });
        if (report.running >= spec.gpuNodes) return report.running;
        if (report.problem?.fatal) {
          throw ApplicationFailure.nonRetryable(
            `The GPU workers of job "${spec.jobName}" cannot start: ${report.problem.reason}`,
            FailureType.DeploymentFailed,
          );
        }
        if (Date.now() - firstPolledAt > opts.timeoutSeconds * 1000) {
          throw ApplicationFailure.nonRetryable(
            `Only ${report.running} of ${spec.gpuNodes} GPU workers of job "${spec.jobName}" run after ` +
              `${opts.timeoutSeconds}s${report.problem ? ` (${report.problem.reason})` : ''}.`,
            FailureType.DeploymentNotReady,
          );
        }
        log.info('Waiting for GPU workers', { job: spec.jobName, running: report.running, wanted: spec.gpuNodes });
        await ctx.sleep(opts.pollIntervalMs);
      }
    },

    /** Deletes the job's namespace (its pods) and then its pool; safe to repeat, retried until it succeeds. */
    async removeGpuPool(spec: GpuPoolSpec): Promise<string[]> {
      return targetStep(async (signal, progress) => {
        const s = scope(spec, signal, progress);
        const removed: string[] = [];
        const cluster = await s.clients.containerService.managedClusters
          .get(s.plan.resourceGroup, s.plan.clusterName, { abortSignal: signal })
          .catch((err: unknown) => {
            if (isNotFound(err)) return undefined;
            throw azureFailure(err, `reading cluster ${s.plan.clusterName}`);
          });
        if (!cluster) return removed; // the cluster (and so the pool) is gone
        const kc = await kubeConfig(s, signal);
        if (await namespaceOwnedBy(kc, s.plan.namespace, { id: spec.ownerId, environment: s.settings.environment })) {
          progress(`deleting namespace ${s.plan.namespace} (the GPU-worker pods)`);
          if (await deleteNamespace(kc, s.plan.namespace, signal)) removed.push(`namespace ${s.plan.namespace}`);
        }
        removed.push(...(await deleteGpuPool(s)));
        log.info('GPU pool removed', { job: spec.jobName, removed });
        return removed;
      });
    },
  };
}
