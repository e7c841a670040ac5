/**
 * The kubelet stand-in's images keep the build context's file modes, as Docker's COPY does: a file packed
 * 0644 (what packTar writes for every file of inferctl's contexts) is readable by the image's non-root
 * user, one packed 0600 is not (root owns the image's files). The registry's tar headers carry the modes
 * (readTar), so an image context that packed a script or model unreadable would fail here as on AKS.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

import * as tar from 'tar-stream';

import { IMAGE_GID, IMAGE_UID } from '../../../src/targets/aks/build-context';
import { readTar } from '../../helpers/azure/container-registry';
import { assembleImage, inRoot } from '../../helpers/kubernetes/image-filesystem';

const execFileAsync = promisify(execFile);

async function tarOf(files: Array<{ name: string; mode: number; text: string }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const f of files) pack.entry({ name: f.name, mode: f.mode, size: Buffer.byteLength(f.text) }, f.text);
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

describe(
  'image file modes in the kubelet stand-in',
  { skip: process.getuid?.() !== 0 ? 'needs root' : undefined },
  () => {
    let dir: string;
    before(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-image-modes-'));
      await fs.chmod(dir, 0o755);
    });
    after(() => fs.rm(dir, { recursive: true, force: true }));

    test('COPY keeps each context file’s mode: 0600 is unreadable by the image’s user, 0644 readable', async () => {
      const context = await readTar(
        await tarOf([
          {
            name: 'Dockerfile',
            mode: 0o644,
            text: `FROM node:24-bookworm-slim\nCOPY app /app\nUSER ${IMAGE_UID}:${IMAGE_GID}\n`,
          },
          { name: 'app/open.py', mode: 0o644, text: 'print("open")\n' },
          { name: 'app/private.py', mode: 0o600, text: 'print("private")\n' },
          { name: 'app/run.sh', mode: 0o755, text: '#!/bin/sh\n' },
        ]),
      );
      assert.equal(context.modes.get('app/private.py'), 0o600, 'the registry reads the header’s mode');
      const image = await assembleImage(context, path.join(dir, 'image'));
      const mode = async (p: string) => (await fs.stat(inRoot(image.root, p))).mode & 0o777;
      assert.deepEqual(
        [await mode('/app/open.py'), await mode('/app/private.py'), await mode('/app/run.sh')],
        [0o644, 0o600, 0o755],
      );
      const readAs = (p: string) =>
        execFileAsync(
          process.execPath,
          ['-e', `require('fs').readFileSync(${JSON.stringify(inRoot(image.root, p))})`],
          {
            uid: IMAGE_UID,
            gid: IMAGE_GID,
          },
        ).then(
          () => 'read',
          (err: { stderr?: string }) => (/EACCES/.test(err.stderr ?? '') ? 'EACCES' : String(err.stderr)),
        );
      assert.equal(await readAs('/app/open.py'), 'read');
      assert.equal(await readAs('/app/private.py'), 'EACCES', 'root-owned 0600: not the image user’s to read');
    });
  },
);
