/**
 * Small image classifiers built here with the project's ONNX builder, in every input form inferctl
 * accepts: NCHW or NHWC, float32, float16 or uint8, a dynamic batch or a batch of 1, ending in logits or
 * probabilities. Seeded weights; spatially and channel sensitive (an 8x8 stride-8 convolution, then a
 * dense layer over the whole map), so a layout, crop or channel-order mistake changes the answer.
 */
import * as ort from 'onnxruntime-node';

import { seededRandom } from '../../src/demo/seeded-random';
import { ElemType, GraphBuilder } from '../../src/model/onnx-builder';
import { softmax } from '../../src/scoring/output-scores';
import { inputTensor, outputAsFloat32 } from '../../src/scoring/tensor-dtype';
import { toNhwc } from './npy';
import type { NpyArray } from './npy';

/**
 * The largest difference of a served score (after softmax) from onnxruntime's on the reference tensor.
 * Measured: at most 0.004 (the probes amplify the preprocessing differences above, a few pixel levels).
 */
export const SCORE_TOLERANCE = 0.02;
/** The probes' top scores stay below this, so that comparing scores means something (no saturated softmax). */
export const MAX_TOP_SCORE = 0.99;

export interface ProbeOptions {
  layout: 'NCHW' | 'NHWC';
  inputType: 'float32' | 'float16' | 'uint8';
  output: 'logits' | 'probabilities';
  batch?: 'batch' | 1;
  size?: number;
  classes?: number;
  /** Multiplies the dense weights: larger logits, a sharper softmax. */
  gain?: number;
  /** The scores' element type (default float32). */
  outputType?: 'float32' | 'float16';
  /** Multiplies the input first (1/64 brings caffe-style ±128 values to about a normalised image's range). */
  inputGain?: number;
  metadata?: Record<string, string>;
}

const ELEM = { float32: ElemType.FLOAT, float16: ElemType.FLOAT16, uint8: ElemType.UINT8 } as const;

export function buildProbe(opts: ProbeOptions): Uint8Array {
  const size = opts.size ?? 224;
  const classes = opts.classes ?? 5;
  const batch = opts.batch ?? 'batch';
  const random = seededRandom(1234);
  const uniform = (n: number, scale: number) => Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
  const g = new GraphBuilder(`probe-${opts.layout}-${opts.inputType}-${opts.output}`);
  const dims = opts.layout === 'NHWC' ? [batch, size, size, 3] : [batch, 3, size, size];
  let x = g.input('image', dims, ELEM[opts.inputType]);
  if (opts.inputType !== 'float32') x = g.node('Cast', [x], { to: ElemType.FLOAT });
  if (opts.layout === 'NHWC') x = g.node('Transpose', [x], { perm: [0, 3, 1, 2] });
  // A uint8 model takes 0-255: bring it to about the range of a normalised image first.
  if (opts.inputType === 'uint8') {
    x = g.node('Sub', [
      g.node('Mul', [x, g.weight('k', [1], Float32Array.of(1 / 64))]),
      g.weight('c', [1], Float32Array.of(2)),
    ]);
  }
  if (opts.inputGain !== undefined) x = g.node('Mul', [x, g.weight('gain', [1], Float32Array.of(opts.inputGain))]);
  const conv = g.node('Conv', [x, g.weight('conv_w', [4, 3, 8, 8], uniform(4 * 3 * 64, 0.1))], {
    kernel_shape: [8, 8],
    strides: [8, 8],
  });
  const cells = 4 * (size / 8) * (size / 8);
  const flat = g.node('Flatten', [g.node('Relu', [conv])], { axis: 1 });
  const half = opts.outputType === 'float16';
  const logitsName = opts.output === 'logits' && !half ? 'scores' : undefined;
  const logits = g.node(
    'Gemm',
    [
      flat,
      g.weight('dense_w', [cells, classes], uniform(cells * classes, 0.05 * (opts.gain ?? 1))),
      g.weight('dense_b', [classes], uniform(classes, 0.5)),
    ],
    {},
    logitsName,
  );
  const scores =
    opts.output === 'probabilities' ? g.node('Softmax', [logits], { axis: 1 }, half ? undefined : 'scores') : logits;
  // A float16 export's scores are float16 too.
  if (half) g.node('Cast', [scores], { to: ElemType.FLOAT16 }, 'scores');
  g.output('scores', [batch, classes], half ? ElemType.FLOAT16 : ElemType.FLOAT);
  return g.build(opts.metadata ?? {});
}

/** Output labels for a probe with `classes` classes. */
export function probeLabels(classes = 5): string[] {
  return Array.from({ length: classes }, (_, i) => `class-${i}`);
}

/**
 * onnxruntime run directly on a reference tensor ([1, 3, H, W] from the Python pipeline, transposed for an
 * NHWC probe): the scores row, softmax applied to logits.
 */
export async function directScores(modelFile: string, opts: ProbeOptions, ref: NpyArray): Promise<Float32Array> {
  const size = opts.size ?? 224;
  const session = await ort.InferenceSession.create(modelFile);
  try {
    const data = opts.layout === 'NHWC' ? toNhwc(ref.data, size, size) : ref.data;
    const dims = opts.layout === 'NHWC' ? [1, size, size, 3] : [1, 3, size, size];
    const out = await session.run({ image: inputTensor(opts.inputType, data, dims) });
    const row = outputAsFloat32(out.scores!.data);
    return opts.output === 'logits' ? softmax(row) : row;
  } finally {
    await session.release();
  }
}
