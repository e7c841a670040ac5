/**
 * The scoring image's build context: a Dockerfile, the compiled scoring server, the package manifests
 * and the model, packed as a deterministic gzipped tar (sorted entries, fixed mode, owner and mtime), so
 * the same inputs always give the same digest, which is the image tag: an unchanged model and server
 * never rebuild.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

import { packageRoot } from '../../paths';

export const DOCKERFILE = `# Built by inferctl in Azure Container Registry (ACR Tasks). CUDA 12 + cuDNN 9 runtime for onnxruntime-node's
# CUDA execution provider; Node.js and the production dependencies come from the official Node image.
FROM node:20-bookworm-slim AS deps
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
  const tar = writeTar([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    archive: zlib.gzipSync(tar, { level: 9 }),
    digest: crypto.createHash('sha256').update(tar).digest('hex'),
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

/** A POSIX ustar archive of regular files: names up to 255 bytes (split into prefix and name). */
export function writeTar(files: [string, Buffer][]): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, data] of files) {
    const header = Buffer.alloc(512);
    let base = name;
    let prefix = '';
    if (Buffer.byteLength(name) > 100) {
      const cut = name.lastIndexOf('/', 155);
      if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new Error(`path too long for tar: ${name}`);
      prefix = name.slice(0, cut);
      base = name.slice(cut + 1);
    }
    header.write(base, 0, 100, 'utf8');
    header.write('0000644\0', 100, 8, 'ascii'); // mode
    header.write('0000000\0', 108, 8, 'ascii'); // uid
    header.write('0000000\0', 116, 8, 'ascii'); // gid
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 12, 'ascii');
    header.write('00000000000\0', 136, 12, 'ascii'); // mtime: fixed, for a stable digest
    header.write('        ', 148, 8, 'ascii'); // checksum placeholder
    header.write('0', 156, 1, 'ascii'); // regular file
    header.write('ustar\0', 257, 6, 'ascii');
    header.write('00', 263, 2, 'ascii');
    header.write(prefix, 345, 155, 'utf8');
    const sum = header.reduce((a, b) => a + b, 0);
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
