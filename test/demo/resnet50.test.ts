/** The benchmark model: ResNet-50's topology and size, loadable by onnxruntime, numerically sane. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { onnx } from 'onnx-proto';

import { buildResnet50Shaped } from '../../src/demo/resnet50';
import { Classifier } from '../../src/scoring/classifier';

test('the ResNet-50-shaped model loads in onnxruntime and answers a finite distribution', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-resnet-'));
  try {
    const bytes = buildResnet50Shaped({ seed: 1 });
    const graph = onnx.ModelProto.decode(bytes).graph as onnx.GraphProto;
    const ops = (type: string) => graph.node.filter((n) => n.opType === type).length;
    // 1 stem + 16 blocks × 3 + 4 projection shortcuts; 16 residual adds; ~25.5 M parameters.
    assert.equal(ops('Conv'), 53);
    assert.equal(ops('Add'), 16);
    assert.equal(ops('MaxPool'), 1);
    const params = graph.initializer.reduce(
      (sum, t) => sum + (t.dims ?? []).reduce((a: number, d) => a * Number(d), 1),
      0,
    );
    assert.ok(Math.abs(params - 25_557_032) < 60_000, `${params} parameters`);

    const file = path.join(dir, 'resnet50.onnx');
    await fs.writeFile(file, bytes);
    const classifier = await Classifier.load(file);
    try {
      assert.equal(classifier.info.width, 224);
      assert.equal(classifier.info.labels.length, 1000);
      const image = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i / 97));
      const [probs] = await classifier.infer([image]);
      assert.equal(probs?.length, 1000);
      assert.ok(probs.every(Number.isFinite), 'no NaN or Infinity');
      const sum = probs.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-3, `probabilities sum to 1 (${sum})`);
      assert.ok(Math.max(...probs) < 0.999, 'not collapsed onto one class by exploding activations');
    } finally {
      await classifier.release();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
