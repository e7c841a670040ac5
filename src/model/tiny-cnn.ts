/**
 * The tiny test model: a real convolutional image classifier that recognises an image's dominant
 * colour, with hand-designed deterministic weights (no training, no model hub), well under 1 MB.
 *
 *   image [batch,3,64,64] → Conv3x3 (3→8) → Relu → Conv3x3 (8→8) → Relu → Conv1x1 (8→3)
 *         → GlobalAveragePool → Flatten → Gemm (3→8) → Softmax → probabilities [batch,8]
 *
 * The convolutions are "valid" (no padding) local averages that keep each colour channel, so after the
 * pooling the network holds the image's mean colour x (each channel in [0, 1]). The Gemm scores each
 * label k by -β‖x − p_k‖² (dropping the term common to all labels): weights 2βp_k, bias −β‖p_k‖²,
 * where p_k is the label's prototype colour. Softmax turns those scores into probabilities.
 */
import { GraphBuilder, modelMetadata } from './onnx-builder';
import type { PreprocessSpec } from './onnx-builder';

export const TINY_CNN_LABELS = ['red', 'green', 'blue', 'yellow', 'cyan', 'magenta', 'white', 'black'];

/** Prototype colour of each label (RGB in [0, 1]), in TINY_CNN_LABELS order. */
export const TINY_CNN_COLOURS: Record<string, [number, number, number]> = {
  red: [1, 0, 0],
  green: [0, 1, 0],
  blue: [0, 0, 1],
  yellow: [1, 1, 0],
  cyan: [0, 1, 1],
  magenta: [1, 0, 1],
  white: [1, 1, 1],
  black: [0, 0, 0],
};

export const TINY_CNN_SIZE = 64;
const BETA = 12;

export const TINY_CNN_PREPROCESS: PreprocessSpec = {
  width: TINY_CNN_SIZE,
  height: TINY_CNN_SIZE,
  layout: 'NCHW',
  scale: 1 / 255,
  mean: [0, 0, 0],
  std: [1, 1, 1],
};

/** A k×k conv weight [out, in, k, k] that averages input channel `map[o]` into output o (others 0). */
function channelAverage(
  outChannels: number,
  inChannels: number,
  k: number,
  map: (o: number) => number | undefined,
): Float32Array {
  const w = new Float32Array(outChannels * inChannels * k * k);
  for (let o = 0; o < outChannels; o++) {
    const i = map(o);
    if (i === undefined) continue;
    for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) w[((o * inChannels + i) * k + y) * k + x] = 1 / (k * k);
  }
  return w;
}

export function buildTinyCnn(): Uint8Array {
  const g = new GraphBuilder('inferctl-tiny-colour-cnn');
  const input = g.input('image', ['batch', 3, TINY_CNN_SIZE, TINY_CNN_SIZE]);

  // Channels 0-2 carry R, G, B; channels 3-7 stay zero (room a trained model would use).
  const w1 = g.weight(
    'conv1_w',
    [8, 3, 3, 3],
    channelAverage(8, 3, 3, (o) => (o < 3 ? o : undefined)),
  );
  const b1 = g.weight('conv1_b', [8], new Float32Array(8));
  let x = g.node('Relu', [g.node('Conv', [input, w1, b1], { kernel_shape: [3, 3] })]);
  const w2 = g.weight(
    'conv2_w',
    [8, 8, 3, 3],
    channelAverage(8, 8, 3, (o) => (o < 3 ? o : undefined)),
  );
  const b2 = g.weight('conv2_b', [8], new Float32Array(8));
  x = g.node('Relu', [g.node('Conv', [x, w2, b2], { kernel_shape: [3, 3] })]);
  const w3 = g.weight(
    'conv3_w',
    [3, 8, 1, 1],
    channelAverage(3, 8, 1, (o) => o),
  );
  const b3 = g.weight('conv3_b', [3], new Float32Array(3));
  x = g.node('Conv', [x, w3, b3], { kernel_shape: [1, 1] });
  x = g.node('Flatten', [g.node('GlobalAveragePool', [x])], { axis: 1 });

  const n = TINY_CNN_LABELS.length;
  const wFc = new Float32Array(n * 3);
  const bFc = new Float32Array(n);
  TINY_CNN_LABELS.forEach((label, k) => {
    const p = TINY_CNN_COLOURS[label]!;
    for (let c = 0; c < 3; c++) wFc[k * 3 + c] = 2 * BETA * p[c]!;
    bFc[k] = -BETA * (p[0] ** 2 + p[1] ** 2 + p[2] ** 2);
  });
  const logits = g.node('Gemm', [x, g.weight('fc_w', [n, 3], wFc), g.weight('fc_b', [n], bFc)], { transB: 1 });
  g.node('Softmax', [logits], { axis: 1 }, 'probabilities');
  g.output('probabilities', ['batch', n]);
  return g.build(modelMetadata(TINY_CNN_PREPROCESS, TINY_CNN_LABELS));
}
