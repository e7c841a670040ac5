/**
 * Right numbers, proven against the reference implementations (issue #13, section 2). Real photographs
 * (scikit-image's bundled chelsea.png and coffee.png, 451x300 and 600x400) go through each preset here and
 * through the convention's own pipeline in Pillow + NumPy (reference_preprocess.py: torchvision's
 * Resize(256) + CenterCrop(224) + ToTensor + Normalize; Keras imagenet_utils.preprocess_input caffe / tf
 * / torch on a bilinear 224x224 resize). Then models in both layouts and every input dtype, ending in
 * logits or probabilities, answer as onnxruntime does run directly on the reference tensors (the
 * deployment and the batch job of such a model: bring-your-model.test.ts).
 *
 * Measured (libvips via sharp against Pillow, both bilinear with antialiasing, in 0-255 pixel levels):
 * mean |difference| 0.20-0.23 levels; 99.8% of values within 1 level; the largest 2 levels (torchvision
 * crops) and 7 levels (coffee stretched 600x400 → 224x224, a few pixels on high-contrast edges). With
 * torchvision's other kernels: nearest is identical (0 levels), bicubic within 0.24 levels on average and
 * 6 at most. The bounds below are those figures with a little room.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { preprocessImage } from '../../src/preprocess/preprocess-image';
import { fitPreprocess } from '../../src/preprocess/preprocess-spec';
import { Classifier } from '../../src/scoring/classifier';
import type { PreprocessConfig, PreprocessPreset } from '../../src/shared/preprocess-types';
import { PREPROCESS_PRESETS } from '../../src/shared/preprocess-types';
import { toNhwc } from './npy';
import { MAX_TOP_SCORE, SCORE_TOLERANCE, buildProbe, directScores, probeLabels } from './probe-models';
import type { ProbeOptions } from './probe-models';
import { referenceSet } from './python-reference';
import type { ReferenceSet } from './python-reference';

/** Mean |ours − reference| over a tensor, in 0-255 pixel levels. */
const MEAN_LEVELS = 0.3;
/** The largest |ours − reference| anywhere, in pixel levels. */
const MAX_LEVELS = 8;
/** The share of values within one level of the reference. */
const WITHIN_ONE_LEVEL = 0.995;

const SIZE = 224;
const NCHW_INPUT = { dims: [1, 3, SIZE, SIZE], layout: 'NCHW' as const };

let refs: ReferenceSet;
let skip: string | undefined;
let photos: string[] = [];

before(async () => {
  refs = await referenceSet();
  ({ skip, photos } = refs);
});
after(() => refs.dispose());

describe('each preset matches its convention’s reference pipeline on real photographs', () => {
  const cases: Array<{ name: string; config: PreprocessConfig }> = [
    ...PREPROCESS_PRESETS.map((preset) => ({ name: preset, config: { preset } })),
    // torchvision's Resize with the other kernels: nearest agrees exactly, bicubic as bilinear does.
    { name: 'torchvision-nearest', config: { preset: 'torchvision', interpolation: 'nearest' } },
    { name: 'torchvision-bicubic', config: { preset: 'torchvision', interpolation: 'bicubic' } },
  ];
  for (const { name: preset, config } of cases) {
    test(preset, async (t) => {
      if (skip) return t.skip(skip);
      const { spec, problems } = fitPreprocess(config, NCHW_INPUT, 'the preset');
      assert.deepEqual(problems, []);
      for (const photo of photos) {
        const ours = await preprocessImage(await fs.readFile(photo), spec);
        const ref = await refs.tensor(photo, preset);
        assert.deepEqual(ref.shape, [1, 3, SIZE, SIZE]);
        assert.equal(ours.length, ref.data.length);
        const plane = SIZE * SIZE;
        let sum = 0;
        let max = 0;
        let within = 0;
        for (let i = 0; i < ours.length; i++) {
          const c = Math.floor(i / plane);
          const levels = (Math.abs(ours[i]! - ref.data[i]!) * spec.std[c]!) / spec.scale;
          sum += levels;
          max = Math.max(max, levels);
          if (levels <= 1.001) within++;
        }
        const mean = sum / ours.length;
        t.diagnostic(
          `${path.basename(photo)}: mean ${mean.toFixed(3)} levels, max ${max.toFixed(2)}, ` +
            `${((100 * within) / ours.length).toFixed(2)}% within 1 level`,
        );
        assert.ok(mean <= MEAN_LEVELS, `${preset} ${photo}: mean difference ${mean} levels`);
        // Nearest neighbour picks the same source pixels as Pillow: no difference at all.
        const maxLevels = config.interpolation === 'nearest' ? 0.01 : MAX_LEVELS;
        assert.ok(max <= maxLevels, `${preset} ${photo}: largest difference ${max} levels`);
        assert.ok(within / ours.length >= WITHIN_ONE_LEVEL, `${preset} ${photo}: ${within} within one level`);
      }
    });
  }

  test('NHWC and BGR lay the same numbers out as the model wants them', async (t) => {
    if (skip) return t.skip(skip);
    const photo = photos[0]!;
    const bytes = await fs.readFile(photo);
    const nchw = fitPreprocess({ preset: 'keras-caffe' }, NCHW_INPUT, 'x').spec;
    const nhwc = fitPreprocess({ preset: 'keras-caffe' }, { dims: ['n', SIZE, SIZE, 3], layout: 'NHWC' }, 'x').spec;
    assert.equal(nhwc.layout, 'NHWC', 'the layout comes from the input shape');
    const a = await preprocessImage(bytes, nchw);
    assert.deepEqual(await preprocessImage(bytes, nhwc), toNhwc(a, SIZE, SIZE));
    // BGR is RGB with the channels reversed (and the mean given in BGR order).
    const rgb = await preprocessImage(bytes, { ...nchw, channelOrder: 'RGB', mean: [0, 0, 0] });
    const plane = SIZE * SIZE;
    for (const i of [0, 1234, plane - 1]) {
      assert.ok(Math.abs(a[i]! - (rgb[2 * plane + i]! - 103.939)) < 1e-3, 'B first');
      assert.ok(Math.abs(a[2 * plane + i]! - (rgb[i]! - 123.68)) < 1e-3, 'R last');
    }
  });
});

describe('models in both layouts and every input dtype answer as onnxruntime does on the reference tensors', () => {
  let dir = '';
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-probes-'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  const variants: Array<ProbeOptions & { preset: PreprocessPreset; reference: string }> = [];
  for (const layout of ['NCHW', 'NHWC'] as const) {
    for (const output of ['logits', 'probabilities'] as const) {
      variants.push({ layout, output, inputType: 'float32', preset: 'torchvision', reference: 'torchvision' });
      variants.push({ layout, output, inputType: 'float16', preset: 'torchvision', reference: 'torchvision.f16' });
      variants.push({ layout, output, inputType: 'uint8', preset: 'raw', reference: 'raw.u8' });
    }
  }
  for (const output of ['logits', 'probabilities'] as const) {
    variants.push({
      layout: 'NCHW',
      output,
      inputType: 'float16',
      outputType: 'float16',
      preset: 'torchvision',
      reference: 'torchvision.f16',
    });
  }
  variants.push({
    layout: 'NHWC',
    output: 'logits',
    inputType: 'float32',
    batch: 1,
    inputGain: 1 / 64,
    preset: 'keras-caffe',
    reference: 'keras-caffe',
  });

  for (const v of variants) {
    const name =
      `${v.layout} ${v.inputType} ${v.output}${v.outputType === 'float16' ? ' (float16 out)' : ''}` +
      `${v.batch === 1 ? ' batch 1' : ''} (${v.preset})`;
    test(name, async (t) => {
      if (skip) return t.skip(skip);
      const file = path.join(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.onnx`);
      await fs.writeFile(file, buildProbe(v));
      const labels = probeLabels();
      const classifier = await Classifier.load(file, {
        intraOpNumThreads: 1,
        overrides: { preprocess: { preset: v.preset }, labels },
      });
      try {
        assert.equal(classifier.info.layout, v.layout);
        assert.equal(classifier.info.inputType, v.inputType);
        assert.equal(classifier.info.dynamicBatch, v.batch !== 1);
        const results = await classifier.classify(await Promise.all(photos.map((p) => fs.readFile(p))), labels.length);
        for (const [i, photo] of photos.entries()) {
          const result = results[i]!;
          assert.ok(result.ok, JSON.stringify(result));
          const expected = await directScores(file, v, await refs.tensor(photo, v.reference));
          const best = expected.indexOf(Math.max(...expected));
          assert.equal(result.predictions[0]!.label, labels[best], `${photo}: the same top label`);
          let worst = 0;
          for (const p of result.predictions) {
            worst = Math.max(worst, Math.abs(p.score - expected[labels.indexOf(p.label)]!));
          }
          const top = Math.max(...expected);
          t.diagnostic(
            `${path.basename(photo)}: largest score difference ${worst.toFixed(4)} (top score ${top.toFixed(3)})`,
          );
          assert.ok(worst <= SCORE_TOLERANCE, `${photo}: scores differ by up to ${worst}`);
          assert.ok(top < MAX_TOP_SCORE, `${photo}: a saturated softmax (${top}) would hide differences`);
        }
      } finally {
        await classifier.release();
      }
    });
  }
});
