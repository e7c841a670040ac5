/**
 * The activities of a batch job's AKS GPU pool (workflows/gpu-pool.ts): add the pool, build the worker
 * image and start the worker pods, wait until they run, and remove pods and pool. Each looks before it
 * acts, so a retry (or a new attempt on another worker after a crash) converges; each heartbeats its
 * progress; teardown is retried until it succeeds. The Temporal connection (API key and codec keys
 * included) is read here, from this worker's environment, and goes only into the pods' Secret.
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';

import { withScriptModelCopy } from '../src/script/script-model';
import { FailureType } from '../src/shared/failure-types';
import { isBlobLocation } from '../src/storage/blob-location';
import { listModelBlobs } from '../src/storage/blob-tree';
import type { GpuPoolReport, GpuPoolSpec } from '../src/shared/gpu-pool-types';
import { AksGpuPools, gpuWorkerSecrets } from '../src/targets/aks/aks-gpu-pool';
import type {
  AksGpuPool,
  AksSettings,
  JobStorage,
  WorkerConnection,
  WorkerImage,
} from '../src/targets/aks/aks-gpu-pool';
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
export type StartedWorkers = WorkerImage;

export interface WaitForWorkersOptions {
  timeoutSeconds: number;
  pollIntervalMs: number;
}

export function createGpuPoolActivities({
  settings,
  connection = (storage) => gpuWorkerSecrets(storage),
}: GpuPoolActivityDeps) {
  let pools: AksGpuPools | undefined;
  const pool = (spec: GpuPoolSpec, signal: AbortSignal, progress: StepProgress): AksGpuPool => {
    if (!settings) {
      throw ApplicationFailure.nonRetryable(
        'This worker has no aks settings (AZURE_SUBSCRIPTION_ID, INFERCTL_AKS_RESOURCE_GROUP, INFERCTL_ACR_NAME). ' +
          'Start a control worker configured for aks (see "Deploy to AKS" in the README).',
        FailureType.TargetUnavailable,
      );
    }
    pools ??= new AksGpuPools(settings);
    return pools.pool(spec, signal, progress);
  };

  return {
    /** Adds the job's GPU pool to the cluster (after the size and quota checks) and waits for its nodes. */
    async addGpuPool(spec: GpuPoolSpec): Promise<GpuPoolReport> {
      return targetStep(async (signal, progress) => {
        const p = pool(spec, signal, progress);
        // A script's az:// model is listed first (its endpoint, names and size checked), so a refusal adds no pool.
        if (spec.script && isBlobLocation(spec.modelPath))
          await failingPermanently(() => listModelBlobs(spec.modelPath));
        return failingPermanently(() => p.add());
      });
    },

    /** Builds (or reuses) the worker image in the registry and applies the namespace, Secret and Deployment. */
    async startGpuWorkers(spec: GpuPoolSpec): Promise<StartedWorkers> {
      return targetStep(async (signal, progress) => {
        // A script's az:// model is copied to this worker first, as for a script deployment; the image carries it.
        const script =
          spec.script &&
          (await failingPermanently(() => withScriptModelCopy(spec.modelPath, spec.script!, { signal, progress })));
        const p = pool(script ? { ...spec, script } : spec, signal, progress);
        const image = await failingPermanently(() => p.buildWorkerImage());
        await p.startWorkers(
          image,
          connection({ inputs: spec.storage?.inputs ?? [], outputs: spec.storage?.outputs ?? [] }),
        );
        return image;
      });
    },

    /** Polls until every worker pod runs; a pod that cannot start fails the step once the grace period is over. */
    async waitForGpuWorkers(spec: GpuPoolSpec, opts: WaitForWorkersOptions): Promise<number> {
      const ctx = Context.current();
      const p = pool(spec, ctx.cancellationSignal, () => undefined);
      const firstPolledAt =
        (ctx.info.heartbeatDetails as { firstPolledAt?: number } | undefined)?.firstPolledAt ?? Date.now();
      const workerPods = await p.workerPods();
      for (;;) {
        const report = await workerPods();
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
      // Not failingPermanently: teardown keeps trying whatever the error.
      return targetStep(async (signal, progress) => {
        const removed = await pool(spec, signal, progress).remove();
        log.info('GPU pool removed', { job: spec.jobName, removed });
        return removed;
      });
    },
  };
}
