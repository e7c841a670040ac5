/**
 * A camera-sized photo corpus for the batch benchmark, generated deterministically: 4032×3024 JPEGs at
 * quality 90 with the detail of a photograph rather than flat colours (which compress to a few KB and
 * decode unrealistically fast). Each image is, per pixel and channel:
 *   smooth colour fields (a 16×12 random image upscaled: sky, walls, light falloff)
 *   + mid-scale texture (a 504×378 random image upscaled: foliage, fabric, gravel)
 *   + hard-edged shapes (random ellipses and rectangles: objects and their outlines)
 *   + fine grain (per-pixel noise, as sensor noise and fine texture),
 * then a slight blur, as a lens gives. About 2–3 MB each, like a phone camera's JPEG.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';

import { seededRandom } from '../src/demo/seeded-random';

export const PHOTO_WIDTH = 4032;
export const PHOTO_HEIGHT = 3024;

async function upscaledNoise(w: number, h: number, random: () => number, channels: 1 | 3): Promise<Buffer> {
  const small = Buffer.alloc(w * h * channels);
  for (let i = 0; i < small.length; i++) small[i] = Math.floor(random() * 256);
  return sharp(small, { raw: { width: w, height: h, channels } })
    .resize(PHOTO_WIDTH, PHOTO_HEIGHT, { kernel: 'cubic' })
    .raw()
    .toBuffer();
}

function shapesSvg(random: () => number): Buffer {
  const shapes: string[] = [];
  for (let i = 0; i < 40; i++) {
    const colour = `rgb(${Math.floor(random() * 256)},${Math.floor(random() * 256)},${Math.floor(random() * 256)})`;
    const x = Math.floor(random() * PHOTO_WIDTH);
    const y = Math.floor(random() * PHOTO_HEIGHT);
    const a = 40 + Math.floor(random() * 600);
    const b = 40 + Math.floor(random() * 600);
    const opacity = (0.3 + random() * 0.6).toFixed(2);
    shapes.push(
      random() < 0.5
        ? `<ellipse cx="${x}" cy="${y}" rx="${a}" ry="${b}" fill="${colour}" fill-opacity="${opacity}"/>`
        : `<rect x="${x}" y="${y}" width="${a}" height="${b}" fill="${colour}" fill-opacity="${opacity}"/>`,
    );
  }
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${PHOTO_WIDTH}" height="${PHOTO_HEIGHT}">${shapes.join('')}</svg>`,
  );
}

/** One photo-like JPEG (the same bytes for the same seed). */
export async function makePhotoJpeg(seed: number): Promise<Buffer> {
  const random = seededRandom(seed);
  const fields = await upscaledNoise(16, 12, random, 3);
  const texture = await upscaledNoise(504, 378, random, 1);
  const shaped = await sharp(fields, { raw: { width: PHOTO_WIDTH, height: PHOTO_HEIGHT, channels: 3 } })
    .composite([{ input: shapesSvg(random) }])
    .removeAlpha()
    .raw()
    .toBuffer();
  const pixels = PHOTO_WIDTH * PHOTO_HEIGHT;
  const out = Buffer.alloc(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    const t = (texture[p]! - 128) * 0.35;
    for (let c = 0; c < 3; c++) {
      const grain = (random() - 0.5) * 28;
      const v = shaped[p * 3 + c]! + t + grain;
      out[p * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return sharp(out, { raw: { width: PHOTO_WIDTH, height: PHOTO_HEIGHT, channels: 3 } })
    .blur(0.6)
    .jpeg({ quality: 90 })
    .toBuffer();
}

/**
 * Writes photos `from`…`count - 1` into `dir` (photo-0000.jpg, …; photo i is seed 1000 + i, so the first n
 * of any corpus are the same bytes); returns their total size in bytes.
 */
export async function writePhotoCorpus(
  dir: string,
  count: number,
  onImage?: (i: number) => void,
  from = 0,
): Promise<number> {
  await fs.mkdir(dir, { recursive: true });
  let bytes = 0;
  for (let i = from; i < count; i++) {
    const jpeg = await makePhotoJpeg(1000 + i);
    await fs.writeFile(path.join(dir, photoName(i)), jpeg);
    bytes += jpeg.length;
    onImage?.(i);
  }
  return bytes;
}

const photoName = (i: number) => `photo-${String(i).padStart(4, '0')}.jpg`;

/**
 * `<work>/photos-<count>`, generated once (a few seconds per photo) and reused. The largest smaller corpus
 * already in `work` gives its photos (hard links: the same seeds, the same bytes); only the rest are made.
 */
export async function ensurePhotoCorpus(work: string, count: number, log: (line: string) => void): Promise<string> {
  const dir = path.join(work, `photos-${count}`);
  const ready = await fs.access(dir).then(
    () => true,
    () => false,
  );
  if (!ready) {
    const smaller = (await fs.readdir(work).catch(() => []))
      .map((name) => Number(/^photos-(\d+)$/.exec(name)?.[1]))
      .filter((n) => n > 0 && n < count)
      .sort((a, b) => b - a)[0];
    log(`generating ${count - (smaller ?? 0)} camera-sized photos (once; a few seconds each)…`);
    await fs.rm(`${dir}.tmp`, { recursive: true, force: true });
    await fs.mkdir(`${dir}.tmp`, { recursive: true });
    for (let i = 0; i < (smaller ?? 0); i++) {
      await fs.link(path.join(work, `photos-${smaller}`, photoName(i)), path.join(`${dir}.tmp`, photoName(i)));
    }
    await writePhotoCorpus(`${dir}.tmp`, count, undefined, smaller ?? 0);
    await fs.rename(`${dir}.tmp`, dir);
  }
  return dir;
}
