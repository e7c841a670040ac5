/** Output post-processing (softmax for logits, sigmoid, auto) and the input dtype conversions. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { isDistribution, outputScores, sigmoid, softmax } from '../../src/scoring/output-scores';
import { float16Bits, float16Value } from '../../src/scoring/float16';
import { outputAsFloat32, toInputData } from '../../src/scoring/tensor-dtype';

const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) =>
  b.forEach((v, i) => assert.ok(Math.abs(a[i]! - v) <= tol, `index ${i}: ${a[i]} vs ${v}`));

describe('output scores', () => {
  test('softmax, sigmoid, and auto (softmax unless already a distribution)', () => {
    const logits = Float32Array.of(2, 1, -1);
    const e = [Math.exp(2), Math.exp(1), Math.exp(-1)];
    const sum = e[0]! + e[1]! + e[2]!;
    close(
      softmax(logits),
      e.map((v) => v / sum),
    );
    close(softmax(Float32Array.of(1000, 999)), [1 / (1 + Math.exp(-1)), 1 / (1 + Math.exp(1))], 1e-6);
    close(sigmoid(Float32Array.of(0, 2)), [0.5, 1 / (1 + Math.exp(-2))]);
    const probs = Float32Array.of(0.7, 0.2, 0.1);
    assert.equal(outputScores(probs, 'auto'), probs, 'a distribution is kept as is');
    assert.equal(outputScores(probs, 'probabilities'), probs);
    close(
      outputScores(logits, 'auto'),
      e.map((v) => v / sum),
    );
    close(
      outputScores(logits, 'logits'),
      e.map((v) => v / sum),
    );
    assert.ok(!isDistribution(Float32Array.of(0.5, 0.6)), 'sums to 1.1');
    assert.ok(!isDistribution(Float32Array.of(1.2, -0.2)), 'a negative score');
    assert.ok(isDistribution(Float32Array.of(0.5, 0.5004)), 'within 1e-3');
  });

  test('float16 bits round to nearest even, as NumPy does; uint8 rounds and clamps', () => {
    // Known half-precision encodings.
    for (const [value, bits] of [
      [0, 0x0000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff],
      [1e6, 0x7c00],
      [2 ** -24, 0x0001],
      [1 + 2 ** -11, 0x3c00], // halfway: to even
      [1 + 3 * 2 ** -11, 0x3c02], // halfway: to even (up)
    ] as const) {
      assert.equal(float16Bits(value), bits, `${value}`);
    }
    for (const v of [0.1, -1.7, 2.2489, 123.4])
      assert.ok(Math.abs(float16Value(float16Bits(v)) - v) < Math.abs(v) * 1e-3);
    assert.deepEqual([...toInputData(Float32Array.of(-3, 0.4, 0.6, 254.5, 300), 'uint8')], [0, 0, 1, 255, 255]);
    assert.deepEqual([...toInputData(Float32Array.of(1, 0.5), 'float16')], [0x3c00, 0x3800]);
    close(outputAsFloat32(Uint16Array.of(0x3c00, 0xc000)), [1, -2]);
  });
});
