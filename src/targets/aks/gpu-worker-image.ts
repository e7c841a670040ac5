/**
 * The GPU-worker image of a batch job on an AKS GPU pool: the scoring image (build-context.ts: the model,
 * its resolved preprocessing spec and labels, the production dependencies, CUDA's runtime) plus the GPU
 * worker's entry point (`dist/worker/gpu.js`, what `inferctl gpu-worker` runs) and the activities it
 * registers. Packed as deterministically as the scoring image, so an unchanged model and worker never
 * rebuild: the tag is the context's digest.
 */
import path from 'node:path';

import { DOCKERFILE, IMAGE_FILES, packImageContext } from './build-context';
import type { BuildContext, ServedWith } from './build-context';

export const GPU_WORKER_REPOSITORY = 'inferctl-gpu-worker';

/** The compiled folders the worker needs at run time: its entry point, its activities, what they import. */
const WORKER_DIRS = ['dist/src', 'dist/worker', 'dist/activities'] as const;

/** The scoring image's Dockerfile, copying the worker's folders too. */
export const GPU_WORKER_DOCKERFILE = DOCKERFILE.replace(
  'COPY dist/src ./dist/src\n',
  WORKER_DIRS.map((d) => `COPY ${d} ./${d}\n`).join(''),
);

/** The container's arguments after `node` (the image's ENTRYPOINT): the worker on the job's own task queue. */
export function gpuWorkerArgs(taskQueue: string, maxConcurrentShards: number): string[] {
  return [
    'dist/worker/gpu.js',
    '--task-queue',
    taskQueue,
    '--max-concurrent-shards',
    String(maxConcurrentShards),
    // CUDA when the node's GPU works; otherwise CPU, and the worker's log says so plainly.
    '--gpu',
    '--allow-cpu-fallback',
  ];
}

/**
 * Where the worker finds the model and its labels inside the image, relative to its working directory
 * (WORKDIR /app): the paths the job's shards name on the GPU workers.
 */
export const WORKER_MODEL_FILES = {
  modelPath: path.posix.basename(IMAGE_FILES.model),
  labelsPath: path.posix.basename(IMAGE_FILES.labels),
} as const;

export function gpuWorkerContext(modelPath: string, served: ServedWith): Promise<BuildContext> {
  return packImageContext(GPU_WORKER_DOCKERFILE, modelPath, served, WORKER_DIRS);
}
