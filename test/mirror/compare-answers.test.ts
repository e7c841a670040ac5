/** How a mirrored pair of answers is compared: statuses, classifier answers, V2 tensors, other JSON, bytes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { compareAnswers } from '../../src/mirror/compare-answers';

const ok = (value: unknown) => ({
  status: 200,
  body: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
});
const top1 = { mode: 'top1' } as const;
const tol = (tolerance: number) => ({ mode: 'tolerance', tolerance }) as const;

test('statuses: different ones disagree, the same refusal agrees', () => {
  assert.deepEqual(compareAnswers(ok({}), { status: 500, body: Buffer.from('x') }, top1), {
    agree: false,
    why: 'status 200 vs 500',
  });
  assert.equal(
    compareAnswers({ status: 415, body: Buffer.from('a') }, { status: 415, body: Buffer.from('b') }, top1).agree,
    true,
  );
});

test('classifier answers: the top label, and the largest score difference under tolerance', () => {
  const a = ok({
    predictions: [
      { label: 'red', score: 0.9 },
      { label: 'blue', score: 0.05 },
    ],
    probabilities: [1],
  });
  const b = ok({ predictions: [{ label: 'red', score: 0.8 }] });
  const verdict = compareAnswers(a, b, top1);
  assert.equal(verdict.agree, true);
  assert.ok(Math.abs(verdict.difference! - 0.1) < 1e-9);
  assert.match(compareAnswers(a, b, tol(0.05)).why!, /scores differ by 0\.100 \(over 0\.05\)/);
  assert.equal(compareAnswers(a, b, tol(0.2)).agree, true);
  assert.match(
    compareAnswers(a, ok({ predictions: [{ label: 'blue', score: 0.7 }] }), top1).why!,
    /top label "red" vs "blue"/,
  );
});

test('V2 answers: outputs by name, argmax per row, elements within tolerance', () => {
  const out = (data: number[]) => ok({ outputs: [{ name: 'probs', shape: [2, 3], datatype: 'FP32', data }] });
  const a = out([0.1, 0.7, 0.2, 0.5, 0.3, 0.2]);
  assert.equal(compareAnswers(a, out([0.2, 0.6, 0.2, 0.5, 0.3, 0.2]), top1).agree, true);
  assert.match(compareAnswers(a, out([0.1, 0.7, 0.2, 0.2, 0.3, 0.5]), top1).why!, /row 1: argmax 0 vs 2/);
  assert.match(compareAnswers(a, out([0.2, 0.6, 0.2, 0.5, 0.3, 0.2]), tol(0.01)).why!, /differs by 0\.100/);
  assert.match(compareAnswers(a, ok({ outputs: [{ name: 'other', data: [1] }] }), top1).why!, /"probs" missing/);
});

test('other JSON: the same structure, numbers within tolerance; bodies that are not JSON byte for byte', () => {
  assert.equal(compareAnswers(ok({ label: 'green', p: 0.5 }), ok({ label: 'green', p: 0.5 }), top1).agree, true);
  assert.match(compareAnswers(ok({ label: 'green', p: 0.5 }), ok({ label: 'green', p: 0.51 }), top1).why!, /at \$\.p/);
  assert.equal(compareAnswers(ok({ p: [0.5] }), ok({ p: [0.51] }), tol(0.02)).agree, true);
  assert.match(compareAnswers(ok({ p: [1, 2] }), ok({ p: [1] }), tol(1)).why!, /length 2 vs 1/);
  assert.equal(compareAnswers(ok('plain text'), ok('plain text'), top1).agree, true);
  assert.match(compareAnswers(ok('plain'), ok('other'), top1).why!, /not JSON/);
  assert.match(compareAnswers(ok('plain'), ok({ a: 1 }), top1).why!, /one answer is JSON/);
});
