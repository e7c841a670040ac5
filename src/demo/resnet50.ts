/**
 * A ResNet-50-shaped classifier for benchmarks: the real topology (7x7/2 stem, 3x3/2 max pool,
 * bottleneck stages of 3, 4, 6 and 3 blocks with projection shortcuts, global average pool, 1000-way
 * FC, softmax) at 224x224, with seeded random weights. Batch norm is folded into the conv biases, as
 * exported inference graphs do. It does the same arithmetic as the real one; its answers mean nothing.
 * About 100 MB: generated on demand, never committed.
 */
import { IMAGENET_NORMALISATION, modelMetadata } from '../model/metadata';
import type { PreprocessSpec } from '../model/metadata';
import { GraphBuilder } from '../model/onnx-builder';
import { gaussian, seededRandom } from './seeded-random';

export const RESNET50_PREPROCESS: PreprocessSpec = {
  width: 224,
  height: 224,
  layout: 'NCHW',
  ...IMAGENET_NORMALISATION,
};

/** The serialised model (about 102 MB for 1000 classes); the same bytes for the same options. */
export function buildResnet50Shaped(opts: { seed?: number; numClasses?: number } = {}): Uint8Array {
  const random = seededRandom(opts.seed ?? 50);
  const numClasses = opts.numClasses ?? 1000;
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`numClasses must be a positive integer.`);
  const g = new GraphBuilder('inferctl-resnet50-shaped');

  const conv = (x: string, inC: number, outC: number, k: number, stride: number, gain = 1): string => {
    // He initialisation; `gain` < 1 on a block's last conv keeps the residual sum from growing.
    const w = g.weight(
      'conv_w',
      [outC, inC, k, k],
      gaussian(outC * inC * k * k, gain * Math.sqrt(2 / (inC * k * k)), random),
    );
    const b = g.weight('conv_b', [outC], new Float32Array(outC));
    const pad = Math.floor(k / 2);
    return g.node('Conv', [x, w, b], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad] });
  };
  const relu = (x: string) => g.node('Relu', [x]);

  let x = g.input('image', ['batch', 3, 224, 224]);
  x = relu(conv(x, 3, 64, 7, 2));
  x = g.node('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });

  let inC = 64;
  const stages: Array<[blocks: number, width: number, stride: number]> = [
    [3, 64, 1],
    [4, 128, 2],
    [6, 256, 2],
    [3, 512, 2],
  ];
  for (const [blocks, width, firstStride] of stages) {
    for (let b = 0; b < blocks; b++) {
      const stride = b === 0 ? firstStride : 1;
      const outC = width * 4;
      let y = relu(conv(x, inC, width, 1, 1));
      y = relu(conv(y, width, width, 3, stride));
      y = conv(y, width, outC, 1, 1, 0.2);
      const shortcut = b === 0 ? conv(x, inC, outC, 1, stride) : x;
      x = relu(g.node('Add', [y, shortcut]));
      inC = outC;
    }
  }
  x = g.node('Flatten', [g.node('GlobalAveragePool', [x])], { axis: 1 });
  const fcW = g.weight('fc_w', [numClasses, inC], gaussian(numClasses * inC, 1 / Math.sqrt(inC), random));
  const fcB = g.weight('fc_b', [numClasses], new Float32Array(numClasses));
  const logits = g.node('Gemm', [x, fcW, fcB], { transB: 1 });
  g.node('Softmax', [logits], { axis: 1 }, 'probabilities');
  g.output('probabilities', ['batch', numClasses]);
  const labels = Array.from({ length: numClasses }, (_, i) => `class_${String(i).padStart(4, '0')}`);
  return g.build(modelMetadata(RESNET50_PREPROCESS, labels));
}
