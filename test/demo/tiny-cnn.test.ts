/**
 * The tiny CNN is a real ONNX classifier: onnxruntime runs it, and it names the dominant colour of every
 * label's sample images, and of pictures whose mean colour would say otherwise.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import sharp from 'sharp';

import { makeColourJpeg } from '../../src/demo/sample-images';
import { readModelInfo } from '../../src/model/model-info';
import { buildTinyCnn, TINY_CNN_LABELS } from '../../src/demo/tiny-cnn';
import { Classifier } from '../../src/scoring/classifier';

describe('tiny colour CNN', () => {
  let dir: string;
  let modelPath: string;
  let classifier: Classifier;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-tiny-'));
    modelPath = path.join(dir, 'tiny.onnx');
    await fs.writeFile(modelPath, buildTinyCnn());
    classifier = await Classifier.load(modelPath);
  });
  after(async () => {
    await classifier?.release();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('is small, deterministic and self-describing', async () => {
    const bytes = buildTinyCnn();
    assert.ok(bytes.length < 20_000, `${bytes.length} bytes, far under 1 MB`);
    assert.deepEqual(Buffer.from(buildTinyCnn()), Buffer.from(bytes), 'same bytes every build');
    const info = await readModelInfo(modelPath);
    assert.deepEqual(info.labels, TINY_CNN_LABELS);
    assert.equal(info.inputName, 'image');
    assert.equal(info.outputName, 'probabilities');
    assert.equal(info.width, 64);
    assert.equal(info.height, 64);
    assert.deepEqual(info.mean, [0.5, 0.5, 0.5]);
    assert.equal(info.dynamicBatch, true);
  });

  test("names every label's sample images top-1, at several sizes and seeds", async () => {
    const cases: Array<{ label: string; size: number; seed: number }> = [];
    for (const label of TINY_CNN_LABELS) {
      for (const [seed, size] of [
        [1, 32],
        [2, 96],
        [3, 240],
      ] as const) {
        cases.push({ label, size, seed });
      }
    }
    const images = await Promise.all(cases.map(({ label, size, seed }) => makeColourJpeg(label, { size, seed })));
    const results = await classifier.classify(images, 2);
    results.forEach((result, i) => {
      const { label, size, seed } = cases[i]!;
      const what = `${label} image, ${size}px, seed ${seed}`;
      assert.ok(result.ok, what);
      const [top, second] = result.predictions;
      assert.equal(top?.label, label, what);
      assert.ok(top.score > 0.9, `${what}: confident (${top.score})`);
      assert.ok(top.score > 10 * second!.score, `${what}: far ahead of ${second!.label}`);
    });
  });

  test('goes by the colour most pixels have, not the mean colour', async () => {
    // 40% red, 30% green, 30% blue: the mean colour (0.4, 0.3, 0.3) is closest to black.
    const width = 100;
    const height = 50;
    const pixels = Buffer.alloc(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const channel = x < 40 ? 0 : x < 70 ? 1 : 2;
        pixels[(y * width + x) * 3 + channel] = 255;
      }
    }
    const png = await sharp(pixels, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer();
    const [result] = await classifier.classify([png], 3);
    assert.ok(result?.ok);
    assert.deepEqual(
      result.predictions.map((p) => p.label),
      ['red', 'green', 'blue'],
    );
  });
});
