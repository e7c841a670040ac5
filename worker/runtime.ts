import fs from 'node:fs';
import { inspect } from 'node:util';

import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { LogEntry, LogLevel } from '@temporalio/worker';

let installed = false;

export interface WorkerRuntimeOptions {
  /** Log level when INFERCTL_LOG_LEVEL is not set (workers: INFO; the demo: WARN). */
  logLevel?: LogLevel;
  /**
   * Serve Prometheus metrics (the SDK's and inferctl's) on this port, at /metrics (the workers' flag
   * tables read INFERCTL_METRICS_PORT); none by default. Bound to INFERCTL_METRICS_HOST (default 127.0.0.1).
   */
  metricsPort?: number;
  /** Append the SDK's and inferctl's log lines to this file instead of stderr (the demo keeps its terminal for steps). */
  logFile?: string;
}

/** One log line per entry, as the SDK's default logger writes it (its attributes on the same line), appended to `file`. */
function appendTo(file: string): (entry: LogEntry) => void {
  return ({ level, timestampNanos, message, meta }) => {
    const at = new Date(Number(timestampNanos / 1_000_000n)).toISOString();
    fs.appendFileSync(
      file,
      `${at} [${level}] ${message}${meta === undefined ? '' : ` ${inspect(meta, { breakLength: Infinity })}`}\n`,
    );
  };
}

/** Sets up the worker SDK's runtime (logging, metrics) once per process, before any worker starts. */
export function installWorkerRuntime(opts: WorkerRuntimeOptions = {}): void {
  if (installed) return;
  installed = true;
  const level = (process.env.INFERCTL_LOG_LEVEL?.toUpperCase() ?? opts.logLevel ?? 'INFO') as LogLevel;
  const port = opts.metricsPort;
  const host = process.env.INFERCTL_METRICS_HOST ?? '127.0.0.1';
  Runtime.install({
    logger: opts.logFile ? new DefaultLogger(level, appendTo(opts.logFile)) : new DefaultLogger(level),
    ...(port
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: `${host}:${port}`, countersTotalSuffix: true } } } }
      : {}),
  });
}
