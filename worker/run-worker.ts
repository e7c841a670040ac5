import { Worker } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';

import { connectWorker, dataConverter } from '../src/temporal/connection';
import { installWorkerRuntime } from './runtime';
import { deploymentOptions, promoteOnFirstStart } from './versioning';
import type { VersionStanding, WorkerVersion } from './versioning';

export interface RunWorkerOptions {
  taskQueue: string;
  /** Serve Prometheus metrics on this port (none by default; the flag tables read INFERCTL_METRICS_PORT). */
  metricsPort?: number;
  /** Stop (gracefully) once this settles; by default the worker runs until SIGINT/SIGTERM. */
  until?: Promise<unknown>;
  /**
   * Called once the worker polls (and, when versioned, once its version's standing is settled), with what
   * it listens on and as which Worker Deployment version.
   */
  onReady?: (info: { address: string; namespace: string; taskQueue: string; versioning?: VersionStanding }) => void;
  /** The Worker Deployment version it declares (worker/versioning.ts); none: an unversioned worker. */
  version?: WorkerVersion;
  /** What the worker runs; the connection, namespace and data converter come from the environment. */
  worker: Omit<WorkerOptions, 'connection' | 'namespace' | 'taskQueue' | 'dataConverter' | 'workerDeploymentOptions'>;
}

/**
 * What every inferctl worker process does: set up the runtime, connect with the SDK's environment
 * configuration, poll until stopped (in-flight tasks finish first), and close the connection. A versioned
 * worker makes its version current on its first start (promoteOnFirstStart) before it reports ready.
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
      dataConverter: dataConverter('worker'),
      ...(opts.version ? { workerDeploymentOptions: deploymentOptions(opts.version) } : {}),
    });
    const running = opts.until ? worker.runUntil(opts.until) : worker.run();
    let versioning: VersionStanding | undefined;
    if (opts.version) {
      try {
        versioning = await promoteOnFirstStart(connection, namespace, opts.version, running);
      } catch (err) {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running.catch(() => undefined);
        throw err;
      }
    }
    opts.onReady?.({ address, namespace, taskQueue: opts.taskQueue, versioning });
    await running;
  } finally {
    await connection.close();
  }
}
