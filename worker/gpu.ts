/**
 * The GPU scoring worker: activities only (no workflows), on its own task queue (`inferctl-gpu`).
 * One onnxruntime session per model per process, reused by every shard; several of these workers on
 * the same queue share a job's shards.
 *
 *   node dist/worker/gpu.js [--gpu [--device-id 0] [--allow-cpu-fallback]] [--max-concurrent-shards 2]
 *        [--inference-threads 1] [--intra-op-threads N] [--inter-op-threads 1] [--allow-spinning]
 *        [--sharp-concurrency 1] [--uv-threadpool-size N]
 *   (or: inferctl gpu-worker …)
 * Inference runs on its own threads (src/scoring/inference-threads.ts), so heartbeats and the next
 * batch's decode go on while a batch is in inference. The thread settings (src/scoring/thread-tuning.ts)
 * default to sharing the cores between decode and inference; each flag also reads INFERCTL_<NAME>
 * (INFERCTL_INTRA_OP_THREADS, …), and the settings in effect are logged at startup.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';

import { createScoringActivities } from '../activities/scoring';
import { InvalidInputError } from '../src/errors';
import { ClassifierPool } from '../src/scoring/classifier-pool';
import type { ExecutionConfig } from '../src/scoring/classifier-pool';
import { applyDecodeThreading, describeThreading } from '../src/scoring/thread-tuning';
import type { DecodeThreading } from '../src/scoring/thread-tuning';
import { GPU_TASK_QUEUE } from '../src/shared/batch-types';
import { runWorker } from './run-worker';
import type { RunWorkerOptions } from './run-worker';

export type GpuWorkerOptions = Omit<RunWorkerOptions, 'worker' | 'taskQueue'> & {
  /** Default inferctl-gpu. */
  taskQueue?: string;
  execution: ExecutionConfig;
  /** Shards one process scores at once (each decodes and infers its own batches). */
  maxConcurrentShards?: number;
  /** libvips and libuv threads (applied when the worker starts). */
  decode?: DecodeThreading;
  /** Where the one-time execution-provider and thread lines go (default stdout). */
  announce?: (line: string) => void;
};

export async function runGpuWorker(opts: GpuWorkerOptions): Promise<void> {
  applyDecodeThreading(opts.decode);
  (opts.announce ?? ((line: string) => console.log(line)))(describeThreading(opts.execution));
  const classifiers = new ClassifierPool(opts.execution, opts.announce);
  try {
    await runWorker({
      ...opts,
      taskQueue: opts.taskQueue ?? GPU_TASK_QUEUE,
      worker: {
        activities: createScoringActivities({ classifiers, workerName: `${os.hostname()}:${process.pid}` }),
        maxConcurrentActivityTaskExecutions: opts.maxConcurrentShards ?? 2,
      },
    });
  } finally {
    await classifiers.releaseAll();
  }
}

/** The GPU worker's flags as given (strings from the command line), shared with `inferctl gpu-worker`. */
export interface GpuWorkerFlags {
  taskQueue: string;
  gpu: boolean;
  deviceId: string;
  allowCpuFallback: boolean;
  maxConcurrentShards: string;
  intraOpThreads?: string;
  interOpThreads?: string;
  allowSpinning?: boolean;
  inferenceThreads?: string;
  sharpConcurrency?: string;
  uvThreadpoolSize?: string;
  graphOptimization: string;
  metricsPort?: string;
}

/** Checks the flags and turns them into worker options; every problem is reported at once. */
export function gpuWorkerOptions(flags: GpuWorkerFlags): GpuWorkerOptions {
  const problems: string[] = [];
  const whole = (flag: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) problems.push(`${flag} must be a whole number ≥ ${min} (got ${v})`);
    return n;
  };
  const levels = ['disabled', 'basic', 'extended', 'all'];
  if (!levels.includes(flags.graphOptimization)) {
    problems.push(`--graph-optimization must be one of ${levels.join(', ')} (got ${flags.graphOptimization})`);
  }
  const optional = (flag: string, v: string | undefined, min: number) =>
    v === undefined ? undefined : whole(flag, v, min);
  const options: GpuWorkerOptions = {
    taskQueue: flags.taskQueue,
    metricsPort: flags.metricsPort === undefined ? undefined : whole('--metrics-port', flags.metricsPort, 1),
    maxConcurrentShards: whole('--max-concurrent-shards', flags.maxConcurrentShards, 1),
    execution: {
      executionProvider: flags.gpu ? 'cuda' : 'cpu',
      deviceId: whole('--device-id', flags.deviceId, 0),
      allowCpuFallback: flags.allowCpuFallback,
      intraOpNumThreads: optional('--intra-op-threads', flags.intraOpThreads, 1),
      interOpNumThreads: optional('--inter-op-threads', flags.interOpThreads, 1),
      allowSpinning: flags.allowSpinning,
      inferenceThreads: optional('--inference-threads', flags.inferenceThreads, 1),
      graphOptimizationLevel: flags.graphOptimization as ExecutionConfig['graphOptimizationLevel'],
    },
    decode: {
      sharpConcurrency: optional('--sharp-concurrency', flags.sharpConcurrency, 1),
      uvThreadpoolSize: optional('--uv-threadpool-size', flags.uvThreadpoolSize, 1),
    },
  };
  if (problems.length > 0) throw new InvalidInputError(problems.join('; '));
  return options;
}

if (require.main === module) {
  Promise.resolve()
    .then(() => {
      const { values } = parseArgs({
        options: {
          'task-queue': { type: 'string', default: GPU_TASK_QUEUE },
          gpu: { type: 'boolean', default: false },
          'device-id': { type: 'string', default: '0' },
          'allow-cpu-fallback': { type: 'boolean', default: false },
          'max-concurrent-shards': { type: 'string', default: '2' },
          'intra-op-threads': { type: 'string', default: process.env.INFERCTL_INTRA_OP_THREADS },
          'inter-op-threads': { type: 'string', default: process.env.INFERCTL_INTER_OP_THREADS },
          'allow-spinning': { type: 'boolean', default: process.env.INFERCTL_ALLOW_SPINNING === '1' },
          'inference-threads': { type: 'string', default: process.env.INFERCTL_INFERENCE_THREADS },
          'sharp-concurrency': { type: 'string', default: process.env.INFERCTL_SHARP_CONCURRENCY },
          'uv-threadpool-size': { type: 'string', default: process.env.INFERCTL_UV_THREADPOOL_SIZE },
          'graph-optimization': { type: 'string', default: 'all' },
          'metrics-port': { type: 'string' },
        },
      });
      return gpuWorkerOptions({
        taskQueue: values['task-queue'],
        gpu: values.gpu,
        deviceId: values['device-id'],
        allowCpuFallback: values['allow-cpu-fallback'],
        maxConcurrentShards: values['max-concurrent-shards'],
        intraOpThreads: values['intra-op-threads'],
        interOpThreads: values['inter-op-threads'],
        allowSpinning: values['allow-spinning'],
        inferenceThreads: values['inference-threads'],
        sharpConcurrency: values['sharp-concurrency'],
        uvThreadpoolSize: values['uv-threadpool-size'],
        graphOptimization: values['graph-optimization'],
        metricsPort: values['metrics-port'],
      });
    })
    .then((opts) =>
      runGpuWorker({
        ...opts,
        onReady: ({ address, namespace, taskQueue }) =>
          console.log(`inferctl GPU worker polling ${taskQueue} on ${address} (namespace ${namespace})`),
      }),
    )
    .catch((err: unknown) => {
      console.error(`inferctl gpu-worker: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    });
}
