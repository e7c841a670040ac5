/**
 * The preprocessing spec: presets with the conventions' exact constants, field-by-field validation with
 * every problem at once, fitting to the model's input (refusing what cannot fit), and the precedence
 * flag > sidecar > metadata > defaults.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { InvalidInputError, ModelError } from '../../src/errors';
import { LABELS_KEY, PREPROCESS_KEY } from '../../src/model/metadata';
import { readModelInfo } from '../../src/model/model-info';
import { preprocessSidecarPath } from '../../src/preprocess/model-preprocess';
import { GraphBuilder } from '../../src/model/onnx-builder';
import type { Dim } from '../../src/model/onnx-builder';
import { PRESETS, configOf, fitPreprocess, parsePreprocessConfig } from '../../src/preprocess/preprocess-spec';
import { FailureType } from '../../src/shared/failure-types';

const NCHW_224 = { dims: ['batch', 3, 224, 224], layout: 'NCHW' as const };

function model(dims: Dim[], metadata: Record<string, string> = {}): Uint8Array {
  const g = new GraphBuilder('spec');
  const x = g.input('image', dims);
  const nchw = dims[3] === 3 ? g.node('Transpose', [x], { perm: [0, 3, 1, 2] }) : x;
  const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [nchw])], { axis: 1 });
  g.node('Softmax', [pooled], { axis: 1 }, 'scores');
  g.output('scores', ['batch', 3]);
  return g.build({ [LABELS_KEY]: '["a","b","c"]', ...metadata });
}

describe('preprocessing presets', () => {
  test('carry the exact constants of each convention', () => {
    assert.deepEqual(PRESETS.torchvision, {
      resize: { shorterSide: 256 },
      crop: { width: 224, height: 224 },
      channelOrder: 'RGB',
      scale: 1 / 255,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      interpolation: 'bilinear',
    });
    assert.deepEqual(PRESETS['keras-caffe'], {
      channelOrder: 'BGR',
      scale: 1,
      mean: [103.939, 116.779, 123.68],
      std: [1, 1, 1],
    });
    assert.deepEqual(PRESETS['keras-tf'], { channelOrder: 'RGB', scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1] });
    const torch = PRESETS['keras-torch'];
    assert.deepEqual(
      [torch.scale, torch.mean, torch.std],
      [1 / 255, PRESETS.torchvision.mean, PRESETS.torchvision.std],
    );
    assert.equal(torch.resize, undefined, 'keras-torch resizes to the input, without the 256/224 crop');
    assert.deepEqual([PRESETS.raw.scale, PRESETS.raw.mean], [1, [0, 0, 0]]);
    assert.deepEqual([PRESETS.unit.scale, PRESETS.unit.mean], [1 / 255, [0, 0, 0]]);
  });

  test('fit a model of the right size, and a spec’s fields override its preset', () => {
    const { spec, problems } = fitPreprocess({ preset: 'torchvision' }, NCHW_224, 'x');
    assert.deepEqual(problems, []);
    assert.deepEqual([spec.width, spec.height, spec.layout, spec.output], [224, 224, 'NCHW', 'auto']);
    const nhwc = fitPreprocess(
      { preset: 'keras-caffe', output: 'logits' },
      { dims: [1, 96, 128, 3], layout: 'NHWC' },
      'x',
    );
    assert.deepEqual(nhwc.problems, []);
    assert.deepEqual(nhwc.spec.resize, { width: 128, height: 96 }, 'stretched to the input size');
    assert.deepEqual([nhwc.spec.channelOrder, nhwc.spec.layout, nhwc.spec.output], ['BGR', 'NHWC', 'logits']);
  });
});

describe('parsePreprocessConfig', () => {
  test('reports every problem at once', () => {
    const { problems } = parsePreprocessConfig({
      preset: 'vgg',
      resize: { shorterSide: 0 },
      crop: { width: 224 },
      channelOrder: 'bgr',
      scale: -1,
      mean: [1, 2],
      std: [1, 0, 1],
      layout: 'CHW',
      interpolation: 'lanczos',
      orientation: 'auto',
      output: 'softmax',
      colour: 'yes',
    });
    const expected = [
      /unknown field "colour"/,
      /preset "vgg" is not one of torchvision, keras-caffe/,
      /resize\.shorterSide must be a positive integer, not 0/,
      /crop\.height must be a positive integer, not undefined/,
      /scale must be a positive number, not -1/,
      /mean must be 3 finite numbers/,
      /std must be 3 finite numbers, none zero/,
      /channelOrder must be one of "RGB", "BGR", not "bgr"/,
      /layout must be one of "NCHW", "NHWC", not "CHW"/,
      /interpolation must be one of "nearest", "bilinear", "bicubic"/,
      /orientation must be one of "ignore", "exif"/,
      /output must be one of "auto", "probabilities", "logits", "sigmoid"/,
    ];
    assert.equal(problems.length, expected.length, problems.join('\n'));
    for (const re of expected)
      assert.ok(
        problems.some((p) => re.test(p)),
        `${re}: ${problems.join('; ')}`,
      );
    assert.deepEqual(parsePreprocessConfig('raw').config, { preset: 'raw' }, 'a preset name alone');
    assert.match(parsePreprocessConfig([1]).problems[0]!, /must be a JSON object or a preset name/);
  });

  test('a resolved spec, written down, resolves to itself', () => {
    const { spec } = fitPreprocess({ preset: 'torchvision', orientation: 'exif' }, NCHW_224, 'x');
    const again = parsePreprocessConfig(JSON.parse(JSON.stringify(configOf(spec))));
    assert.deepEqual(again.problems, []);
    assert.deepEqual(fitPreprocess(again.config, NCHW_224, 'x').spec, spec);
  });

  test('decode: fast unless the spec says exact or draft; written down only when not fast; anything else refused', () => {
    assert.equal(fitPreprocess({ preset: 'torchvision' }, NCHW_224, 'x').spec.decode, 'fast');
    for (const decode of ['exact', 'fast', 'draft'] as const) {
      const { config, problems } = parsePreprocessConfig({ preset: 'torchvision', decode });
      assert.deepEqual(problems, []);
      const { spec } = fitPreprocess(config, NCHW_224, 'x');
      assert.equal(spec.decode, decode);
      const written = configOf(spec);
      assert.equal(written.decode, decode === 'fast' ? undefined : decode);
      assert.deepEqual(fitPreprocess(parsePreprocessConfig(written).config, NCHW_224, 'x').spec, spec);
    }
    assert.deepEqual(parsePreprocessConfig({ decode: 'quick' }).problems, [
      'decode must be one of "exact", "fast", "draft", not "quick"',
    ]);
  });
});

describe('fitPreprocess refuses a spec that cannot produce the input', () => {
  const problemsOf = (config: object, input = NCHW_224) => fitPreprocess(config, input, 'the spec').problems;

  test('size mismatch, crop larger than the resize, a shorter side without a crop, channels', () => {
    assert.match(
      problemsOf({ preset: 'torchvision' }, { dims: ['batch', 3, 299, 299], layout: 'NCHW' }).join(';'),
      /width 224 disagrees with the input's fixed width 299 \(the size after resize and crop must be the input size\)/,
    );
    assert.match(
      problemsOf({ resize: { shorterSide: 200 }, crop: { width: 224, height: 224 } }).join(';'),
      /crop 224x224 is larger than the resized shorter side 200/,
    );
    assert.match(
      problemsOf({ resize: { width: 200, height: 300 }, crop: { width: 224, height: 224 } }).join(';'),
      /crop 224x224 is larger than the resize 200x300/,
    );
    assert.match(problemsOf({ resize: { shorterSide: 256 } }).join(';'), /without a crop gives a size that depends/);
    assert.match(
      problemsOf({ layout: 'NHWC' }).join(';'),
      /layout "NHWC" is not supported by this input: \[batch, 3, 224, 224\] has 224 channels last/,
    );
    assert.match(
      problemsOf({}, { dims: ['batch', 3, 'h', 'w'], layout: 'NCHW' }).join(';'),
      /the input's height is not fixed \(h\) and the spec gives no height/,
    );
    assert.deepEqual(
      problemsOf({ preset: 'torchvision' }, { dims: ['batch', 3, 'h', 'w'], layout: 'NCHW' }),
      [],
      'a dynamic input takes the crop size',
    );
  });
});

describe('which spec a model is served with', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-spec-'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  test('the flag, then the sidecar, then the metadata, then the defaults', async () => {
    const file = path.join(dir, 'm.onnx');
    const metadata = { [PREPROCESS_KEY]: JSON.stringify({ width: 224, height: 224, scale: 1, mean: [1, 2, 3] }) };
    await fs.writeFile(file, model(['batch', 3, 224, 224], metadata));
    const metaInfo = await readModelInfo(file);
    assert.deepEqual([metaInfo.preprocessSource, metaInfo.scale, metaInfo.mean], ['metadata', 1, [1, 2, 3]]);

    assert.equal(preprocessSidecarPath(file), path.join(dir, 'm.preprocess.json'));
    await fs.writeFile(preprocessSidecarPath(file), JSON.stringify({ preset: 'keras-tf' }));
    const sidecar = await readModelInfo(file);
    assert.deepEqual([sidecar.preprocessSource, sidecar.scale, sidecar.mean], ['sidecar', 1 / 127.5, [1, 1, 1]]);

    const flag = await readModelInfo(file, { preprocess: { preset: 'torchvision' }, labels: ['x', 'y', 'z'] });
    assert.deepEqual(
      [flag.preprocessSource, flag.crop, flag.labels],
      ['flag', { width: 224, height: 224 }, ['x', 'y', 'z']],
    );

    const plain = path.join(dir, 'plain.onnx');
    await fs.writeFile(plain, model([1, 3, 32, 48]));
    const defaults = await readModelInfo(plain);
    assert.deepEqual(
      [defaults.preprocessSource, defaults.resize, defaults.scale, defaults.channelOrder],
      ['defaults', { width: 48, height: 32 }, 1 / 255, 'RGB'],
    );
  });

  test('a bad flag or sidecar spec is InvalidPreprocess, listing every problem; bad metadata stays a model error', async () => {
    const file = path.join(dir, 'nhwc.onnx');
    await fs.writeFile(file, model(['batch', 299, 299, 3]));
    await assert.rejects(
      readModelInfo(file, { preprocess: { preset: 'torchvision', output: 'odds' as never } }),
      (err) => {
        assert.ok(err instanceof InvalidInputError && !(err instanceof ModelError), String(err));
        assert.equal(err.type, FailureType.InvalidPreprocess);
        assert.match(err.message, /--preprocess/);
        assert.match(err.message, /output must be one of/);
        assert.match(err.message, /width 224 disagrees with the input's fixed width 299/);
        assert.match(err.message, /height 224 disagrees with the input's fixed height 299/);
        return true;
      },
    );
    await fs.writeFile(
      preprocessSidecarPath(file),
      '{"resize": {"shorterSide": 320}, "crop": {"width": 400, "height": 299}}',
    );
    await assert.rejects(readModelInfo(file), (err) => {
      assert.ok(err instanceof InvalidInputError);
      assert.equal(err.type, FailureType.InvalidPreprocess);
      assert.match(err.message, /nhwc\.preprocess\.json cannot be used/);
      assert.match(err.message, /crop 400x299 is larger than the resized shorter side 320/);
      assert.match(err.message, /width 400 disagrees/);
      return true;
    });
    await fs.writeFile(preprocessSidecarPath(file), 'not json');
    await assert.rejects(readModelInfo(file), /nhwc\.preprocess\.json is not JSON/);
  });
});
