/**
 * What every workflow test file needs, in one call inside its `describe`: a client to the run's dev
 * server (TEMPORAL_ADDRESS, set by scripts/run-tests.ts), a real control worker process on a unique task
 * queue (and a GPU worker when asked), the demo assets, a scratch directory, input builders that fill in
 * those paths, and cleanup after the file's tests. The fields are set once `before` has run.
 *
 *   describe('deploy', () => {
 *     const suite = workflowSuite('deploy');
 *     test('…', async () => {
 *       const handle = await suite.startDeploy(suite.deployInput({ replicas: 2 }));
 *       …
 *     });
 *   });
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';

import type { Client, WorkflowHandle } from '@temporalio/client';

import { batchWorkflowId } from '../../src/shared/batch-types';
import type { BatchScoreInput } from '../../src/shared/batch-types';
import { deployWorkflowId } from '../../src/shared/deploy-types';
import type { DeployInput } from '../../src/shared/deploy-types';
import { freePort } from '../../src/temporal/dev-server';
import { batchScore } from '../../workflows/batch-score';
import { deploy } from '../../workflows/deploy';
import { batchInput, deployInput } from './inputs';
import { demoAssets, startControlWorker, startGpuWorker, testClient, uniqueName } from './workers';
import type { WorkerProcess } from './workers';

export interface SuiteWorkerOptions {
  /** Extra command-line arguments for the worker. */
  args?: string[];
  /** Serve the worker's Prometheus metrics on a free port; read them with `suite.metrics(kind)`. */
  metrics?: boolean;
}

export interface WorkflowSuiteOptions {
  /** Added to process.env for every worker the suite starts. */
  env?: NodeJS.ProcessEnv;
  /** The control worker started before the tests; false for none (start them with `suite.startControlWorker`). */
  control?: false | SuiteWorkerOptions;
  /** A GPU worker on `suite.gpuTaskQueue`, started before the tests only when given. */
  gpu?: SuiteWorkerOptions;
}

export interface StartWorkerOptions {
  /** Default: the suite's queue for that kind of worker. */
  taskQueue?: string;
  args?: string[];
  /** Added to the suite's worker environment. */
  env?: NodeJS.ProcessEnv;
}

type WorkerKind = 'control' | 'gpu';

/** One test file's client, workers, assets and scratch directory; made by `workflowSuite`. */
export class WorkflowSuite {
  /** The control worker's queue, unique to this file. */
  readonly taskQueue: string;
  /** The GPU worker's queue, unique to this file; `batchInput` points jobs at it. */
  readonly gpuTaskQueue: string;
  client!: Client;
  assets!: Awaited<ReturnType<typeof demoAssets>>;
  /** A fresh directory, removed after the file's tests. */
  scratch!: string;
  /** The control worker started before the tests (unless `control: false`). */
  worker!: WorkerProcess;
  /** The GPU worker started before the tests (only with `gpu`). */
  gpuWorker!: WorkerProcess;

  private readonly workers: WorkerProcess[] = [];
  private readonly metricsPorts: Partial<Record<WorkerKind, number>> = {};
  private closeClient?: () => Promise<void>;

  constructor(
    readonly prefix: string,
    private readonly options: WorkflowSuiteOptions,
  ) {
    this.taskQueue = uniqueName(`${prefix}-control`);
    this.gpuTaskQueue = uniqueName(`${prefix}-gpu`);
  }

  /** The worker environment: process.env plus the suite's `env`. */
  workerEnv(): NodeJS.ProcessEnv {
    return { ...process.env, ...this.options.env };
  }

  /** Starts another control worker; every worker the suite started is stopped after the tests. */
  startControlWorker(options?: StartWorkerOptions): Promise<WorkerProcess> {
    return this.start('control', options);
  }

  /** Starts another GPU worker; every worker the suite started is stopped after the tests. */
  startGpuWorker(options?: StartWorkerOptions): Promise<WorkerProcess> {
    return this.start('gpu', options);
  }

  /** The text of a worker's /metrics (one started with `metrics: true`). */
  async metrics(kind: WorkerKind): Promise<string> {
    const port = this.metricsPorts[kind];
    assert.ok(port, `the ${kind} worker was started with metrics: true`);
    return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  }

  /** The demo sample whose colour is `label`. */
  sample(label: string): { path: string; label: string } {
    const found = this.assets.samples.find((s) => s.label === label);
    assert.ok(found, `demo assets have a ${label} sample`);
    return found;
  }

  /** `deployInput` with the demo model. */
  deployInput(overrides: Partial<DeployInput> = {}): DeployInput {
    return deployInput({ modelPath: this.assets.modelPath, ...overrides });
  }

  /** `batchInput` with the demo model, output in `<scratch>/<name>/out`, and the suite's GPU queue. */
  batchInput(overrides: Partial<BatchScoreInput> & Pick<BatchScoreInput, 'inputPath'>): BatchScoreInput {
    const name = overrides.name ?? uniqueName('batch');
    return batchInput({
      modelPath: this.assets.modelPath,
      outputDir: path.join(this.scratch, name, 'out'),
      gpuTaskQueue: this.gpuTaskQueue,
      ...overrides,
      name,
    });
  }

  /** Starts a deploy workflow under the deployment's workflow id, on the suite's queue unless told. */
  startDeploy(input: DeployInput, taskQueue = this.taskQueue): Promise<WorkflowHandle<typeof deploy>> {
    return this.client.workflow.start(deploy, { taskQueue, workflowId: deployWorkflowId(input.name), args: [input] });
  }

  /** Starts a batchScore workflow under the job's workflow id. */
  startBatch(input: BatchScoreInput): Promise<WorkflowHandle<typeof batchScore>> {
    return this.client.workflow.start(batchScore, {
      taskQueue: this.taskQueue,
      workflowId: batchWorkflowId(input.name),
      args: [input],
    });
  }

  /** @internal The `before` hook. */
  async setUp(): Promise<void> {
    this.assets = await demoAssets();
    this.scratch = await fs.mkdtemp(path.join(os.tmpdir(), `inferctl-${this.prefix}-`));
    const { client, close } = await testClient();
    this.client = client;
    this.closeClient = close;
    const { control = {}, gpu } = this.options;
    if (control !== false) this.worker = await this.startConfigured('control', control);
    if (gpu) this.gpuWorker = await this.startConfigured('gpu', gpu);
  }

  /** @internal The `after` hook. */
  async tearDown(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
    await this.closeClient?.();
    if (this.scratch) await fs.rm(this.scratch, { recursive: true, force: true });
  }

  private async start(kind: WorkerKind, { taskQueue, args = [], env }: StartWorkerOptions = {}) {
    const launch = kind === 'control' ? startControlWorker : startGpuWorker;
    const queue = taskQueue ?? (kind === 'control' ? this.taskQueue : this.gpuTaskQueue);
    const worker = await launch(queue, args, { ...this.workerEnv(), ...env });
    this.workers.push(worker);
    return worker;
  }

  private async startConfigured(kind: WorkerKind, { args = [], metrics }: SuiteWorkerOptions) {
    if (!metrics) return this.start(kind, { args });
    // The worker's Prometheus exporter (Temporal's core) takes a port and cannot report one it chose itself, so
    // the port is probed free here; another process can take it before the worker binds it. The worker then
    // exits with "Address already in use", and it is started again on another port.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        const worker = await this.start(kind, { args: [...args, '--metrics-port', String(port)] });
        this.metricsPorts[kind] = port;
        return worker;
      } catch (err) {
        if (attempt >= 5 || !/Address already in use/.test(String(err))) throw err;
      }
    }
  }
}

/** A `WorkflowSuite` for the enclosing `describe`, set up before its tests and torn down after them. */
export function workflowSuite(prefix: string, options: WorkflowSuiteOptions = {}): WorkflowSuite {
  const suite = new WorkflowSuite(prefix, options);
  before(() => suite.setUp());
  after(() => suite.tearDown());
  return suite;
}
