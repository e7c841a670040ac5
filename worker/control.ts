/**
 * The control worker: runs the workflows and the control-plane activities (deploy steps, batch listing
 * and summary) on the `inferctl-control` task queue. Scoring runs on the GPU worker (worker/gpu.ts).
 *
 *   node dist/worker/control.js [--task-queue Q] [--deployment-name D] [--build-id B] [--no-make-current]
 *        [--unversioned] [--metrics-port P]            (or: inferctl worker …)
 *
 * It is a Worker Deployment version (worker/versioning.ts): deployment D (default: the task queue),
 * build id B (default: package version + workflow bundle hash), made current on its first start. The flags
 * are one table with `inferctl worker` (worker/control-flags.ts), each also read from its INFERCTL_* variable.
 */
import { createBatchActivities } from '../activities/batch';
import { createCertificateActivities } from '../activities/certificate';
import { createGatewayWatchActivities } from '../activities/gateway-watch';
import { createDeployActivities } from '../activities/deploy';
import { createRolloutActivities } from '../activities/rollout';
import { createAutoscaleActivities } from '../activities/autoscale-watch';
import { createGpuPoolActivities } from '../activities/gpu-pool';
import { createJanitorActivities } from '../activities/janitor';
import { InvalidInputError } from '../src/errors';
import { CONTROL_TASK_QUEUE } from '../src/shared/deploy-types';
import { aksConfigured, aksSettingsFromEnv } from '../src/targets/aks/aks-config';
import { AksTarget } from '../src/targets/aks/aks-target';
import { LocalTarget } from '../src/targets/local/local-target';
import type { Target } from '../src/targets/target';
import type { TargetKind } from '../src/shared/target-types';
import { CONTROL_WORKER_FLAGS, controlWorkerSettings } from './control-flags';
import { runWorker } from './run-worker';
import type { RunWorkerOptions } from './run-worker';
import { versionLabel, workerVersion } from './versioning';
import type { VersionFlags, VersionStanding } from './versioning';
import { workflowBundle } from './workflow-bundle';
import { parseWorkerArgv } from './worker-flags';

/**
 * How to run it: the process-level options every worker takes; the task queue defaults to
 * inferctl-control; `versioning` as in worker/versioning.ts (default: versioned, made current on first start).
 */
export type ControlWorkerOptions = Omit<RunWorkerOptions, 'worker' | 'taskQueue' | 'version'> & {
  taskQueue?: string;
  versioning?: Omit<VersionFlags, 'taskQueue'>;
};

/** The startup line's account of the worker's version: `worker deployment D, build id B (made current)`. */
export function describeStanding(standing: VersionStanding | undefined): string {
  if (!standing) return 'unversioned (no Worker Deployment)';
  const { deploymentName, buildId } = standing.version;
  return `worker deployment ${deploymentName}, build id ${buildId} (${versionLabel(standing.version)}: ${standing.current})`;
}

/** `local` always; `aks` when the worker's environment names a subscription, resource group and registry. */
function workerTargets(): Partial<Record<TargetKind, Target>> {
  const targets: Partial<Record<TargetKind, Target>> = { local: new LocalTarget() };
  if (aksConfigured()) targets.aks = new AksTarget(aksSettingsFromEnv());
  return targets;
}

export async function runControlWorker(opts: ControlWorkerOptions = {}): Promise<void> {
  const targets = workerTargets();
  const taskQueue = opts.taskQueue ?? CONTROL_TASK_QUEUE;
  await runWorker({
    ...opts,
    taskQueue,
    version: workerVersion({ ...opts.versioning, taskQueue }),
    worker: {
      workflowBundle: workflowBundle(),
      activities: {
        ...createDeployActivities({ targets }),
        ...createRolloutActivities({ targets }),
        ...createCertificateActivities({ targets }),
        ...createGatewayWatchActivities({ targets }),
        ...createAutoscaleActivities({ targets }),
        ...createBatchActivities(),
        ...createJanitorActivities(),
        ...createGpuPoolActivities({ settings: aksConfigured() ? aksSettingsFromEnv() : undefined }),
      },
    },
  });
}

if (require.main === module) {
  Promise.resolve()
    .then(() => controlWorkerSettings(parseWorkerArgv(CONTROL_WORKER_FLAGS, process.argv.slice(2))))
    .then((settings) =>
      runControlWorker({
        ...settings,
        onReady: ({ address, namespace, taskQueue, versioning }) =>
          console.log(
            `inferctl control worker polling ${taskQueue} on ${address} (namespace ${namespace}); ${describeStanding(versioning)}`,
          ),
      }),
    )
    .catch((err: unknown) => {
      console.error(`inferctl worker: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(err instanceof InvalidInputError ? 2 : 1);
    });
}
