import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { LogLevel } from '@temporalio/worker';

let installed = false;

export interface WorkerRuntimeOptions {
  /** Log level when INFERCTL_LOG_LEVEL is not set (workers: INFO; the demo: WARN). */
  logLevel?: LogLevel;
  /**
   * Serve Prometheus metrics (the SDK's and inferctl's) on this port, at /metrics (the workers' flag
   * tables read INFERCTL_METRICS_PORT); none by default. Bound to INFERCTL_METRICS_HOST (default 127.0.0.1).
   */
  metricsPort?: number;
}

/** Sets up the worker SDK's runtime (logging, metrics) once per process, before any worker starts. */
export function installWorkerRuntime(opts: WorkerRuntimeOptions = {}): void {
  if (installed) return;
  installed = true;
  const level = (process.env.INFERCTL_LOG_LEVEL?.toUpperCase() ?? opts.logLevel ?? 'INFO') as LogLevel;
  const port = opts.metricsPort;
  const host = process.env.INFERCTL_METRICS_HOST ?? '127.0.0.1';
  Runtime.install({
    logger: new DefaultLogger(level),
    ...(port
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: `${host}:${port}`, countersTotalSuffix: true } } } }
      : {}),
  });
}
