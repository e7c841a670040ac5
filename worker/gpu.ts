/**
 * The GPU scoring worker: activities only (no workflows), on its own task queue (`inferctl-gpu`).
 * One onnxruntime session per model per process, reused by every shard; several of these workers on
 * the same queue share a job's shards.
 *
 *   node dist/worker/gpu.js [--gpu [--device-id 0] [--allow-cpu-fallback]] [--max-concurrent-shards 2]
 *        [--script-processes 1] [--inference-threads 1] [--intra-op-threads N] [--inter-op-threads 1] [--allow-spinning]
 *        [--sharp-concurrency 1] [--uv-threadpool-size N]
 *   (or: inferctl gpu-worker …)
 * Inference runs on its own threads (src/scoring/inference-threads.ts), so heartbeats and the next
 * batch's decode go on while a batch is in inference. The thread settings (src/scoring/thread-tuning.ts)
 * default to sharing the cores between decode and inference; the flags are one table with
 * `inferctl gpu-worker` (worker/gpu-flags.ts), each also read from its INFERCTL_* variable
 * (INFERCTL_INTRA_OP_THREADS, …), and the settings in effect are logged at startup. How many images decode
 * at once is chosen from the first batches' measurements and logged ("Decode concurrency chosen",
 * src/batch/decode-split.ts).
 */
import os from 'node:os';

import { createScoringActivities } from '../activities/scoring';
import { intraOpSettingsToMeasure } from '../src/batch/decode-split';
import { InvalidInputError } from '../src/errors';
import { inferctlHome } from '../src/paths';
import { ClassifierPool } from '../src/scoring/classifier-pool';
import { workerEnvCache } from '../src/script/batch-app';
import type { ImageScript } from '../src/script/batch-app';
import { ScriptProcessPool } from '../src/script/batch-pool';
import type { ExecutionConfig } from '../src/scoring/classifier-pool';
import { applyDecodeThreading, cores, describeThreading, resolveThreading } from '../src/scoring/thread-tuning';
import type { DecodeThreading } from '../src/scoring/thread-tuning';
import { GPU_TASK_QUEUE } from '../src/shared/batch-types';
import { GPU_WORKER_FLAGS, gpuWorkerSettings } from './gpu-flags';
import { runWorker } from './run-worker';
import type { RunWorkerOptions } from './run-worker';
import { parseWorkerArgv } from './worker-flags';

export type GpuWorkerOptions = Omit<RunWorkerOptions, 'worker' | 'taskQueue'> & {
  /** Default inferctl-gpu. */
  taskQueue?: string;
  execution: ExecutionConfig;
  /** Shards one process scores at once (each decodes and infers its own batches). */
  maxConcurrentShards?: number;
  /** Python processes for script jobs, shared by the shards in flight (default 1). */
  scriptProcesses?: number;
  /** libvips and libuv threads (applied when the worker starts). */
  decode?: DecodeThreading;
  /** A script job built into this worker's image (--script-bundle, --script-python). */
  imageScript?: ImageScript;
  /** Where the one-time execution-provider and thread lines go (default stdout). */
  announce?: (line: string) => void;
};

export async function runGpuWorker(opts: GpuWorkerOptions): Promise<void> {
  applyDecodeThreading(opts.decode);
  (opts.announce ?? ((line: string) => console.log(line)))(describeThreading(opts.execution));
  // The decode split measures each intra-op setting where the operator left it to the worker.
  const intraOpSettings = intraOpSettingsToMeasure({
    cores: cores(),
    ...opts.execution,
    resolvedIntraOpThreads: resolveThreading(opts.execution).intraOpNumThreads,
  });
  const execution = { ...opts.execution, intraOpVariants: intraOpSettings.length > 1 };
  const classifiers = new ClassifierPool(execution, opts.announce);
  const scripts = new ScriptProcessPool(opts.scriptProcesses ?? 1);
  try {
    await runWorker({
      ...opts,
      taskQueue: opts.taskQueue ?? GPU_TASK_QUEUE,
      worker: {
        activities: createScoringActivities({
          classifiers,
          workerName: `${os.hostname()}:${process.pid}`,
          scripts,
          pythonEnvs: workerEnvCache(inferctlHome()),
          ...(opts.imageScript ? { imageScript: opts.imageScript } : {}),
          intraOpSettings,
        }),
        maxConcurrentActivityTaskExecutions: opts.maxConcurrentShards ?? 2,
      },
    });
  } finally {
    scripts.stopAll();
    await classifiers.releaseAll();
  }
}

if (require.main === module) {
  Promise.resolve()
    .then(() => gpuWorkerSettings(parseWorkerArgv(GPU_WORKER_FLAGS, process.argv.slice(2))))
    .then((settings) =>
      runGpuWorker({
        ...settings,
        onReady: ({ address, namespace, taskQueue }) =>
          console.log(`inferctl GPU worker polling ${taskQueue} on ${address} (namespace ${namespace})`),
      }),
    )
    .catch((err: unknown) => {
      console.error(`inferctl gpu-worker: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(err instanceof InvalidInputError ? 2 : 1);
    });
}
