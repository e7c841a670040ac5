/**
 * The tiny test model: a real convolutional image classifier that recognises an image's dominant
 * colour, with hand-designed deterministic weights (no training, no model hub), about 2 KB.
 *
 *   image [batch,3,64,64], normalised (x - 0.5) / 0.5
 *     → Conv3x3 (3→3) → Relu → Conv3x3 (3→3) → Relu      denoise: per-channel 3x3 means, back to [0, 1]
 *     → Conv1x1 (3→8) → Softmax over channels           each pixel votes for its nearest label colour
 *     → GlobalAveragePool → Flatten                      the share of the image each colour covers
 *     → Gemm (8→8, γ·I) → Softmax → probabilities [batch,8]
 *
 * The 1x1 conv scores label k at a pixel of colour x by −β‖x − p_k‖² with the ‖x‖² term, common to all
 * labels, dropped: weights 2βp_k, bias −β‖p_k‖², where p_k is the label's prototype colour. Because
 * pixels vote before pooling, a picture that is 40% red, 30% green and 30% blue is "red", not the grey
 * its mean colour is. The normalisation is deliberately not the identity, so a preprocessing bug
 * (mean/std ignored, channels swapped) shows up as wrong answers.
 */
import { GraphBuilder } from '../model/onnx-builder';
import { modelMetadata } from '../model/metadata';
import type { PreprocessSpec } from '../model/metadata';

export const TINY_CNN_LABELS = ['red', 'green', 'blue', 'yellow', 'cyan', 'magenta', 'white', 'black'];

/** Prototype colour of each label (RGB in [0, 1]). */
export const TINY_CNN_COLOURS: Readonly<Record<string, readonly [number, number, number]>> = {
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
/** Sharpness of each pixel's vote: nearest prototypes are ≥ 1 apart (squared), so e^β ≈ 22000 : 1. */
const PIXEL_BETA = 10;
/** Scale from "share of the image" (0-1) to logits: an all-red image scores ≈ 0.9997 red. */
const SHARE_GAMMA = 10;

export const TINY_CNN_PREPROCESS: PreprocessSpec = {
  width: TINY_CNN_SIZE,
  height: TINY_CNN_SIZE,
  layout: 'NCHW',
  scale: 1 / 255,
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
};

/** A 3x3 conv weight [3, 3, 3, 3] whose output channel c is `gains[c]` × the 3x3 mean of input channel c. */
function channelBoxFilter(gains: readonly number[]): Float32Array {
  const w = new Float32Array(3 * 3 * 9);
  for (let c = 0; c < 3; c++) for (let i = 0; i < 9; i++) w[(c * 3 + c) * 9 + i] = gains[c]! / 9;
  return w;
}

export function buildTinyCnn(): Uint8Array {
  const g = new GraphBuilder('inferctl-tiny-colour-cnn');
  const image = g.input('image', ['batch', 3, TINY_CNN_SIZE, TINY_CNN_SIZE]);
  const conv3x3 = { kernel_shape: [3, 3] }; // "valid": no zero padding to darken the borders

  // Layer 1 also undoes the normalisation: ((x - mean) / std) * std + mean = x, back in [0, 1].
  const w1 = g.weight('denoise1_w', [3, 3, 3, 3], channelBoxFilter(TINY_CNN_PREPROCESS.std));
  const b1 = g.weight('denoise1_b', [3], Float32Array.from(TINY_CNN_PREPROCESS.mean));
  let x = g.node('Relu', [g.node('Conv', [image, w1, b1], conv3x3)]);
  const w2 = g.weight('denoise2_w', [3, 3, 3, 3], channelBoxFilter([1, 1, 1]));
  const b2 = g.weight('denoise2_b', [3], new Float32Array(3));
  x = g.node('Relu', [g.node('Conv', [x, w2, b2], conv3x3)]);

  const n = TINY_CNN_LABELS.length;
  const wVote = new Float32Array(n * 3);
  const bVote = new Float32Array(n);
  TINY_CNN_LABELS.forEach((label, k) => {
    const p = TINY_CNN_COLOURS[label]!;
    for (let c = 0; c < 3; c++) wVote[k * 3 + c] = 2 * PIXEL_BETA * p[c]!;
    bVote[k] = -PIXEL_BETA * (p[0] ** 2 + p[1] ** 2 + p[2] ** 2);
  });
  x = g.node('Conv', [x, g.weight('vote_w', [n, 3, 1, 1], wVote), g.weight('vote_b', [n], bVote)], {
    kernel_shape: [1, 1],
  });
  x = g.node('Softmax', [x], { axis: 1 }, 'pixel_votes');
  g.valueInfo('pixel_votes', ['batch', n, TINY_CNN_SIZE - 4, TINY_CNN_SIZE - 4]);
  x = g.node('Flatten', [g.node('GlobalAveragePool', [x])], { axis: 1 }, 'colour_shares');
  g.valueInfo('colour_shares', ['batch', n]);

  const wFc = new Float32Array(n * n);
  for (let k = 0; k < n; k++) wFc[k * n + k] = SHARE_GAMMA;
  const logits = g.node('Gemm', [x, g.weight('fc_w', [n, n], wFc), g.weight('fc_b', [n], new Float32Array(n))], {
    transB: 1,
  });
  g.node('Softmax', [logits], { axis: 1 }, 'probabilities');
  g.output('probabilities', ['batch', n]);
  return g.build(modelMetadata(TINY_CNN_PREPROCESS, TINY_CNN_LABELS));
}
