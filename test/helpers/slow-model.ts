/**
 * A deliberately slow image classifier for tests that need an inference in flight long enough to watch:
 * the tiny model's input and labels (64×64, 8 colours), then `layers` 3×3 convolutions over `channels`
 * channels (one shared weight, so the file stays small) before pooling to 8 scores. With one intra-op
 * thread, the defaults (24 layers of 128 channels) take about half a second per image on one core.
 */
import { modelMetadata } from '../../src/model/metadata';
import { GraphBuilder } from '../../src/model/onnx-builder';
import { TINY_CNN_LABELS, TINY_CNN_PREPROCESS, TINY_CNN_SIZE } from '../../src/demo/tiny-cnn';

export function buildSlowCnn(opts: { layers?: number; channels?: number } = {}): Uint8Array {
  const layers = opts.layers ?? 24;
  const c = opts.channels ?? 128;
  const n = TINY_CNN_LABELS.length;
  const g = new GraphBuilder('inferctl-slow-test-cnn');
  const image = g.input('image', ['batch', 3, TINY_CNN_SIZE, TINY_CNN_SIZE]);
  const same = { kernel_shape: [3, 3], pads: [1, 1, 1, 1] };
  const spread = (count: number, scale: number) =>
    Float32Array.from({ length: count }, (_, i) => ((i % 7) - 3) * scale);
  let x = g.node('Relu', [
    g.node(
      'Conv',
      [image, g.weight('stem_w', [c, 3, 3, 3], spread(c * 27, 0.05)), g.weight('stem_b', [c], new Float32Array(c))],
      same,
    ),
  ]);
  const w = g.weight('body_w', [c, c, 3, 3], spread(c * c * 9, 0.001));
  const b = g.weight('body_b', [c], new Float32Array(c));
  for (let i = 0; i < layers; i++) x = g.node('Relu', [g.node('Conv', [x, w, b], same)]);
  x = g.node(
    'Conv',
    [x, g.weight('head_w', [n, c, 1, 1], spread(n * c, 0.01)), g.weight('head_b', [n], new Float32Array(n))],
    {
      kernel_shape: [1, 1],
    },
  );
  x = g.node('Flatten', [g.node('GlobalAveragePool', [x])], { axis: 1 });
  g.node('Softmax', [x], { axis: 1 }, 'probabilities');
  g.output('probabilities', ['batch', n]);
  return g.build(modelMetadata(TINY_CNN_PREPROCESS, TINY_CNN_LABELS));
}
