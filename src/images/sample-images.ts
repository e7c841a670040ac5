/**
 * Deterministic sample JPEGs for the demo, the tests and the benchmarks: mostly one label's colour,
 * with seeded noise and a darker block so that no two images are alike.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';

import { seededRandom } from '../model/onnx-builder';
import { TINY_CNN_COLOURS, TINY_CNN_LABELS } from '../model/tiny-cnn';

export interface SampleImageOptions {
  /** Width and height in pixels (default 96). */
  size?: number;
  seed?: number;
  /** Noise amplitude in 0-255 units (default 24). */
  noise?: number;
}

export async function makeColourJpeg(label: string, opts: SampleImageOptions = {}): Promise<Buffer> {
  const colour = TINY_CNN_COLOURS[label];
  if (!colour) throw new Error(`No colour for label "${label}"; use one of ${TINY_CNN_LABELS.join(', ')}.`);
  const size = opts.size ?? 96;
  const noise = opts.noise ?? 24;
  const random = seededRandom((opts.seed ?? 0) * 7919 + TINY_CNN_LABELS.indexOf(label) + 1);
  const pixels = Buffer.alloc(size * size * 3);
  const block = {
    x: Math.floor(random() * size * 0.6),
    y: Math.floor(random() * size * 0.6),
    s: Math.floor(size * 0.25),
  };
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inBlock = x >= block.x && x < block.x + block.s && y >= block.y && y < block.y + block.s;
      for (let c = 0; c < 3; c++) {
        const base = colour[c]! * 255 * (inBlock ? 0.8 : 1) + (colour[c]! === 0 ? 10 : -10);
        const value = base + (random() * 2 - 1) * noise;
        pixels[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(value)));
      }
    }
  }
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** Writes `count` sample JPEGs into `dir`, cycling through the labels; returns each file and its label. */
export async function writeSampleImages(
  dir: string,
  count: number,
  opts: Omit<SampleImageOptions, 'seed'> = {},
): Promise<Array<{ path: string; label: string }>> {
  await fs.mkdir(dir, { recursive: true });
  const written: Array<{ path: string; label: string }> = [];
  for (let i = 0; i < count; i++) {
    const label = TINY_CNN_LABELS[i % TINY_CNN_LABELS.length]!;
    const file = path.join(dir, `${label}-${String(i).padStart(5, '0')}.jpg`);
    await fs.writeFile(file, await makeColourJpeg(label, { ...opts, seed: i }));
    written.push({ path: file, label });
  }
  return written;
}
