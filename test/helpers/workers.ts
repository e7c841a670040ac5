/**
 * Test helpers around the real thing: a control worker in its own process (so tests can SIGKILL it),
 * a client to the run-wide dev server that scripts/run-tests.ts started, and the generated demo assets.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { Client, Connection } from '@temporalio/client';

import { ensureDemoAssets } from '../../src/demo/demo-assets';
import { inferctlHome } from '../../src/paths';

const CONTROL_WORKER = path.resolve(__dirname, '..', '..', 'worker', 'control.js');
const GPU_WORKER = path.resolve(__dirname, '..', '..', 'worker', 'gpu.js');

export function requireTemporalAddress(): string {
  const address = process.env.TEMPORAL_ADDRESS;
  if (!address) {
    throw new Error('TEMPORAL_ADDRESS is not set: run the tests with `npm test`, which starts a dev server.');
  }
  return address;
}

export async function testClient(): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: requireTemporalAddress() });
  const client = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
  return { client, close: () => connection.close() };
}

/** A name no other test (or earlier run) uses: deployment names, task queues. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
}

export interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  /** SIGKILL, as a crash would. */
  kill: () => Promise<void>;
  /** SIGTERM and wait for a graceful exit. */
  stop: () => Promise<void>;
}

/** Starts `node dist/worker/control.js --task-queue <queue>` and waits until it polls. */
export function startControlWorker(
  taskQueue: string,
  extraArgs: string[] = [],
  env?: NodeJS.ProcessEnv,
): Promise<WorkerProcess> {
  return startWorkerProcess(CONTROL_WORKER, ['--task-queue', taskQueue, ...extraArgs], env);
}

/** Starts `node dist/worker/gpu.js --task-queue <queue> …` (CPU provider here) and waits until it polls. */
export function startGpuWorker(
  taskQueue: string,
  extraArgs: string[] = [],
  env?: NodeJS.ProcessEnv,
): Promise<WorkerProcess> {
  return startWorkerProcess(GPU_WORKER, ['--task-queue', taskQueue, ...extraArgs], env);
}

/** A GPU worker started as users start it: `inferctl gpu-worker --task-queue … [flags]`. */
export function startGpuWorkerCli(
  taskQueue: string,
  extraArgs: string[] = [],
  env?: NodeJS.ProcessEnv,
): Promise<WorkerProcess> {
  const bin = path.resolve(__dirname, '..', '..', '..', 'bin', 'inferctl.js');
  return startWorkerProcess(bin, ['gpu-worker', '--task-queue', taskQueue, ...extraArgs], env);
}

async function startWorkerProcess(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [script, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  // Generous for a loaded 2-core machine; a worker that misses it is killed, never left running.
  const deadline = Date.now() + 60_000;
  // The worker's own startup line ("… worker polling …"), printed once a versioned worker's version is current;
  // not the SDK's log lines.
  while (!output.includes('worker polling')) {
    if (child.exitCode !== null) throw new Error(`${path.basename(script)} exited early:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`${path.basename(script)} did not start in 60 s (killed):\n${output}`);
    }
    await delay(50);
  }
  return {
    child,
    output: () => output,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The generated colour classifier and sample JPEGs, shared by every test of the run. */
export function demoAssets(): ReturnType<typeof ensureDemoAssets> {
  return ensureDemoAssets(path.join(inferctlHome(), 'assets'));
}

/** Polls `fn` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
    }
    await delay(100);
  }
}
