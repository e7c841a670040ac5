/**
 * `inferctl worker` and `inferctl gpu-worker`: run a worker in the foreground until Ctrl-C. The worker
 * modules are loaded when the command runs, not at the top: the worker SDK is heavy and only these need it.
 */
import type { Command } from '@commander-js/extra-typings';

import { GPU_TASK_QUEUE } from '../../shared/batch-types';
import { CONTROL_TASK_QUEUE } from '../../shared/deploy-types';
import { int } from '../flag-parsers';
import { workflowBuildId } from '../../../worker/workflow-bundle';
import type * as ControlWorkerModule from '../../../worker/control';
import type * as GpuWorkerModule from '../../../worker/gpu';
import type { GpuWorkerFlags } from '../../../worker/gpu';

/** `inferctl worker`: flags in, `workerCommand` out. */
export function addWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      'Run the control worker (deploy workflows and their activities) until Ctrl-C. It is a Worker Deployment ' +
        'version: deployments stay pinned to the version they started on, batch jobs and the janitor move to ' +
        'the current one (README: Upgrading workers with deployments in flight)',
    )
    .option('--task-queue <queue>', 'task queue to poll', CONTROL_TASK_QUEUE)
    .option(
      '--deployment-name <name>',
      'Worker Deployment name (default: INFERCTL_WORKER_DEPLOYMENT, else the task queue)',
    )
    .option(
      '--build-id <id>',
      "build id of this version (default: INFERCTL_BUILD_ID, else the package version and the workflow bundle's hash)",
    )
    .option(
      '--no-make-current',
      'do not make a new version current on its first start (promote it with `temporal worker deployment set-current-version`)',
    )
    .option('--unversioned', 'poll without Worker Versioning, as before Worker Deployments (no pinning)')
    .option(
      '--metrics-port <port>',
      'serve Prometheus metrics on 127.0.0.1:<port>/metrics (default: INFERCTL_METRICS_PORT)',
      int('--metrics-port', 1),
    )
    .addHelpText('after', thisBuild)
    .action(async (o) => {
      await workerCommand({
        taskQueue: o.taskQueue,
        metricsPort: o.metricsPort,
        deploymentName: o.deploymentName,
        buildId: o.buildId,
        makeCurrent: o.makeCurrent,
        unversioned: Boolean(o.unversioned),
      });
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

/** `inferctl gpu-worker`: flags in, `gpuWorkerCommand` out (the worker checks its own flags, all at once). */
export function addGpuWorkerCommand(program: Command): void {
  program
    .command('gpu-worker')
    .description('Run a GPU scoring worker (batch shards, onnxruntime-node) until Ctrl-C')
    .option('--task-queue <queue>', 'task queue to poll', GPU_TASK_QUEUE)
    .option('--gpu', 'use the CUDA execution provider (CUDA 12 + cuDNN 9 and the CUDA provider install; see README)')
    .option('--device-id <n>', 'CUDA device', '0')
    .option('--allow-cpu-fallback', 'with --gpu: run on CPU when CUDA cannot load instead of failing')
    .option('--max-concurrent-shards <n>', 'shards this process scores at once', '2')
    .option('--inference-threads <n>', 'inference threads, each with its own onnxruntime session (default 1)')
    .option('--intra-op-threads <n>', 'onnxruntime intra-op threads per session (default: the core count)')
    .option('--inter-op-threads <n>', 'onnxruntime inter-op threads per session (default 1)')
    .option('--allow-spinning', "let onnxruntime's idle threads spin (default off: they leave the cores to decode)")
    .option('--sharp-concurrency <n>', 'libvips threads per image (default 1)')
    .option('--uv-threadpool-size <n>', "libuv's thread pool, where images decode (default max(4, cores))")
    .option('--graph-optimization <level>', 'disabled | basic | extended | all', 'all')
    .option(
      '--metrics-port <port>',
      'serve Prometheus metrics on 127.0.0.1:<port>/metrics (default: INFERCTL_METRICS_PORT)',
    )
    .action(async (o) => {
      await gpuWorkerCommand({
        ...o,
        gpu: Boolean(o.gpu),
        allowCpuFallback: Boolean(o.allowCpuFallback),
        allowSpinning: Boolean(o.allowSpinning),
      });
    });
}

export interface WorkerCommandOptions {
  taskQueue: string;
  metricsPort?: number;
  deploymentName?: string;
  buildId?: string;
  makeCurrent?: boolean;
  unversioned?: boolean;
}

export async function workerCommand(opts: WorkerCommandOptions): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { describeStanding, runControlWorker } = require('../../../worker/control') as typeof ControlWorkerModule;
  const { taskQueue, metricsPort, ...versioning } = opts;
  await runControlWorker({
    taskQueue,
    metricsPort,
    versioning,
    onReady: ({ address, namespace, taskQueue: queue, versioning: standing }) =>
      process.stdout.write(
        `Control worker polling "${queue}" on ${address} (namespace ${namespace}); ${describeStanding(standing)}. ` +
          'Ctrl-C stops it.\n',
      ),
  });
}

export async function gpuWorkerCommand(flags: GpuWorkerFlags): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const gpu = require('../../../worker/gpu') as typeof GpuWorkerModule;
  await gpu.runGpuWorker({
    ...gpu.gpuWorkerOptions(flags),
    onReady: ({ address, namespace, taskQueue }) =>
      process.stdout.write(
        `GPU worker polling "${taskQueue}" on ${address} (namespace ${namespace}). Ctrl-C stops it.\n`,
      ),
  });
}
