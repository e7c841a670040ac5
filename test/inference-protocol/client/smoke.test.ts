/**
 * The V2 smoke query's checks without a server: a request and an expectation checked against a model's
 * signature (every problem listed), answers decoded from JSON and from the binary extension, and the
 * tolerance rule (absolute below 1, relative above; integers and BOOL exact; NaN matches NaN).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { readModelSignature } from '../../../src/model/model-signature';
import {
  compareOutputs,
  decodeInferResponse,
  parseExpectedOutputs,
  requestedOutputs,
  smokeRequestProblems,
} from '../../../src/inference-protocol/client/smoke';
import type { AnswerTensor } from '../../../src/inference-protocol/client/smoke';
import { encodeInferResponse } from '../../../src/inference-protocol/tensors';
import { buildMultiInputModel } from '../fixtures';

async function signature() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-v2smoke-'));
  const file = path.join(dir, 'sums.onnx');
  await fs.writeFile(file, buildMultiInputModel());
  try {
    return await readModelSignature(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describe('V2 smoke checks', () => {
  test('the model signature is read from the protobuf: V2 datatypes, -1 for the dynamic batch', async () => {
    const model = await signature();
    assert.match(model.digest, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(
      model.inputs.map((i) => `${i.name} ${i.datatype} [${i.shape.join(',')}]`),
      ['a INT64 [-1,3]', 'b FP32 [-1,3]', 'h FP16 [-1,2]', 'u UINT8 [-1,2]', 'i INT32 [-1,2]', 'flag BOOL [-1,2]'],
    );
    assert.deepEqual(
      model.outputs.map((o) => o.datatype),
      ['FP32', 'INT64', 'FP16', 'INT32', 'BOOL'],
    );
  });

  test('a request that fits has no problems; one that does not has each listed', async () => {
    const model = await signature();
    const good = {
      inputs: ['a', 'b', 'h', 'u', 'i', 'flag'].map((name, k) => ({
        name,
        datatype: model.inputs[k]!.datatype,
        shape: [1, model.inputs[k]!.shape[1]!],
        data: Array.from({ length: model.inputs[k]!.shape[1]! }, () => (name === 'flag' ? true : 1)),
      })),
      outputs: [{ name: 'sum' }],
    };
    assert.deepEqual(smokeRequestProblems(JSON.stringify(good), model), []);
    assert.deepEqual(requestedOutputs(JSON.stringify(good)), ['sum']);

    const bad = {
      inputs: [good.inputs[0], good.inputs[0], { ...good.inputs[1], shape: [1, 3, 1] }, { datatype: 'FP32' }],
      outputs: [{ name: 'nope' }],
    };
    assert.deepEqual(smokeRequestProblems(JSON.stringify(bad), model), [
      'Input "a" is given twice',
      'input "b" has shape [1, 3, 1] but the model takes [-1, 3] (-1: any size)',
      'inputs[0] needs a "name"',
      'it lacks input "h", "u", "i", "flag" (the model takes "a", "b", "h", "u", "i", "flag")',
      'it asks for output "nope", which the model lacks (it has "sum", "neg", "square", "isum", "not")',
    ]);
    assert.match(smokeRequestProblems('[1, 2', model)[0]!, /^it is not valid JSON/);
    assert.deepEqual(smokeRequestProblems('{"inputs": []}', model), [
      'it needs "inputs": [{"name", "datatype", "shape", "data"}, …]',
    ]);
  });

  test('an expectation is checked against the model and the outputs the request asks for', async () => {
    const model = await signature();
    const text = JSON.stringify({
      outputs: [
        { name: 'sum', datatype: 'FP32', shape: [1, 3], data: [[1, 2, 3]] },
        { name: 'neg', shape: [2, 3], data: [1] },
        { name: 'not', data: ['yes'] },
      ],
    });
    const { expected, problems } = parseExpectedOutputs(text, model, ['sum', 'neg']);
    assert.deepEqual(expected[0], { name: 'sum', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] });
    assert.deepEqual(problems, [
      'output "neg": data has 1 elements but shape [2, 3] holds 6',
      'output "not" is not among the outputs the request asks for (sum, neg)',
      'output "not": data[0] is "yes", not a number or boolean',
    ]);
  });

  test('answers decode the same from JSON and from binary outputs, 64-bit integers exact', () => {
    const outputs = [
      { name: 'x', datatype: 'FP16' as const, shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
      { name: 'n', datatype: 'INT64' as const, shape: [1], data: new BigInt64Array([2n ** 60n + 1n]) },
      { name: 'f', datatype: 'BOOL' as const, shape: [2], data: new Uint8Array([1, 0]) },
    ];
    const json = encodeInferResponse(
      'm',
      undefined,
      outputs.map((o) => ({ ...o, binary: false })),
    );
    const binary = encodeInferResponse(
      'm',
      undefined,
      outputs.map((o) => ({ ...o, binary: true })),
    );
    assert.ok(binary.headerLength !== undefined);
    const fromJson = decodeInferResponse(json.body, null);
    const fromBinary = decodeInferResponse(binary.body, String(binary.headerLength));
    assert.deepEqual(fromJson, fromBinary);
    assert.deepEqual(
      fromBinary.map((o) => o.data),
      [[1, -2], [2n ** 60n + 1n], [true, false]],
    );
    assert.throws(() => decodeInferResponse(binary.body, String(binary.body.length + 1)), /does not fit/);
  });

  test('the tolerance is absolute below 1 and relative above; integers and BOOL are exact; NaN matches NaN', () => {
    const answer: AnswerTensor[] = [
      { name: 'f', datatype: 'FP32', shape: [2, 2], data: [0.5, 1000.005, NaN, 3] },
      { name: 'i', datatype: 'INT64', shape: [2], data: [2n ** 60n, 7] },
      { name: 'b', datatype: 'BOOL', shape: [1], data: [true] },
    ];
    const ok = compareOutputs(
      answer,
      [
        { name: 'f', data: [0.500005, 1000, NaN, 3] },
        { name: 'i', data: [2n ** 60n, 7] },
        { name: 'b', data: [true] },
      ],
      1e-5,
    );
    assert.deepEqual(ok.mismatches, []);
    assert.ok(Math.abs(ok.maxDifference.get('f')! - 0.005) < 1e-6, 'the largest difference is recorded');

    const off = compareOutputs(
      answer,
      [
        { name: 'f', data: [0.5, 1000.02, NaN, 3] },
        { name: 'i', data: [2n ** 60n + 1n, 7] },
        { name: 'b', data: [false] },
        { name: 'gone', data: [1] },
        { name: 'f', shape: [4], data: [0, 0, 0, 0] },
      ],
      1e-5,
    );
    assert.equal(off.mismatches.length, 5);
    assert.match(
      off.mismatches[0]!,
      /^output "f" differs at \[0, 1\]: it answered 1000\.005, expected 1000\.02 \(difference 0\.015, allowed 0\.0100002\); 1 of 4 elements differ, the largest by 0\.015$/,
    );
    assert.match(
      off.mismatches[1]!,
      /^output "i" differs at \[0\]: it answered 1152921504606846976, expected 1152921504606846977 \(difference 1, must be equal\)/,
    );
    assert.match(off.mismatches[2]!, /^output "b" differs at \[0\]: it answered true, expected false/);
    assert.equal(off.mismatches[3], 'output "gone" is missing from the answer (it has f, i, b)');
    assert.equal(off.mismatches[4], 'output "f" has shape [2, 2], expected [4]');
  });
});
