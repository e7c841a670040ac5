/**
 * The image a scoring script would run in on aks, as `inferctl deploy --entry-script --target aks --dry-run`
 * shows it (the aks target does not deploy scripts yet): a Python base image of the environment's minor
 * version, the environment installed into /opt/venv from the same requirements the local target builds,
 * Node.js and the compiled front from the official Node image, the app folder with the model laid out as
 * locally, a non-root user; the key and TLS Secrets mounted as the ONNX server's are (0440, the pod's
 * fsGroup the image's group), and the container's arguments.
 */
import path from 'node:path';

import type { ScriptPlan } from '../../script/script-plan';
import { IMAGE_GID, IMAGE_UID } from './build-context';
import { API_KEY_FILE_MODE, API_KEY_MOUNT, SCORER_PORT, TLS_MOUNT, secretName } from './kubernetes-manifests';

/** Where the image keeps the bundle (its app folder is AML_APP_ROOT) and the environment. */
export const SCRIPT_IMAGE_FILES = { bundle: '/var/azureml-app', venv: '/opt/venv' } as const;

export interface ScriptImage {
  dockerfile: string;
  /** requirements.txt in the build context, as the local target installs it. */
  requirements: string[];
  /** The container's arguments (after the image's `node` entrypoint). */
  args: string[];
  /** The Secrets mounted, with their modes (octal). */
  mounts: Array<{ path: string; mode: string; from: string }>;
  user: string;
}

export function scriptImage(plan: ScriptPlan, opts: { name: string; tls: boolean }): ScriptImage {
  const { bundle, venv } = SCRIPT_IMAGE_FILES;
  const dockerfile = `# Built by inferctl: the scoring script ${path.basename(plan.entryScript)} run by azureml-inference-server-http
# (gunicorn on 127.0.0.1) behind inferctl's front (Node.js), which alone listens on port ${SCORER_PORT}.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --no-audit --no-fund

FROM python:${plan.interpreter.minor}-slim-bookworm
RUN python -m venv ${venv}
COPY requirements.txt ${venv}/requirements.txt
RUN ${venv}/bin/pip install --no-cache-dir --disable-pip-version-check --no-input -r ${venv}/requirements.txt
COPY --from=deps /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY dist/src ./dist/src
# app/ (AML_APP_ROOT: the source folder, the model under ${plan.modelDirRelative}/) and script.json
COPY bundle ${bundle}
USER ${IMAGE_UID}:${IMAGE_GID}
EXPOSE ${SCORER_PORT}
ENTRYPOINT ["node"]
`;
  const args = [
    'dist/src/script/front-main.js',
    '--bundle',
    bundle,
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
    ...(opts.tls ? ['--tls-cert', `${TLS_MOUNT}/tls.crt`, '--tls-key', `${TLS_MOUNT}/tls.key`] : []),
  ];
  const mode = `0${API_KEY_FILE_MODE.toString(8)}`;
  return {
    dockerfile,
    requirements: plan.environment.requirements,
    args,
    mounts: [
      { path: `${API_KEY_MOUNT}/api-key`, mode, from: `Secret ${secretName(opts.name)}` },
      ...(opts.tls ? [{ path: `${TLS_MOUNT}/tls.crt, tls.key`, mode, from: "the deployment's TLS Secret" }] : []),
    ],
    user: `${IMAGE_UID}:${IMAGE_GID} (fsGroup ${IMAGE_GID})`,
  };
}
