/**
 * The V2 batcher on its own, with a runner that really computes (doubles its input, refuses negative
 * values as a model operator would): groups by shape, splits rows back in order, respects the batch
 * size in rows, and a refused request fails alone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { V2Batcher } from '../../../src/inference-protocol/server/batcher';
import type { BatchInput, Outputs } from '../../../src/inference-protocol/server/batcher';

function doubler() {
  const batches: number[][] = [];
  const batcher = new V2Batcher({
    maxBatchSize: 4,
    maxQueueDelayMicros: 50_000,
    run: (inputs: BatchInput[], fetches: readonly string[]): Promise<Outputs> => {
      const x = inputs[0]!;
      batches.push([x.shape[0]!, ...x.shape.slice(1)]);
      const data = x.data as Float32Array;
      if (data.some((v) => v < 0)) return Promise.reject(new Error('negative input'));
      return Promise.resolve({ [fetches[0]!]: { type: 'float32', dims: x.shape, data: data.map((v) => v * 2) } });
    },
  });
  const submit = (values: number[], rowLength: number) =>
    batcher.submit(
      [{ name: 'x', type: 'float32', shape: [values.length / rowLength, rowLength], data: Float32Array.from(values) }],
      ['y'],
      values.length / rowLength,
    );
  return { batches, submit };
}

describe('V2Batcher', () => {
  test('equal shapes past axis 0 run together, each gets its own rows back; other shapes run apart', async () => {
    const { batches, submit } = doubler();
    const answers = await Promise.all([
      submit([1, 2], 2),
      submit([3, 4], 2),
      submit([5, 6, 7, 8], 2),
      submit([9, 10, 11], 3),
    ]);
    assert.deepEqual(
      answers.map((o) => [o.y!.dims, [...(o.y!.data as Float32Array)]]),
      [
        [
          [1, 2],
          [2, 4],
        ],
        [
          [1, 2],
          [6, 8],
        ],
        [
          [2, 2],
          [10, 12, 14, 16],
        ],
        [
          [1, 3],
          [18, 20, 22],
        ],
      ],
    );
    assert.deepEqual(batches.sort(), [
      [1, 3],
      [4, 2],
    ]);
  });

  test('a group never exceeds maxBatchSize rows; a request that size alone is not queued', async () => {
    const { batches, submit } = doubler();
    await Promise.all([submit([1, 2, 3], 1), submit([4, 5], 1), submit([6, 7, 8, 9], 1)]);
    assert.deepEqual(batches, [
      [3, 1],
      [4, 1],
      [2, 1],
    ]);
  });

  test('a batch that fails is retried one by one: only the refused request fails', async () => {
    const { batches, submit } = doubler();
    const results = await Promise.allSettled([submit([1], 1), submit([-1], 1), submit([3], 1)]);
    assert.deepEqual(
      results.map((r) =>
        r.status === 'fulfilled' ? [...(r.value.y!.data as Float32Array)] : (r.reason as Error).message,
      ),
      [[2], 'negative input', [6]],
    );
    assert.deepEqual(batches, [
      [3, 1],
      [1, 1],
      [1, 1],
      [1, 1],
    ]);
  });
});
