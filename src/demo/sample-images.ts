/**
 * Deterministic sample JPEGs for the demo, the tests and the benchmarks: mostly one label's colour,
 * with seeded noise and a smaller block of another colour (a distractor) so that no two images are
 * alike and the model has to find the dominant colour, not just any colour. Same options, same bytes.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';

import { seededRandom } from './seeded-random';
import { TINY_CNN_COLOURS, TINY_CNN_LABELS } from './tiny-cnn';

export interface SampleImageOptions {
  /** Width and height in pixels (default 96). */
  size?: number;
  /** Varies the noise and the distractor's colour and place (default 0). */
  seed?: number;
  /** Noise amplitude in 0-255 units (default 24). */
  noise?: number;
  /** Side of the distractor block as a fraction of the image side (default 0.35, about 12% of the area). */
  distractor?: number;
}

export async function makeColourJpeg(label: string, opts: SampleImageOptions = {}): Promise<Buffer> {
  const colour = TINY_CNN_COLOURS[label];
  if (!colour) throw new Error(`No colour for label "${label}"; use one of ${TINY_CNN_LABELS.join(', ')}.`);
  const size = opts.size ?? 96;
  const noise = opts.noise ?? 24;
  const random = seededRandom((opts.seed ?? 0) * 7919 + TINY_CNN_LABELS.indexOf(label) + 1);
  const others = TINY_CNN_LABELS.filter((l) => l !== label);
  const other = TINY_CNN_COLOURS[others[Math.floor(random() * others.length)]!]!;
  const side = Math.floor(size * (opts.distractor ?? 0.35));
  const bx = Math.floor(random() * (size - side + 1));
  const by = Math.floor(random() * (size - side + 1));

  const pixels = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inBlock = x >= bx && x < bx + side && y >= by && y < by + side;
      const rgb = inBlock ? other : colour;
      for (let c = 0; c < 3; c++) {
        // Keep off the extremes (10-245) so the noise is visible on every channel.
        const value = 10 + rgb[c]! * 235 + (random() * 2 - 1) * noise;
        pixels[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(value)));
      }
    }
  }
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/**
 * Writes `count` sample JPEGs into `dir` (created if needed), cycling through the labels; image i uses
 * seed i. Returns each file and its label, in order.
 */
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
