/**
 * The control worker: runs the workflows and the control-plane activities (deploy steps, batch listing
 * and summary) on the `inferctl-control` task queue. Scoring runs on the GPU worker (worker/gpu.ts).
 *
 *   node dist/worker/control.js            (or: inferctl worker)
 */
import { parseArgs } from 'node:util';

import { Worker } from '@temporalio/worker';

import { createBatchActivities } from '../activities/batch';
import { createDeployActivities } from '../activities/deploy';
import { CONTROL_TASK_QUEUE } from '../src/shared/deploy-types';
import { LocalTarget } from '../src/targets/local/local-target';
import { connectWorker, dataConverter } from '../src/temporal/connection';
import { installWorkerRuntime } from './runtime';
import { workflowBundle } from './workflow-bundle';

export interface ControlWorkerOptions {
  taskQueue?: string;
  /** Stop (gracefully) once this settles; by default the worker runs until SIGINT/SIGTERM. */
  until?: Promise<unknown>;
  /** Serve Prometheus metrics on this port (default INFERCTL_METRICS_PORT). */
  metricsPort?: number;
  /** Called once the worker polls, with what it listens on. */
  onReady?: (info: { address: string; namespace: string; taskQueue: string }) => void;
}

export async function runControlWorker(opts: ControlWorkerOptions = {}): Promise<void> {
  const taskQueue = opts.taskQueue ?? CONTROL_TASK_QUEUE;
  installWorkerRuntime({ metricsPort: opts.metricsPort });
  const { connection, namespace, address } = await connectWorker();
  try {
    const worker = await Worker.create({
      connection,
      namespace,
      taskQueue,
      dataConverter: dataConverter(),
      workflowBundle: workflowBundle(),
      activities: {
        ...createDeployActivities({ targets: { local: new LocalTarget() } }),
        ...createBatchActivities(),
      },
    });
    opts.onReady?.({ address, namespace, taskQueue });
    // Returns after SIGINT/SIGTERM (or `until`) once in-flight tasks are done.
    if (opts.until) await worker.runUntil(opts.until);
    else await worker.run();
  } finally {
    await connection.close();
  }
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
