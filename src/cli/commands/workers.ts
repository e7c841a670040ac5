/**
 * `inferctl worker` and `inferctl gpu-worker`: run a worker in the foreground until Ctrl-C. Their flags are
 * the workers' own tables (worker/control-flags.ts, worker/gpu-flags.ts), shared with `node dist/worker/*.js`,
 * INFERCTL_* fallbacks included. The worker modules are loaded when the command runs, not at the top: the
 * worker SDK is heavy and only these need it (the flag tables are light).
 */
import type { Command } from '@commander-js/extra-typings';

import { CONTROL_TASK_QUEUE } from '../../shared/deploy-types';
import { addWorkerFlagOptions, givenWorkerFlags } from '../worker-flag-options';
import { CONTROL_WORKER_FLAGS, controlWorkerSettings } from '../../../worker/control-flags';
import type { ControlWorkerSettings } from '../../../worker/control-flags';
import { GPU_WORKER_FLAGS, gpuWorkerSettings } from '../../../worker/gpu-flags';
import type { GpuWorkerSettings } from '../../../worker/gpu-flags';
import { workflowBuildId } from '../../../worker/workflow-bundle';
import type * as ControlWorkerModule from '../../../worker/control';
import type * as GpuWorkerModule from '../../../worker/gpu';

/** `inferctl worker`: the control worker's flag table (worker/control-flags.ts) in, `workerCommand` out. */
export function addWorkerCommand(program: Command): void {
  const command = program
    .command('worker')
    .description(
      'Run the control worker (deploy workflows and their activities) until Ctrl-C. It is a Worker Deployment ' +
        'version: deployments stay pinned to the version they started on, batch jobs and the janitor move to ' +
        'the current one (README: Upgrading workers with deployments in flight)',
    );
  addWorkerFlagOptions(command, CONTROL_WORKER_FLAGS)
    .addHelpText('after', thisBuild)
    .action(async (_o, cmd) => {
      await workerCommand(controlWorkerSettings(givenWorkerFlags(cmd, CONTROL_WORKER_FLAGS)));
    });
}

/** The help's last lines: the version this checkout's worker declares by default. */
function thisBuild(): string {
  let buildId: string;
  try {
    buildId = workflowBuildId();
  } catch (err) {
    buildId = `unknown: ${err instanceof Error ? err.message : String(err)}`;
  }
  return (
    `\nThis checkout's build id: ${buildId} (deployment name: the task queue, ${CONTROL_TASK_QUEUE} by default).\n` +
    'The startup line says which version the worker is and whether it was made current.\n'
  );
}

/** `inferctl gpu-worker`: the GPU worker's flag table (worker/gpu-flags.ts) in, `gpuWorkerCommand` out. */
export function addGpuWorkerCommand(program: Command): void {
  const command = program
    .command('gpu-worker')
    .description('Run a GPU scoring worker (batch shards, onnxruntime-node) until Ctrl-C');
  addWorkerFlagOptions(command, GPU_WORKER_FLAGS).action(async (_o, cmd) => {
    await gpuWorkerCommand(gpuWorkerSettings(givenWorkerFlags(cmd, GPU_WORKER_FLAGS)));
  });
}

export async function workerCommand(settings: ControlWorkerSettings): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { describeStanding, runControlWorker } = require('../../../worker/control') as typeof ControlWorkerModule;
  await runControlWorker({
    ...settings,
    onReady: ({ address, namespace, taskQueue: queue, versioning: standing }) =>
      process.stdout.write(
        `Control worker polling "${queue}" on ${address} (namespace ${namespace}); ${describeStanding(standing)}. ` +
          'Ctrl-C stops it.\n',
      ),
  });
}

export async function gpuWorkerCommand(settings: GpuWorkerSettings): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const gpu = require('../../../worker/gpu') as typeof GpuWorkerModule;
  await gpu.runGpuWorker({
    ...settings,
    onReady: ({ address, namespace, taskQueue }) =>
      process.stdout.write(
        `GPU worker polling "${taskQueue}" on ${address} (namespace ${namespace}). Ctrl-C stops it.\n`,
      ),
  });
}
