/** The Classifier over real onnxruntime: batching, fixed-batch models, per-image failures, providers. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ModelError, PermanentError, WorkerCapabilityError } from '../../src/errors';
import { FailureType } from '../../src/shared/failure-types';
import { preprocessImage } from '../../src/preprocess/preprocess-image';
import { makeColourJpeg } from '../../src/demo/sample-images';
import { LABELS_KEY, PREPROCESS_KEY } from '../../src/model/metadata';
import { GraphBuilder } from '../../src/model/onnx-builder';
import { buildTinyCnn, TINY_CNN_LABELS } from '../../src/demo/tiny-cnn';
import { Classifier } from '../../src/scoring/classifier';

/** [1,3,4,4] → per-channel mean → softmax: a model that only takes one image at a time. */
function fixedBatchModel(op = 'GlobalAveragePool'): Uint8Array {
  const g = new GraphBuilder('fixed-batch');
  const x = g.input('x', [1, 3, 4, 4]);
  g.node('Softmax', [g.node('Flatten', [g.node(op, [x])], { axis: 1 })], { axis: 1 }, 'p');
  g.output('p', [1, 3]);
  return g.build({ [LABELS_KEY]: '["r","g","b"]', [PREPROCESS_KEY]: JSON.stringify({ width: 4, height: 4 }) });
}

function softmax(values: number[]): number[] {
  const exps = values.map((v) => Math.exp(v - Math.max(...values)));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

describe('Classifier', () => {
  let dir: string;
  let tinyPath: string;
  let tiny: Classifier;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-classifier-'));
    tinyPath = path.join(dir, 'tiny.onnx');
    await fs.writeFile(tinyPath, buildTinyCnn());
    tiny = await Classifier.load(tinyPath, { intraOpNumThreads: 1 });
  });
  after(async () => {
    await tiny?.release();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('one batched run gives the same probabilities as one run per image', async () => {
    const images = await Promise.all(TINY_CNN_LABELS.map((l, i) => makeColourJpeg(l, { seed: i + 10 })));
    const tensors = await Promise.all(images.map((b) => preprocessImage(b, tiny.info)));
    const batched = await tiny.infer(tensors);
    assert.equal(batched.length, images.length);
    for (const [i, tensor] of tensors.entries()) {
      const [single] = await tiny.infer([tensor]);
      assert.equal(single?.length, TINY_CNN_LABELS.length);
      single.forEach((p, k) => assert.ok(Math.abs(p - batched[i]![k]!) < 1e-6, `image ${i} class ${k}`));
      assert.equal(tiny.topK(batched[i]!, 1)[0]?.label, TINY_CNN_LABELS[i]);
    }
    assert.deepEqual(await tiny.infer([]), []);
  });

  test('an image that cannot be decoded fails alone', async () => {
    const red = await makeColourJpeg('red');
    const blue = await makeColourJpeg('blue');
    const results = await tiny.classify(
      [red, Buffer.from('not an image'), Buffer.alloc(0), red.subarray(0, 300), blue],
      2,
    );
    assert.deepEqual(
      results.map((r) => (r.ok ? r.predictions[0]?.label : r.reason)),
      ['red', 'unsupported-format', 'empty', 'corrupt', 'blue'],
    );
    const failed = results[1]!;
    assert.ok(!failed.ok && /JPEG, PNG or WebP/.test(failed.message));
    assert.equal(results[0]?.ok && results[0].predictions.length, 2);
  });

  test('topK: best first, k clamped to the number of classes', () => {
    const probs = Float32Array.from([0.1, 0.5, 0.05, 0.2, 0.05, 0.05, 0.03, 0.02]);
    assert.deepEqual(
      tiny.topK(probs, 3).map((p) => p.label),
      ['green', 'yellow', 'red'],
    );
    assert.equal(tiny.topK(probs, 3)[0]?.score, probs[1]);
    assert.equal(tiny.topK(probs, 100).length, 8);
    assert.deepEqual(tiny.topK(probs, 0), []);
  });

  test('intra-op variants: a batch runs at another setting on its own session, and the classifier settles on one', async () => {
    const images = await Promise.all(TINY_CNN_LABELS.map((l, i) => makeColourJpeg(l, { seed: i + 20 })));
    const tensors = await Promise.all(images.map((b) => preprocessImage(b, tiny.info)));
    const expected = await tiny.infer(tensors);
    const same = (got: Float32Array[]) =>
      got.forEach((row, i) => row.forEach((p, k) => assert.ok(Math.abs(p - expected[i]![k]!) < 1e-5, `${i}/${k}`)));
    // Without intraOpVariants a classifier runs every batch on its own session, whatever it is asked.
    same(await tiny.infer(tensors, { intraOpThreads: 2 }));
    await tiny.settleIntraOpThreads(2);
    assert.equal(tiny.intraOpThreads, 1, 'nothing to settle on: no variants');

    const varying = await Classifier.load(tinyPath, { intraOpNumThreads: 2, intraOpVariants: true });
    try {
      assert.equal(varying.intraOpThreads, 2);
      const [atOne, atTwo] = await Promise.all([
        varying.infer(tensors, { intraOpThreads: 1 }),
        varying.infer(tensors, { intraOpThreads: 2 }),
      ]);
      same(atOne);
      same(atTwo);
      await varying.settleIntraOpThreads(1);
      assert.equal(varying.intraOpThreads, 1);
      // Whatever a late batch asks for, it runs on the kept session (the other one is closed).
      same(await varying.infer(tensors, { intraOpThreads: 2 }));
      same(await varying.infer(tensors));
      await varying.settleIntraOpThreads(2);
      assert.equal(varying.intraOpThreads, 1, 'settled once');
    } finally {
      await varying.release();
    }
    // Settling on its own setting keeps its session and closes the one opened to measure another.
    const own = await Classifier.load(tinyPath, { intraOpNumThreads: 2, intraOpVariants: true });
    try {
      same(await own.infer(tensors, { intraOpThreads: 1 }));
      await own.settleIntraOpThreads(2);
      assert.equal(own.intraOpThreads, 2);
      same(await own.infer(tensors, { intraOpThreads: 1 }));
    } finally {
      await own.release();
    }
  });

  test('infer refuses tensors of the wrong size', async () => {
    await assert.rejects(tiny.infer([new Float32Array(10)]), /Image 0 has 10 values; this model takes 3×64×64 = 12288/);
  });

  test('a model with a fixed batch of 1 is run once per image', async () => {
    const file = path.join(dir, 'fixed.onnx');
    await fs.writeFile(file, fixedBatchModel());
    const classifier = await Classifier.load(file);
    try {
      assert.equal(classifier.info.dynamicBatch, false);
      const images = [0, 1, 2].map((k) => new Float32Array(48).map((_, i) => (Math.floor(i / 16) === k ? 2 : 0)));
      const out = await classifier.infer(images);
      assert.equal(out.length, 3);
      out.forEach((probs, k) => {
        const expected = softmax([0, 1, 2].map((c) => (c === k ? 2 : 0)));
        expected.forEach((e, c) => assert.ok(Math.abs(probs[c]! - e) < 1e-6, `image ${k} class ${c}`));
      });
    } finally {
      await classifier.release();
    }
  });

  test('a model onnxruntime cannot run is an InvalidModel error saying so', async () => {
    const file = path.join(dir, 'unknown-op.onnx');
    await fs.writeFile(file, fixedBatchModel('NoSuchOperator'));
    await assert.rejects(Classifier.load(file), (err: unknown) => {
      assert.ok(err instanceof ModelError);
      assert.equal(err.type, 'InvalidModel');
      assert.match(err.message, /onnxruntime 1\.\d+\.\d+ cannot load .*unknown-op\.onnx.*NoSuchOperator.*Re-export/);
      return true;
    });
  });

  test('CUDA: used when it loads; otherwise an error, or CPU when the fallback is allowed', async () => {
    const strict = await Classifier.load(tinyPath, { executionProvider: 'cuda' }).catch((err: unknown) => err);
    const cudaWorks = strict instanceof Classifier;
    if (cudaWorks) {
      assert.equal(strict.executionProvider, 'cuda');
      await strict.release();
    } else {
      // Not the model's fault but this worker's: a permanent error of its own kind, with the same type.
      assert.ok(strict instanceof WorkerCapabilityError, String(strict));
      assert.ok(strict instanceof PermanentError);
      assert.equal(strict.type, FailureType.CudaUnavailable);
      assert.match(strict.message, /CUDA execution provider could not load .*allow the CPU fallback/);
    }
    const lenient = await Classifier.load(tinyPath, { executionProvider: 'cuda', allowCpuFallback: true });
    try {
      assert.equal(lenient.executionProvider, cudaWorks ? 'cuda' : 'cpu');
      const [result] = await lenient.classify([await makeColourJpeg('cyan')], 1);
      assert.equal(result?.ok && result.predictions[0]?.label, 'cyan');
    } finally {
      await lenient.release();
    }
  });
});
