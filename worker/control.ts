/**
 * The control worker: runs the workflows and the control-plane activities (deploy steps, batch listing
 * and summary) on the `inferctl-control` task queue. Scoring runs on the GPU worker (worker/gpu.ts).
 *
 *   node dist/worker/control.js            (or: inferctl worker)
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
import { workflowBundle } from './workflow-bundle';

/** How to run it: the process-level options every worker takes; the task queue defaults to inferctl-control. */
export type ControlWorkerOptions = Omit<RunWorkerOptions, 'worker' | 'taskQueue'> & { taskQueue?: string };

/** `local` always; `aks` when the worker's environment names a subscription, resource group and registry. */
function workerTargets(): Partial<Record<TargetKind, Target>> {
  const targets: Partial<Record<TargetKind, Target>> = { local: new LocalTarget() };
  if (aksConfigured()) targets.aks = new AksTarget(aksSettingsFromEnv());
  return targets;
}

export async function runControlWorker(opts: ControlWorkerOptions = {}): Promise<void> {
  const targets = workerTargets();
  await runWorker({
    ...opts,
    taskQueue: opts.taskQueue ?? CONTROL_TASK_QUEUE,
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
    options: { 'task-queue': { type: 'string', default: CONTROL_TASK_QUEUE }, 'metrics-port': { type: 'string' } },
  });
  runControlWorker({
    taskQueue: values['task-queue'],
    metricsPort: values['metrics-port'] ? Number(values['metrics-port']) : undefined,
    onReady: ({ address, namespace, taskQueue }) =>
      console.log(`inferctl control worker polling ${taskQueue} on ${address} (namespace ${namespace})`),
  }).catch((err: unknown) => {
    console.error(`inferctl worker: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
