/**
 * The GPU worker's flags, one table for `inferctl gpu-worker` and `node dist/worker/gpu.js` alike; each
 * falls back to its INFERCTL_* variable, then to its default (worker/worker-flags.ts).
 */
import type { ExecutionConfig } from '../src/scoring/classifier-pool';
import type { ImageScript } from '../src/script/batch-app';
import { SCRIPT_MANIFEST } from '../src/script/bundle-manifest';
import type { DecodeThreading } from '../src/scoring/thread-tuning';
import { GPU_TASK_QUEUE } from '../src/shared/batch-types';
import { WorkerFlagReader } from './worker-flags';
import type { GivenFlags, WorkerFlagTable } from './worker-flags';

const GRAPH_LEVELS = ['disabled', 'basic', 'extended', 'all'] as const;

export const GPU_WORKER_FLAGS: WorkerFlagTable = [
  {
    name: 'task-queue',
    value: '<queue>',
    description: 'task queue to poll',
    default: GPU_TASK_QUEUE,
    env: 'INFERCTL_GPU_TASK_QUEUE',
  },
  {
    name: 'gpu',
    description: 'use the CUDA execution provider (CUDA 12 + cuDNN 9 and the CUDA provider install; see README)',
    env: 'INFERCTL_GPU',
  },
  { name: 'device-id', value: '<n>', description: 'CUDA device', default: '0', env: 'INFERCTL_DEVICE_ID' },
  {
    name: 'allow-cpu-fallback',
    description: 'with --gpu: run on CPU when CUDA cannot load instead of failing',
    env: 'INFERCTL_ALLOW_CPU_FALLBACK',
  },
  {
    name: 'max-concurrent-shards',
    value: '<n>',
    description: 'shards this process scores at once',
    default: '2',
    env: 'INFERCTL_MAX_CONCURRENT_SHARDS',
  },
  {
    name: 'script-processes',
    value: '<n>',
    description: "Python processes for script jobs (Azure ML's max_concurrency_per_instance), shared by the shards",
    default: '1',
    env: 'INFERCTL_SCRIPT_PROCESSES',
  },
  {
    name: 'inference-threads',
    value: '<n>',
    description: 'inference threads, each with its own onnxruntime session',
    defaultText: '1',
    env: 'INFERCTL_INFERENCE_THREADS',
  },
  {
    name: 'intra-op-threads',
    value: '<n>',
    description:
      'onnxruntime intra-op threads per session; unset, the first batches measure the cores, halving to 1, ' +
      'and keep the fastest (with --gpu or --inference-threads above 1: the cores / inference threads)',
    defaultText: 'measured',
    env: 'INFERCTL_INTRA_OP_THREADS',
  },
  {
    name: 'inter-op-threads',
    value: '<n>',
    description: 'onnxruntime inter-op threads per session',
    defaultText: '1',
    env: 'INFERCTL_INTER_OP_THREADS',
  },
  {
    name: 'allow-spinning',
    description: "let onnxruntime's idle threads spin (off: they leave the cores to decode)",
    env: 'INFERCTL_ALLOW_SPINNING',
  },
  {
    name: 'sharp-concurrency',
    value: '<n>',
    description: 'libvips threads per image',
    defaultText: '1',
    env: 'INFERCTL_SHARP_CONCURRENCY',
  },
  {
    name: 'uv-threadpool-size',
    value: '<n>',
    description: "libuv's thread pool, where images decode",
    defaultText: 'max(4, cores)',
    env: 'INFERCTL_UV_THREADPOOL_SIZE',
  },
  {
    name: 'graph-optimization',
    value: '<level>',
    description: GRAPH_LEVELS.join(' | '),
    default: 'all',
    env: 'INFERCTL_GRAPH_OPTIMIZATION',
  },
  {
    name: 'script-bundle',
    value: '<dir>',
    description: "a script job's bundle built into this worker's image (--target aks): its script jobs run it",
    defaultText: 'none',
    env: 'INFERCTL_SCRIPT_BUNDLE',
  },
  {
    name: 'script-python',
    value: '<path>',
    description: "with --script-bundle: the image's Python environment's interpreter",
    defaultText: 'none',
    env: 'INFERCTL_SCRIPT_PYTHON',
  },
  {
    name: 'metrics-port',
    value: '<port>',
    description: 'serve Prometheus metrics on 127.0.0.1:<port>/metrics',
    defaultText: 'none',
    env: 'INFERCTL_METRICS_PORT',
  },
];

/** What the GPU worker runs with, from its flags (see GpuWorkerOptions in worker/gpu.ts). */
export interface GpuWorkerSettings {
  taskQueue: string;
  metricsPort?: number;
  maxConcurrentShards: number;
  scriptProcesses: number;
  execution: ExecutionConfig;
  decode: DecodeThreading;
  imageScript?: ImageScript;
}

/** Checks the flags (given, else INFERCTL_*, else default) and turns them into settings; every problem at once. */
export function gpuWorkerSettings(given: GivenFlags, env: NodeJS.ProcessEnv = process.env): GpuWorkerSettings {
  const f = new WorkerFlagReader(GPU_WORKER_FLAGS, given, env);
  const settings: GpuWorkerSettings = {
    taskQueue: f.string('task-queue') ?? GPU_TASK_QUEUE,
    metricsPort: f.whole('metrics-port', 1),
    maxConcurrentShards: f.whole('max-concurrent-shards', 1) ?? 2,
    scriptProcesses: f.whole('script-processes', 1) ?? 1,
    execution: {
      executionProvider: f.boolean('gpu') ? 'cuda' : 'cpu',
      deviceId: f.whole('device-id', 0) ?? 0,
      allowCpuFallback: f.boolean('allow-cpu-fallback'),
      intraOpNumThreads: f.whole('intra-op-threads', 1),
      interOpNumThreads: f.whole('inter-op-threads', 1),
      allowSpinning: f.boolean('allow-spinning'),
      inferenceThreads: f.whole('inference-threads', 1),
      graphOptimizationLevel: f.oneOf('graph-optimization', GRAPH_LEVELS) ?? 'all',
    },
    decode: {
      sharpConcurrency: f.whole('sharp-concurrency', 1),
      uvThreadpoolSize: f.whole('uv-threadpool-size', 1),
    },
  };
  const bundle = f.existing('script-bundle', 'folder', SCRIPT_MANIFEST);
  const python = f.existing('script-python', 'file');
  if ((f.string('script-bundle') === undefined) !== (f.string('script-python') === undefined)) {
    f.problem('--script-bundle and --script-python go together: the bundle and its interpreter');
  }
  f.done();
  if (bundle && python) settings.imageScript = { bundle, python };
  return settings;
}
