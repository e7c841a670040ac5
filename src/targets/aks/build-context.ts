/**
 * The scoring image's build context: a Dockerfile, the compiled scoring server, the package manifests,
 * the model and what it is served with (its resolved preprocessing spec and labels, as the local target's
 * bundle keeps them: the replica reads them with --preprocess and --labels), packed by tar-stream as a deterministic gzipped tar (sorted entries; mode 0644, owner
 * 0:0 with no names, mtime the epoch), so the same inputs always give the same digest, which is the image
 * tag: an unchanged model and server never rebuild.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

import * as tar from 'tar-stream';

import { readModelInfo, readOverrides } from '../../model/model-info';
import { configOf } from '../../preprocess/preprocess-spec';
import { packageRoot } from '../../paths';
import type { DeploymentSpec } from '../../shared/target-types';

/** The image's user and group: the pod runs as them, and its fsGroup (the key Secret's group) is IMAGE_GID. */
export const IMAGE_UID = 1000;
export const IMAGE_GID = 1000;

/** Where the image keeps the model and what it is served with (the container's --model, --preprocess, --labels). */
export const IMAGE_FILES = {
  model: '/app/model.onnx',
  preprocess: '/app/preprocess.json',
  labels: '/app/model.labels.txt',
} as const;

export const DOCKERFILE = `# Built by inferctl in Azure Container Registry (ACR Tasks). CUDA 12 + cuDNN 9 runtime for onnxruntime-node's
# CUDA execution provider; Node.js and the production dependencies come from the official Node image.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci keeps onnxruntime-node as published (CPU); the next step adds the CUDA provider, in a step of its own.
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --no-audit --no-fund
RUN ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install

FROM nvcr.io/nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
COPY --from=deps /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY dist/src ./dist/src
COPY model.onnx model.labels.txt preprocess.json ./
USER ${IMAGE_UID}:${IMAGE_GID}
EXPOSE 5001
ENTRYPOINT ["node"]
`;

export interface BuildContext {
  /** The gzipped tar to upload. */
  archive: Buffer;
  /** sha256 (hex) of the uncompressed tar: the image tag. */
  digest: string;
  files: string[];
}

/** What the model is served with: the spec and labels the deployment was validated with, resolved. */
export interface ServedWith {
  /** The resolved preprocessing spec, as JSON. */
  preprocess: Buffer;
  /** One label per line, in output order. */
  labels: Buffer;
}

/**
 * The spec and labels a deployment serves its model with (flag, then sidecar, then metadata, then
 * defaults), resolved now: the image carries them, whatever the model's own sidecars say.
 */
export async function servedWith(spec: Pick<DeploymentSpec, 'modelPath' | 'preprocess' | 'labelsPath'>) {
  const info = await readModelInfo(spec.modelPath, await readOverrides(spec));
  return {
    preprocess: Buffer.from(JSON.stringify(configOf(info), null, 2) + '\n'),
    labels: Buffer.from(info.labels.join('\n') + '\n'),
  } satisfies ServedWith;
}

export function buildContext(modelPath: string, served: ServedWith): Promise<BuildContext> {
  return packImageContext(DOCKERFILE, modelPath, served, ['dist/src']);
}

/**
 * An image's build context: `dockerfile`, the model with its preprocessing spec and labels, the package
 * manifests and every compiled .js under `jsDirs` (relative to the package root), packed deterministically
 * (packTar) so that the same inputs give the same digest, the image's tag.
 */
export async function packImageContext(
  dockerfile: string,
  modelPath: string,
  served: ServedWith,
  jsDirs: readonly string[],
): Promise<BuildContext> {
  const entries = await packageFiles(jsDirs);
  entries.set('Dockerfile', Buffer.from(dockerfile));
  entries.set(path.posix.basename(IMAGE_FILES.model), await fs.readFile(modelPath));
  entries.set(path.posix.basename(IMAGE_FILES.preprocess), served.preprocess);
  entries.set(path.posix.basename(IMAGE_FILES.labels), served.labels);
  return packContext(entries);
}

/** A build context of these files (by path in the context): packed by packTar, gzipped, its digest the tag. */
export async function packContext(entries: ReadonlyMap<string, Buffer>): Promise<BuildContext> {
  const uncompressed = await packTar(entries);
  return {
    archive: zlib.gzipSync(uncompressed, { level: 9 }),
    digest: crypto.createHash('sha256').update(uncompressed).digest('hex'),
    files: [...entries.keys()].sort(),
  };
}

/** The package manifests and every compiled .js under `jsDirs` (relative to the package root), by context path. */
export async function packageFiles(jsDirs: readonly string[]): Promise<Map<string, Buffer>> {
  const root = packageRoot();
  const entries = new Map<string, Buffer>();
  for (const file of ['package.json', 'package-lock.json']) entries.set(file, await fs.readFile(path.join(root, file)));
  for (const dir of jsDirs) {
    for (const file of await listJs(path.join(root, dir))) {
      entries.set(path.relative(root, file).split(path.sep).join('/'), await fs.readFile(file));
    }
  }
  return entries;
}

async function listJs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listJs(full)));
    else if (entry.name.endsWith('.js')) out.push(full);
  }
  return out;
}

/** Every file's header but its name and size: what could vary from one machine or run to the next. */
const FIXED_HEADER = { type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0) } as const;

/**
 * A tar of regular files, sorted by name, whose bytes depend only on the names and contents (ustar
 * headers; a name too long or not ASCII gets a pax header, as deterministic).
 */
export async function packTar(files: ReadonlyMap<string, Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const name of [...files.keys()].sort()) {
    const data = files.get(name)!;
    pack.entry({ ...FIXED_HEADER, name, size: data.length }, data, (err) => {
      if (err) pack.destroy(err);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}
