/**
 * The image a scoring script runs in on aks, built by ACR Tasks from the context made here (and shown by
 * `--dry-run`): a Python base image of the environment's minor version, the environment installed into
 * /opt/venv from the same requirements the local target builds, Node.js and the compiled front from the
 * official Node image, the app folder with the model laid out as locally (bundle/, with its script.json), a
 * non-root user; the key and TLS Secrets mounted as the ONNX server's are (0440, the pod's fsGroup the
 * image's group), and the container's arguments.
 *
 * With `--gpu`, the base is NVIDIA's CUDA 12 + cuDNN 9 runtime on Ubuntu 22.04 and the environment's Python
 * comes from Ubuntu's packages with the deadsnakes archive beside them (every supported minor, 3.8 to 3.13;
 * the official Python images are Debian-built and carry no CUDA); the rest of the image is the same.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { SCRIPT_MANIFEST } from '../../script/bundle-manifest';
import { gpuRequirements } from '../../script/gpu-packages';
import type { ScriptManifest } from '../../script/bundle-manifest';
import { walkScriptModel, walkTree } from '../../script/model-tree';
import { environmentHash } from '../../script/python-env';
import type { ScriptPlan } from '../../script/script-plan';
import type { ScriptSpec } from '../../shared/target-types';
import { IMAGE_GID, IMAGE_UID, packContext, packageFiles } from './build-context';
import type { BuildContext } from './build-context';
import { API_KEY_FILE_MODE, API_KEY_MOUNT, SCORER_PORT, TLS_MOUNT, secretName } from './kubernetes-manifests';

/** Where the image keeps the bundle (its app folder is AML_APP_ROOT) and the environment. */
export const SCRIPT_IMAGE_FILES = { bundle: '/var/azureml-app', venv: '/opt/venv' } as const;

/** The CUDA base of `--gpu` script images: CUDA 12.6 with cuDNN 9 (what onnxruntime-gpu 1.20+ and torch 2.5+ load). */
export const SCRIPT_CUDA_BASE = 'nvcr.io/nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04';

export interface ScriptImage {
  dockerfile: string;
  /** The base image the environment is installed on. */
  base: string;
  /** requirements.txt in the build context, as the local target installs it. */
  requirements: string[];
  /** The container's arguments (after the image's `node` entrypoint). */
  args: string[];
  /** The Secrets mounted, with their modes (octal). */
  mounts: Array<{ path: string; mode: string; from: string }>;
  user: string;
  /** Said when --gpu is asked of an environment with nothing that uses a GPU. */
  warnings: string[];
}

/** The Python base stage: the official slim image, or (--gpu) CUDA with Ubuntu's or deadsnakes' Python. */
function pythonBase(minor: string, gpu: boolean): { from: string; lines: string[] } {
  const { venv } = SCRIPT_IMAGE_FILES;
  if (!gpu) return { from: `python:${minor}-slim-bookworm`, lines: [`RUN python -m venv ${venv}`] };
  return {
    from: SCRIPT_CUDA_BASE,
    lines: [
      'RUN apt-get update && apt-get install -y --no-install-recommends software-properties-common gpg-agent \\',
      ' && add-apt-repository -y ppa:deadsnakes/ppa \\',
      ` && apt-get install -y --no-install-recommends python${minor} python${minor}-venv \\`,
      ' && apt-get purge -y software-properties-common gpg-agent && apt-get autoremove -y \\',
      ' && rm -rf /var/lib/apt/lists/*',
      `RUN python${minor} -m venv ${venv}`,
    ],
  };
}

/** The script container's arguments (after the image's `node` entrypoint): the front, which starts Python. */
export function scriptContainerArgs(tls: boolean): string[] {
  const { bundle, venv } = SCRIPT_IMAGE_FILES;
  return [
    'dist/src/script/front-main.js',
    '--bundle',
    bundle,
    '--python',
    `${venv}/bin/python`,
    '--api-key-file',
    `${API_KEY_MOUNT}/api-key`,
    '--child-record',
    '/tmp/python.json',
    '--python-log',
    '/tmp/python.log',
    '--host',
    '0.0.0.0',
    '--port',
    String(SCORER_PORT),
    ...(tls ? ['--tls-cert', `${TLS_MOUNT}/tls.crt`, '--tls-key', `${TLS_MOUNT}/tls.key`] : []),
  ];
}

/** What an image built on the script's environment runs from it: the online front, or the batch GPU worker. */
export interface ScriptImageApp {
  /** The Dockerfile's opening comment lines (without '# '). */
  title: string[];
  /** The compiled folders (and any other package files) it copies into /app, by path in the context. */
  copies: readonly string[];
  /** The port it listens on, when it listens. */
  expose?: number;
}

/**
 * The Dockerfile of an image built on a script's environment: Node.js and the production dependencies from
 * the official Node image, the Python base (slim, or CUDA with `gpu`), the environment installed into
 * /opt/venv, `app.copies` into /app, the bundle, and the image's non-root user.
 */
export function scriptDockerfile(plan: ScriptPlan, gpu: boolean, app: ScriptImageApp): { from: string; text: string } {
  const { bundle, venv } = SCRIPT_IMAGE_FILES;
  const base = pythonBase(plan.interpreter.minor, gpu);
  const text = `${app.title.map((l) => `# ${l}`).join('\n')}
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --no-audit --no-fund

FROM ${base.from}
${base.lines.join('\n')}
COPY requirements.txt ${venv}/requirements.txt
RUN ${venv}/bin/pip install --no-cache-dir --disable-pip-version-check --no-input -r ${venv}/requirements.txt
COPY --from=deps /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
${app.copies.map((c) => `COPY ${c} ./${c}`).join('\n')}
# app/ (AML_APP_ROOT: the source folder, the model under ${plan.modelDirRelative}/) and script.json
COPY bundle ${bundle}
USER ${IMAGE_UID}:${IMAGE_GID}
${app.expose !== undefined ? `EXPOSE ${app.expose}\n` : ''}ENTRYPOINT ["node"]
`;
  return { from: base.from, text };
}

/** The warning for a CUDA image whose environment has nothing that uses a GPU; [] otherwise. */
export function cpuOnlyWarnings(plan: ScriptPlan, gpu: boolean, remedy: string): string[] {
  if (!gpu || gpuRequirements(plan.environment.requirements).length > 0) return [];
  return [
    'the environment is CPU-only: nothing in it uses a GPU (onnxruntime-gpu, torch, tensorflow, jax[cuda…], ' +
      `cupy-cuda…); the script will run on the CPU of a GPU node. ${remedy}`,
  ];
}

export function scriptImage(plan: ScriptPlan, opts: { name: string; tls: boolean; gpu?: boolean }): ScriptImage {
  const { from, text: dockerfile } = scriptDockerfile(plan, Boolean(opts.gpu), {
    title: [
      `Built by inferctl: the scoring script ${path.basename(plan.entryScript)} run by azureml-inference-server-http`,
      `(gunicorn on a Unix socket only the front can open) behind inferctl's front (Node.js), which alone listens on port ${SCORER_PORT}.`,
    ],
    copies: ['dist/src'],
    expose: SCORER_PORT,
  });
  const args = scriptContainerArgs(opts.tls);
  const mode = `0${API_KEY_FILE_MODE.toString(8)}`;
  return {
    dockerfile,
    base: from,
    requirements: plan.environment.requirements,
    args,
    mounts: [
      { path: `${API_KEY_MOUNT}/api-key`, mode, from: `Secret ${secretName(opts.name)}` },
      ...(opts.tls ? [{ path: `${TLS_MOUNT}/tls.crt, tls.key`, mode, from: "the deployment's TLS Secret" }] : []),
    ],
    user: `${IMAGE_UID}:${IMAGE_GID} (fsGroup ${IMAGE_GID})`,
    warnings: cpuOnlyWarnings(
      plan,
      Boolean(opts.gpu),
      'Add the GPU build of your framework (onnxruntime-gpu rather than onnxruntime) or drop --gpu.',
    ),
  };
}

/**
 * The script image's build context: its Dockerfile, requirements.txt, the package manifests and compiled
 * front, and bundle/ (what the local target's bundle holds: app/ with the source folder, the model under
 * azureml-models/<name>/<version>/, and script.json naming the image's interpreter). Deterministic like the
 * ONNX image's, so its digest (the tag) changes only with what it is built from.
 */
export async function scriptBuildContext(
  plan: ScriptPlan,
  modelPath: string,
  image: Pick<ScriptImage, 'dockerfile'>,
  script: Pick<ScriptSpec, 'modelCopy'> = {},
  app: { jsDirs: readonly string[]; files?: ReadonlyMap<string, Buffer> } = { jsDirs: ['dist/src'] },
): Promise<BuildContext> {
  const entries = await packageFiles(app.jsDirs);
  for (const [name, data] of app.files ?? []) entries.set(name, data);
  entries.set('Dockerfile', Buffer.from(image.dockerfile));
  entries.set('requirements.txt', Buffer.from(plan.environment.requirements.join('\n') + '\n'));
  const source = (await walkTree('source folder', plan.sourceDir, { skipCaches: true })).filter(
    (f) => f.relative !== 'azureml-models' && !f.relative.startsWith('azureml-models/'),
  );
  for (const file of source) entries.set(`bundle/app/${file.relative}`, await readFile(file.source));
  const modelRoot = `bundle/app/${plan.modelDirRelative}/${plan.modelEntry}`;
  for (const file of await walkScriptModel(modelPath, script)) {
    entries.set(file.relative ? `${modelRoot}/${file.relative}` : modelRoot, await readFile(file.source));
  }
  const manifest: ScriptManifest = {
    app: 'app',
    entryScript: plan.entryRelative,
    modelDir: plan.modelDirRelative,
    python: `${SCRIPT_IMAGE_FILES.venv}/bin/python`,
    environment: environmentHash(plan.interpreter, plan.environment),
  };
  entries.set(`bundle/${SCRIPT_MANIFEST}`, Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
  return packContext(entries);
}
