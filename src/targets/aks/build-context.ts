/**
 * The scoring image's build context: a Dockerfile, the compiled scoring server, the package manifests
 * and the model, packed by tar-stream as a deterministic gzipped tar (sorted entries; mode 0644, owner
 * 0:0 with no names, mtime the epoch), so the same inputs always give the same digest, which is the image
 * tag: an unchanged model and server never rebuild.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

import * as tar from 'tar-stream';

import { packageRoot } from '../../paths';

export const DOCKERFILE = `# Built by inferctl in Azure Container Registry (ACR Tasks). CUDA 12 + cuDNN 9 runtime for onnxruntime-node's
# CUDA execution provider; Node.js and the production dependencies come from the official Node image.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install

FROM nvcr.io/nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
COPY --from=deps /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY dist/src ./dist/src
COPY model.onnx ./
USER 1000
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

export async function buildContext(modelPath: string): Promise<BuildContext> {
  const root = packageRoot();
  const entries = new Map<string, Buffer>();
  entries.set('Dockerfile', Buffer.from(DOCKERFILE));
  entries.set('model.onnx', await fs.readFile(modelPath));
  for (const file of ['package.json', 'package-lock.json']) entries.set(file, await fs.readFile(path.join(root, file)));
  for (const file of await listJs(path.join(root, 'dist', 'src'))) {
    entries.set(path.relative(root, file).split(path.sep).join('/'), await fs.readFile(file));
  }
  const uncompressed = await packTar(entries);
  return {
    archive: zlib.gzipSync(uncompressed, { level: 9 }),
    digest: crypto.createHash('sha256').update(uncompressed).digest('hex'),
    files: [...entries.keys()].sort(),
  };
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
