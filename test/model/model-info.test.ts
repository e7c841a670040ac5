/**
 * Models made here are real ONNX: onnxruntime loads them, the colour CNN recognises colours, and every
 * way a model file can be unusable is refused with what to fix.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { onnx } from 'onnx-proto';

import { ModelError } from '../../src/errors';
import { makeColourJpeg } from '../../src/images/sample-images';
import { readModelInfo } from '../../src/model/model-info';
import { GraphBuilder } from '../../src/model/onnx-builder';
import { buildResnet50Shaped } from '../../src/model/resnet50';
import { buildTinyCnn, TINY_CNN_LABELS } from '../../src/model/tiny-cnn';
import { Classifier } from '../../src/scoring/classifier';

describe('models', () => {
  let dir: string;
  let tiny: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-model-'));
    tiny = path.join(dir, 'tiny.onnx');
    await fs.writeFile(tiny, buildTinyCnn());
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  test('the tiny CNN is small, self-describing and recognises every colour', async () => {
    assert.ok((await fs.stat(tiny)).size < 100_000, 'far under 1 MB');
    const info = await readModelInfo(tiny);
    assert.deepEqual(info.labels, TINY_CNN_LABELS);
    assert.equal(info.width, 64);
    assert.equal(info.dynamicBatch, true);
    assert.match(info.digest, /^sha256:[0-9a-f]{64}$/);

    const classifier = await Classifier.load(tiny);
    try {
      for (const [seed, label] of TINY_CNN_LABELS.entries()) {
        for (const size of [32, 200]) {
          const [result] = await classifier.classify([await makeColourJpeg(label, { size, seed })], 3);
          assert.ok(result?.ok);
          assert.equal(result.predictions[0]?.label, label, `${label} at ${size}px`);
          assert.ok((result.predictions[0]?.score ?? 0) > 0.9);
        }
      }
    } finally {
      await classifier.release();
    }
  });

  test('batched inference equals one-at-a-time inference', async () => {
    const classifier = await Classifier.load(tiny);
    try {
      const images = await Promise.all(TINY_CNN_LABELS.map((l, i) => makeColourJpeg(l, { seed: i + 10 })));
      const batched = await classifier.classify(images, 8);
      for (const [i, image] of images.entries()) {
        const [single] = await classifier.classify([image], 8);
        assert.deepEqual(single, batched[i]);
      }
    } finally {
      await classifier.release();
    }
  });

  test('unusable model files are refused with what to fix', async () => {
    const expectError = async (file: string, type: string, message: RegExp) => {
      await assert.rejects(readModelInfo(file), (err: unknown) => {
        assert.ok(err instanceof ModelError);
        assert.equal(err.type, type);
        assert.match(err.message, message);
        return true;
      });
    };
    await expectError(path.join(dir, 'missing.onnx'), 'ModelNotFound', /Model file not found: .*missing\.onnx/);
    const random = path.join(dir, 'random.onnx');
    await fs.writeFile(random, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
    await expectError(random, 'InvalidModel', /not a valid ONNX model/);
    const empty = path.join(dir, 'empty.onnx');
    await fs.writeFile(empty, Buffer.alloc(0));
    await expectError(empty, 'InvalidModel', /not a valid ONNX model/);

    const wrongRank = new GraphBuilder('rank2');
    wrongRank.input('x', ['batch', 3]);
    wrongRank.node('Softmax', ['x'], { axis: 1 }, 'y');
    wrongRank.output('y', ['batch', 3]);
    const rank2 = path.join(dir, 'rank2.onnx');
    await fs.writeFile(rank2, wrongRank.build({ 'inferctl.labels': '["a","b","c"]' }));
    await expectError(rank2, 'UnsupportedModel', /\[batch, 3\].*\[batch, 3, height, width\]/);

    // The tiny CNN without its labels metadata: a sidecar file fixes it.
    const model = onnx.ModelProto.decode(buildTinyCnn());
    model.metadataProps = model.metadataProps.filter((p) => p.key !== 'inferctl.labels');
    const unlabelled = path.join(dir, 'unlabelled.onnx');
    await fs.writeFile(unlabelled, onnx.ModelProto.encode(model).finish());
    await expectError(unlabelled, 'MissingLabels', /add unlabelled\.labels\.txt/);
    await fs.writeFile(path.join(dir, 'unlabelled.labels.txt'), 'one\ntwo\n');
    await expectError(unlabelled, 'MissingLabels', /8 classes but there are 2 labels/);
    await fs.writeFile(path.join(dir, 'unlabelled.labels.txt'), TINY_CNN_LABELS.join('\n'));
    assert.deepEqual((await readModelInfo(unlabelled)).labels, TINY_CNN_LABELS);
  });

  test('the ResNet-50-shaped graph loads in onnxruntime and answers a finite distribution', async () => {
    const file = path.join(dir, 'resnet50.onnx');
    await fs.writeFile(file, buildResnet50Shaped({ seed: 1 }));
    assert.ok((await fs.stat(file)).size > 90_000_000, 'about 25 million float32 weights');
    const classifier = await Classifier.load(file);
    try {
      assert.equal(classifier.info.width, 224);
      assert.equal(classifier.info.labels.length, 1000);
      const [probs] = await classifier.infer([new Float32Array(3 * 224 * 224).fill(0.5)]);
      assert.equal(probs!.length, 1000);
      assert.ok(probs!.every(Number.isFinite), 'no NaN or Infinity');
      const sum = probs!.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-3, `probabilities sum to 1 (${sum})`);
    } finally {
      await classifier.release();
    }
  });
});
