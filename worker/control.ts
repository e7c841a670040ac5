/**
 * The control worker: runs the workflows and the control-plane activities (deploy steps, batch listing
 * and summary) on the `inferctl-control` task queue. Scoring runs on the GPU worker (worker/gpu.ts).
 *
 *   node dist/worker/control.js [--task-queue Q] [--deployment-name D] [--build-id B] [--no-make-current]
 *        [--unversioned] [--metrics-port P]            (or: inferctl worker …)
 *
 * It is a Worker Deployment version (worker/versioning.ts): deployment D (default: the task queue),
 * build id B (default: package version + workflow bundle hash), made current on its first start.
 */
import { parseArgs } from 'node:util';

import { createBatchActivities } from '../activities/batch';
import { createDeployActivities } from '../activities/deploy';
import { createRolloutActivities } from '../activities/rollout';
import { createGpuPoolActivities } from '../activities/gpu-pool';
import { createJanitorActivities } from '../activities/janitor';
import { CONTROL_TASK_QUEUE } from '../src/shared/deploy-types';
import { aksConfigured, aksSettingsFromEnv } from '../src/targets/aks/aks-config';
import { AksTarget } from '../src/targets/aks/aks-target';
import { LocalTarget } from '../src/targets/local/local-target';
import type { Target } from '../src/targets/target';
import type { TargetKind } from '../src/shared/target-types';
import { runWorker } from './run-worker';
import type { RunWorkerOptions } from './run-worker';
import { versionLabel, workerVersion } from './versioning';
import type { VersionFlags, VersionStanding } from './versioning';
import { workflowBundle } from './workflow-bundle';

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
        ...createBatchActivities(),
        ...createJanitorActivities(),
        ...createGpuPoolActivities({ settings: aksConfigured() ? aksSettingsFromEnv() : undefined }),
      },
    },
  });
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      'task-queue': { type: 'string', default: CONTROL_TASK_QUEUE },
      'metrics-port': { type: 'string' },
      'deployment-name': { type: 'string' },
      'build-id': { type: 'string' },
      'no-make-current': { type: 'boolean', default: false },
      unversioned: { type: 'boolean', default: false },
    },
  });
  runControlWorker({
    taskQueue: values['task-queue'],
    metricsPort: values['metrics-port'] ? Number(values['metrics-port']) : undefined,
    versioning: {
      deploymentName: values['deployment-name'],
      buildId: values['build-id'],
      makeCurrent: !values['no-make-current'],
      unversioned: values.unversioned,
    },
    onReady: ({ address, namespace, taskQueue, versioning }) =>
      console.log(
        `inferctl control worker polling ${taskQueue} on ${address} (namespace ${namespace}); ${describeStanding(versioning)}`,
      ),
  }).catch((err: unknown) => {
    console.error(`inferctl worker: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
