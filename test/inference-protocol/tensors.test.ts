/**
 * The Open Inference Protocol's tensor codec: every datatype in JSON and binary, both ways; FP16 bits
 * against Node's own DataView.setFloat16/getFloat16; 64-bit integers exact; every malformed request a
 * 400 whose message names the problem.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { seededRandom } from '../../src/demo/seeded-random';
import {
  V2Error,
  V2_DATATYPES,
  encodeInferResponse,
  float16Bits,
  float16Value,
  parseInferRequest,
} from '../../src/inference-protocol/tensors';
import type { V2Datatype } from '../../src/inference-protocol/tensors';

/** JSON values and their little-endian bytes, per datatype (2 × 2 each, including the extremes). */
const SAMPLES: Record<V2Datatype, { json: unknown[]; bytes: number[] }> = {
  BOOL: { json: [true, false, false, true], bytes: [1, 0, 0, 1] },
  UINT8: { json: [0, 1, 200, 255], bytes: [0, 1, 200, 255] },
  INT8: { json: [-128, -1, 0, 127], bytes: [0x80, 0xff, 0, 0x7f] },
  UINT16: { json: [0, 1, 0x1234, 0xffff], bytes: [0, 0, 1, 0, 0x34, 0x12, 0xff, 0xff] },
  INT16: { json: [-32768, -1, 2, 32767], bytes: [0, 0x80, 0xff, 0xff, 2, 0, 0xff, 0x7f] },
  UINT32: { json: [0, 1, 2, 0xffffffff], bytes: [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff] },
  INT32: {
    json: [-2147483648, -1, 3, 2147483647],
    bytes: [0, 0, 0, 0x80, ...[0xff, 0xff, 0xff, 0xff], 3, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f],
  },
  UINT64: {
    json: [0n, 1n, 2n ** 53n + 1n, 2n ** 64n - 1n],
    bytes: [...le64(0n), ...le64(1n), ...le64(2n ** 53n + 1n), ...le64(2n ** 64n - 1n)],
  },
  INT64: {
    json: [-(2n ** 63n), -1n, 2n ** 53n + 1n, 2n ** 63n - 1n],
    bytes: [...le64(2n ** 63n), ...le64(2n ** 64n - 1n), ...le64(2n ** 53n + 1n), ...le64(2n ** 63n - 1n)],
  },
  FP16: { json: [1, -2, 0.5, 65504], bytes: [0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0xff, 0x7b] },
  FP32: {
    json: [1.5, -0.25, 3.4028234663852886e38, 1.401298464324817e-45],
    bytes: f32Bytes([1.5, -0.25, 3.4028234663852886e38, 1.401298464324817e-45]),
  },
  FP64: { json: [Math.PI, -1e300, 5e-324, 0], bytes: f64Bytes([Math.PI, -1e300, 5e-324, 0]) },
};

function le64(v: bigint): number[] {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return [...b];
}
function f32Bytes(values: number[]): number[] {
  return [...new Uint8Array(new Float32Array(values).buffer)];
}
function f64Bytes(values: number[]): number[] {
  return [...new Uint8Array(new Float64Array(values).buffer)];
}

/** JSON text with bigints written as exact integers (what a client would send). */
function jsonText(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `@@${v}@@` : v)).replace(
    /"@@(-?\d+)@@"/g,
    '$1',
  );
}

function request(inputs: unknown[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(jsonText({ inputs, ...extra }));
}

function binaryRequest(header: unknown, blobs: Buffer[]): { body: Buffer; length: string } {
  const json = Buffer.from(jsonText(header));
  return { body: Buffer.concat([json, ...blobs]), length: String(json.length) };
}

/** The V2Error a call throws (failing the test when it throws nothing or something else). */
function v2Error(fn: () => unknown): V2Error {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof V2Error, `a V2Error, not ${String(err)}`);
    return err;
  }
  assert.fail('expected a V2Error');
}

describe('V2 tensor codec', () => {
  for (const datatype of Object.keys(V2_DATATYPES) as V2Datatype[]) {
    const { json, bytes } = SAMPLES[datatype];
    test(`${datatype}: JSON and binary inputs decode to the same bytes, and encode back both ways`, () => {
      const fromJson = parseInferRequest(request([{ name: 'x', shape: [2, 2], datatype, data: json }]), undefined);
      const [tensor] = fromJson.inputs;
      assert.ok(tensor);
      assert.deepEqual([...Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength)], bytes);
      assert.equal(tensor.data.length, 4);

      const { body, length } = binaryRequest(
        { inputs: [{ name: 'x', shape: [2, 2], datatype, parameters: { binary_data_size: bytes.length } }] },
        [Buffer.from(bytes)],
      );
      const fromBinary = parseInferRequest(body, length).inputs[0]!;
      assert.deepEqual(fromBinary.data, tensor.data);
      assert.deepEqual(fromBinary.shape, [2, 2]);

      const asJson = encodeInferResponse('m', 'req-1', [
        { name: 'y', datatype, shape: [2, 2], data: tensor.data, binary: false },
      ]);
      assert.equal(asJson.headerLength, undefined);
      const decoded = JSON.parse(asJson.body.toString(), (_k, v: unknown, ctx?: { source?: string }) =>
        typeof v === 'number' && (datatype === 'INT64' || datatype === 'UINT64') ? BigInt(ctx!.source!) : v,
      ) as {
        model_name: string;
        id: string;
        outputs: Array<{ name: string; datatype: string; shape: number[]; data: unknown[] }>;
      };
      assert.equal(decoded.model_name, 'm');
      assert.equal(decoded.id, 'req-1');
      const wide = datatype === 'INT64' || datatype === 'UINT64';
      assert.deepEqual(decoded.outputs[0], { name: 'y', datatype, shape: wide ? [2n, 2n] : [2, 2], data: json });

      const asBinary = encodeInferResponse('m', undefined, [
        { name: 'y', datatype, shape: [2, 2], data: tensor.data, binary: true },
      ]);
      const headerLength = asBinary.headerLength!;
      const header = JSON.parse(asBinary.body.subarray(0, headerLength).toString()) as {
        outputs: Array<{ parameters: { binary_data_size: number }; data?: unknown }>;
      };
      assert.deepEqual(header.outputs[0]!.parameters, { binary_data_size: bytes.length });
      assert.equal(header.outputs[0]!.data, undefined);
      assert.deepEqual([...asBinary.body.subarray(headerLength)], bytes);
    });
  }

  test('binary tensors follow the header in input order, mixed with JSON ones; nested JSON data is row-major', () => {
    const first = Buffer.from(new Float32Array([1, 2, 3]).buffer);
    const second = Buffer.from(new Int32Array([7, -7]).buffer);
    const { body, length } = binaryRequest(
      {
        id: 'abc',
        inputs: [
          { name: 'p', shape: [3], datatype: 'FP32', parameters: { binary_data_size: 12 } },
          {
            name: 'q',
            shape: [2, 3],
            datatype: 'UINT8',
            data: [
              [1, 2, 3],
              [4, 5, 6],
            ],
          },
          { name: 'r', shape: [1, 2], datatype: 'INT32', parameters: { binary_data_size: 8 } },
        ],
        outputs: [
          { name: 'o1' },
          { name: 'o2', parameters: { binary_data: false } },
          { name: 'o3', parameters: { binary_data: true } },
        ],
        parameters: { binary_data_output: true },
      },
      [first, second],
    );
    const parsed = parseInferRequest(body, length);
    assert.equal(parsed.id, 'abc');
    assert.deepEqual(
      parsed.inputs.map((t) => [t.name, [...t.data]]),
      [
        ['p', [1, 2, 3]],
        ['q', [1, 2, 3, 4, 5, 6]],
        ['r', [7, -7]],
      ],
    );
    assert.deepEqual(parsed.outputs, [
      { name: 'o1', binary: true },
      { name: 'o2', binary: false },
      { name: 'o3', binary: true },
    ]);
    assert.equal(parsed.binaryOutputs, true);
  });

  test('FP16 bits match Node’s DataView.setFloat16 (round to nearest even) and decode like getFloat16', () => {
    const view = new DataView(new ArrayBuffer(2)) as DataView & {
      setFloat16(offset: number, value: number, littleEndian?: boolean): void;
      getFloat16(offset: number, littleEndian?: boolean): number;
    };
    const random = seededRandom(16);
    const values = [
      0,
      -0,
      1,
      -1,
      65504,
      65519,
      65520,
      1e6,
      -1e6,
      2 ** -14,
      2 ** -24,
      2 ** -25,
      3 * 2 ** -25,
      2 ** -26,
      1e-10,
    ];
    values.push(Infinity, -Infinity, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0.1, 1 / 3);
    for (let i = 0; i < 20_000; i++) values.push((random() - 0.5) * 2 ** Math.floor(random() * 40 - 26));
    for (const v of values) {
      view.setFloat16(0, v, true);
      assert.equal(float16Bits(v), view.getUint16(0, true), `bits of ${v}`);
    }
    assert.equal(float16Bits(NaN) & 0x7c00, 0x7c00);
    assert.ok(Number.isNaN(float16Value(float16Bits(NaN))));
    for (let bits = 0; bits < 0x10000; bits++) {
      view.setUint16(0, bits, true);
      const expected = view.getFloat16(0, true);
      const actual = float16Value(bits);
      assert.ok(
        Object.is(actual, expected) || (Number.isNaN(actual) && Number.isNaN(expected)),
        `value of 0x${bits.toString(16)}`,
      );
    }
  });

  test('a request without inputs, a bad datatype, a bad shape or bad values is a 400 that says so', () => {
    const cases: Array<[Buffer, string | undefined, RegExp]> = [
      [Buffer.from('not json'), undefined, /not valid JSON \(binary tensors need the Inference-Header-Content-Length/],
      [Buffer.from('[1]'), undefined, /JSON object with "inputs"/],
      [request([]), undefined, /needs "inputs"/],
      [request([{ shape: [1], datatype: 'FP32', data: [1] }]), undefined, /inputs\[0\] needs a "name"/],
      [
        request([{ name: 'x', shape: [1], datatype: 'FP8', data: [1] }]),
        undefined,
        /datatype "FP8" is not supported; use one of BOOL, UINT8/,
      ],
      [
        request([{ name: 'x', shape: [1], datatype: 'BYTES', data: ['a'] }]),
        undefined,
        /datatype "BYTES" is not supported/,
      ],
      [
        request([{ name: 'x', shape: [1], datatype: 'fp32', data: [1] }]),
        undefined,
        /datatype "fp32" is not supported/,
      ],
      [
        request([{ name: 'x', shape: [-1], datatype: 'FP32', data: [1] }]),
        undefined,
        /"shape" must be an array of non-negative integers/,
      ],
      [request([{ name: 'x', shape: [1.5], datatype: 'FP32', data: [1] }]), undefined, /"shape" must be an array/],
      [
        request([{ name: 'x', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3] }]),
        undefined,
        /data has 3 elements but its shape holds 4/,
      ],
      [
        request([{ name: 'x', shape: [1], datatype: 'FP32' }]),
        undefined,
        /needs "data" \(an array\) or parameters.binary_data_size/,
      ],
      [
        request([{ name: 'x', shape: [1], datatype: 'FP32', data: ['1'] }]),
        undefined,
        /data\[0\] is "1"; FP32 needs a number/,
      ],
      [
        request([{ name: 'x', shape: [1], datatype: 'UINT8', data: [256] }]),
        undefined,
        /data\[0\] is "256"; UINT8 needs an integer in \[0, 255\]/,
      ],
      [
        request([{ name: 'x', shape: [2], datatype: 'INT32', data: [1, 1.5] }]),
        undefined,
        /data\[1\] is "1.5"; INT32 needs an integer/,
      ],
      [
        request([{ name: 'x', shape: [1], datatype: 'INT64', data: [9223372036854775808n] }]),
        undefined,
        /INT64 needs an integer in \[-9223372036854775808, 9223372036854775807\]/,
      ],
      [
        request([{ name: 'x', shape: [1], datatype: 'BOOL', data: [1] }]),
        undefined,
        /data\[0\] is "1"; BOOL needs true or false/,
      ],
      [
        request([
          { name: 'x', shape: [1], datatype: 'FP32', data: [1] },
          { name: 'x', shape: [1], datatype: 'FP32', data: [1] },
        ]),
        undefined,
        /Input "x" is given twice/,
      ],
      [
        request([{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }], { outputs: [{ name: 'y' }, { name: 'y' }] }),
        undefined,
        /Output "y" is asked for twice/,
      ],
      [
        request([{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }], { id: 7 }),
        undefined,
        /"id" must be a string/,
      ],
    ];
    const binary = (inputs: unknown[], blob: Buffer, length?: string) => {
      const r = binaryRequest({ inputs }, [blob]);
      cases.push([r.body, length ?? r.length, /./]);
      return cases.length - 1;
    };
    const sized = binary(
      [{ name: 'x', shape: [2], datatype: 'FP32', parameters: { binary_data_size: 4 } }],
      Buffer.alloc(4),
    );
    cases[sized]![2] = /binary_data_size is 4 bytes but shape \[2\] of FP32 is 8/;
    const short = binary(
      [{ name: 'x', shape: [2], datatype: 'FP32', parameters: { binary_data_size: 8 } }],
      Buffer.alloc(5),
    );
    cases[short]![2] = /the body ends 3 bytes short of its binary data/;
    const extra = binary(
      [{ name: 'x', shape: [1], datatype: 'FP32', parameters: { binary_data_size: 4 } }],
      Buffer.alloc(6),
    );
    cases[extra]![2] = /has 2 bytes after the JSON header that no input's binary_data_size accounts for/;
    const both = binary(
      [{ name: 'x', shape: [1], datatype: 'FP32', data: [1], parameters: { binary_data_size: 4 } }],
      Buffer.alloc(4),
    );
    cases[both]![2] = /has both "data" and a binary_data_size/;
    const tooLong = binary(
      [{ name: 'x', shape: [1], datatype: 'FP32', parameters: { binary_data_size: 4 } }],
      Buffer.alloc(4),
      '99999',
    );
    cases[tooLong]![2] = /Inference-Header-Content-Length is "99999" but the body has \d+ bytes/;
    const notNumber = binary(
      [{ name: 'x', shape: [1], datatype: 'FP32', parameters: { binary_data_size: 4 } }],
      Buffer.alloc(4),
      '12abc',
    );
    cases[notNumber]![2] = /Inference-Header-Content-Length is "12abc"/;

    for (const [body, length, message] of cases) {
      const err = v2Error(() => parseInferRequest(body, length));
      assert.equal(err.status, 400, err.message);
      assert.match(err.message, message);
    }
  });
});
