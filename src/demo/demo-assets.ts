/**
 * The demo's and tests' model and images, generated on first use (no model hub is reachable):
 * tiny-cnn.onnx, its labels sidecar, and one sample JPEG per label. Generating them takes milliseconds
 * and gives the same bytes every time, so each call compares what is on disk with what should be there
 * and rewrites only what differs (missing, damaged, or left by an older version of the model). Writes
 * go to a temp name and are renamed into place, so concurrent callers never see half a file.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { makeColourJpeg } from './sample-images';
import { labelsSidecarPath } from '../model/metadata';
import { buildTinyCnn, TINY_CNN_LABELS } from './tiny-cnn';

export interface DemoAssets {
  modelPath: string;
  labelsPath: string;
  samples: Array<{ path: string; label: string }>;
}

async function ensureFile(file: string, content: Uint8Array): Promise<void> {
  try {
    if (Buffer.from(content).equals(await fs.readFile(file))) return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${crypto.randomUUID()}.tmp`);
  try {
    await fs.writeFile(tmp, content);
    await fs.rename(tmp, file);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

export async function ensureDemoAssets(dir: string): Promise<DemoAssets> {
  await fs.mkdir(dir, { recursive: true });
  const modelPath = path.join(dir, 'tiny-cnn.onnx');
  const labelsPath = labelsSidecarPath(modelPath);
  await ensureFile(modelPath, buildTinyCnn());
  await ensureFile(labelsPath, Buffer.from(TINY_CNN_LABELS.join('\n') + '\n'));
  const samples = await Promise.all(
    TINY_CNN_LABELS.map(async (label, i) => {
      const file = path.join(dir, `${label}-0.jpg`);
      await ensureFile(file, await makeColourJpeg(label, { size: 128, seed: i }));
      return { path: file, label };
    }),
  );
  return { modelPath, labelsPath, samples };
}
