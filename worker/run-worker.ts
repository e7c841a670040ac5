import { Worker } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';

import { connectWorker, dataConverter } from '../src/temporal/connection';
import { installWorkerRuntime } from './runtime';

export interface RunWorkerOptions {
  taskQueue: string;
  /** Serve Prometheus metrics on this port (default INFERCTL_METRICS_PORT). */
  metricsPort?: number;
  /** Stop (gracefully) once this settles; by default the worker runs until SIGINT/SIGTERM. */
  until?: Promise<unknown>;
  /** Called once the worker polls, with what it listens on. */
  onReady?: (info: { address: string; namespace: string; taskQueue: string }) => void;
  /** What the worker runs; the connection, namespace and data converter come from the environment. */
  worker: Omit<WorkerOptions, 'connection' | 'namespace' | 'taskQueue' | 'dataConverter'>;
}

/**
 * What every inferctl worker process does: set up the runtime, connect with the SDK's environment
 * configuration, poll until stopped (in-flight tasks finish first), and close the connection.
 */
export async function runWorker(opts: RunWorkerOptions): Promise<void> {
  installWorkerRuntime({ metricsPort: opts.metricsPort });
  const { connection, namespace, address } = await connectWorker();
  try {
    const worker = await Worker.create({
      ...opts.worker,
      connection,
      namespace,
      taskQueue: opts.taskQueue,
      dataConverter: dataConverter(),
    });
    opts.onReady?.({ address, namespace, taskQueue: opts.taskQueue });
    if (opts.until) await worker.runUntil(opts.until);
    else await worker.run();
  } finally {
    await connection.close();
  }
}
