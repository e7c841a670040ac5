/**
 * The demo's and tests' model and images, generated on first use (no model hub is reachable):
 * tiny-cnn.onnx, its labels file, and one sample JPEG per label. Files are written to a temp name and
 * renamed, so concurrent callers never see half a file.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { makeColourJpeg } from '../images/sample-images';
import { buildTinyCnn, TINY_CNN_LABELS } from './tiny-cnn';

export interface DemoAssets {
  modelPath: string;
  labelsPath: string;
  samples: Array<{ path: string; label: string }>;
}

async function writeOnce(file: string, make: () => Promise<Uint8Array | string> | Uint8Array | string): Promise<void> {
  try {
    await fs.access(file);
    return;
  } catch {
    // create it below
  }
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await fs.writeFile(tmp, await make());
  await fs.rename(tmp, file);
}

export async function ensureDemoAssets(dir: string): Promise<DemoAssets> {
  await fs.mkdir(dir, { recursive: true });
  const modelPath = path.join(dir, 'tiny-cnn.onnx');
  const labelsPath = path.join(dir, 'tiny-cnn.labels.txt');
  await writeOnce(modelPath, buildTinyCnn);
  await writeOnce(labelsPath, () => TINY_CNN_LABELS.join('\n') + '\n');
  const samples: DemoAssets['samples'] = [];
  for (const label of TINY_CNN_LABELS) {
    const file = path.join(dir, `${label}-0.jpg`);
    await writeOnce(file, () => makeColourJpeg(label, { size: 128, seed: 1 }));
    samples.push({ path: file, label });
  }
  return { modelPath, labelsPath, samples };
}
