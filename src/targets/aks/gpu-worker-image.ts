/**
 * The GPU-worker image of a batch job on an AKS GPU pool: the scoring image (build-context.ts: the model,
 * its resolved preprocessing spec and labels, the production dependencies, CUDA's runtime) plus the GPU
 * worker's entry point (`dist/worker/gpu.js`, what `inferctl gpu-worker` runs) and the activities it
 * registers. Packed as deterministically as the scoring image, so an unchanged model and worker never
 * rebuild: the tag is the context's digest.
 *
 * A script job's worker image (`score --entry-script --target aks`) is the online script image's
 * (script-image.ts: the Python base, the environment in /opt/venv, the bundle with the source folder and
 * the model laid out as locally, the non-root user) with the worker's folders and the batch driver in
 * place of the front; the worker runs the bundle's script (--script-bundle, --script-python). Its base is
 * CUDA's when the pool's VM has a GPU and the environment has something that uses one; a CPU-only
 * environment gets the slim Python image, and the dry run says why.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { gpuRequirements } from '../../script/gpu-packages';
import type { ScriptPlan } from '../../script/script-plan';
import { packageRoot } from '../../paths';
import type { ScriptSpec } from '../../shared/target-types';
import { DOCKERFILE, IMAGE_FILES, packImageContext } from './build-context';
import type { BuildContext, ServedWith } from './build-context';
import { SCRIPT_IMAGE_FILES, cpuOnlyWarnings, scriptBuildContext, scriptDockerfile } from './script-image';

export const GPU_WORKER_REPOSITORY = 'inferctl-gpu-worker';

/** The compiled folders the worker needs at run time: its entry point, its activities, what they import. */
const WORKER_DIRS = ['dist/src', 'dist/worker', 'dist/activities'] as const;

/** The scoring image's Dockerfile, copying the worker's folders too. */
export const GPU_WORKER_DOCKERFILE = DOCKERFILE.replace(
  'COPY dist/src ./dist/src\n',
  WORKER_DIRS.map((d) => `COPY ${d} ./${d}\n`).join(''),
);

/** The container's arguments after `node` (the image's ENTRYPOINT): the worker on the job's own task queue. */
export function gpuWorkerArgs(taskQueue: string, maxConcurrentShards: number, script = false): string[] {
  const { bundle, venv } = SCRIPT_IMAGE_FILES;
  return [
    'dist/worker/gpu.js',
    '--task-queue',
    taskQueue,
    '--max-concurrent-shards',
    String(maxConcurrentShards),
    // CUDA when the node's GPU works; otherwise CPU, and the worker's log says so plainly.
    '--gpu',
    '--allow-cpu-fallback',
    // A script job's worker runs the script built into its image.
    ...(script ? ['--script-bundle', bundle, '--script-python', `${venv}/bin/python`] : []),
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

/** The batch driver (src/script/batch_driver.py): the script worker reads it from the package, next to dist/. */
const BATCH_DRIVER_FILE = 'src/script/batch_driver.py';

/** Azure's GPU VM sizes are its N family (NC, ND, NV, NG): Standard_N…. */
export function isGpuVmSize(vmSize: string): boolean {
  return /^standard_n/i.test(vmSize);
}

export interface ScriptWorkerImage {
  dockerfile: string;
  base: string;
  requirements: string[];
  /** Why the base is what it is (a GPU VM with a CPU-only environment gets the slim image). */
  warnings: string[];
}

/** The script job's worker image on a pool of `vmSize`: the online script image's, running the GPU worker. */
export function scriptWorkerImage(plan: ScriptPlan, vmSize: string): ScriptWorkerImage {
  const gpuVm = isGpuVmSize(vmSize);
  const gpu = gpuVm && gpuRequirements(plan.environment.requirements).length > 0;
  const { from, text } = scriptDockerfile(plan, gpu, {
    title: [
      `Built by inferctl: a batch job's GPU worker running the scoring script ${path.basename(plan.entryScript)}`,
      "(init() once per scoring slot, then run(mini_batch)) through inferctl's batch driver.",
    ],
    copies: [...WORKER_DIRS, BATCH_DRIVER_FILE],
  });
  const warnings =
    gpuVm && !gpu
      ? cpuOnlyWarnings(
          plan,
          true,
          'Add the GPU build of your framework (onnxruntime-gpu rather than onnxruntime) to use the GPU; the image is the slim Python one until then.',
        )
      : [];
  return { dockerfile: text, base: from, requirements: plan.environment.requirements, warnings };
}

/** The script worker's build context; `script.modelCopy` is the worker's copy of an az:// model (script-model.ts). */
export async function scriptWorkerContext(
  plan: ScriptPlan,
  modelPath: string,
  image: ScriptWorkerImage,
  script: Pick<ScriptSpec, 'modelCopy'> = {},
): Promise<BuildContext> {
  const driver = await readFile(path.join(packageRoot(), BATCH_DRIVER_FILE));
  return scriptBuildContext(plan, modelPath, image, script, {
    jsDirs: WORKER_DIRS,
    files: new Map([[BATCH_DRIVER_FILE, driver]]),
  });
}
