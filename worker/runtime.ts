import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { LogLevel } from '@temporalio/worker';

let installed = false;

/**
 * Sets the worker SDK's log level once per process: INFERCTL_LOG_LEVEL, else `fallback`.
 * Workers log INFO by default; the demo asks for WARN so its own step-by-step output stays readable.
 */
export function installWorkerRuntime(fallback: LogLevel = 'INFO'): void {
  if (installed) return;
  installed = true;
  const level = (process.env.INFERCTL_LOG_LEVEL?.toUpperCase() ?? fallback) as LogLevel;
  Runtime.install({ logger: new DefaultLogger(level) });
}
