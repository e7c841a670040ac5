/**
 * The Open Inference Protocol (KServe V2) routes over real HTTP on loopback, for the image classifier
 * and for a six-input model that is not one (served V2-only): metadata read from the session, infer in
 * JSON and binary equal to onnxruntime run directly (and to the arithmetic the model does), the key,
 * the body limit, readiness while loading, and every refusal as V2's {"error": "…"}.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';

import * as ort from 'onnxruntime-node';

import { seededRandom } from '../../../src/demo/seeded-random';
import { buildTinyCnn } from '../../../src/demo/tiny-cnn';
import { Classifier } from '../../../src/scoring/classifier';
import { createScoringServer } from '../../../src/server/scoring-server';
import type { ScoringServerOptions } from '../../../src/server/scoring-server';
import { ortTensor } from '../../../src/scoring/tensor-dtype';
import { loadOnnxModel } from '../../../src/inference-protocol/server/model';
import type { LoadedOnnxModel, V2Model } from '../../../src/inference-protocol/server/model';
import { float16Bits, float16Value } from '../../../src/inference-protocol/tensors';
import { buildMultiInputModel } from '../fixtures';

const KEY = 'v2-test-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };
const LIMIT = 2_000_000;

interface V2Output {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  parameters?: { binary_data_size: number };
}
interface V2Response {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: V2Output[];
}

async function listen(opts: Partial<ScoringServerOptions>) {
  const server = createScoringServer({ apiKey: KEY, topK: 3, maxBodyBytes: LIMIT, ...opts });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function stop(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** Splits a binary-extension response into its JSON header and each output's bytes by name. */
async function readBinary(res: Response): Promise<{ header: V2Response; blobs: Map<string, Buffer> }> {
  const length = Number(res.headers.get('inference-header-content-length'));
  assert.ok(length > 0, 'Inference-Header-Content-Length');
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  const body = Buffer.from(await res.arrayBuffer());
  const header = JSON.parse(body.subarray(0, length).toString()) as V2Response;
  const blobs = new Map<string, Buffer>();
  let offset = length;
  for (const o of header.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) continue;
    blobs.set(o.name, body.subarray(offset, offset + size));
    offset += size;
  }
  assert.equal(offset, body.length, 'the blobs fill the body');
  return { header, blobs };
}

function binaryBody(header: unknown, blobs: Buffer[]): { body: Buffer; headers: Record<string, string> } {
  const json = Buffer.from(JSON.stringify(header));
  return {
    body: Buffer.concat([json, ...blobs]),
    headers: {
      ...AUTH,
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(json.length),
    },
  };
}

const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('Open Inference Protocol on the scoring server', () => {
  let dir: string;
  let classifier: Classifier;
  let multi: LoadedOnnxModel;
  let server: http.Server;
  let url: string;
  let multiServer: http.Server;
  let multiUrl: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-v2-'));
    await fs.writeFile(path.join(dir, 'tiny.onnx'), buildTinyCnn());
    await fs.writeFile(path.join(dir, 'adder.onnx'), buildMultiInputModel());
    classifier = await Classifier.load(path.join(dir, 'tiny.onnx'), { intraOpNumThreads: 1 });
    multi = await loadOnnxModel(path.join(dir, 'adder.onnx'), { intraOpNumThreads: 1 });
    ({ server, url } = await listen({ classifier }));
    ({ server: multiServer, url: multiUrl } = await listen({ v2Model: multi }));
  });
  after(async () => {
    if (server) await stop(server);
    if (multiServer) await stop(multiServer);
    await classifier?.release();
    await multi?.release();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('server metadata needs the key; health needs none; model metadata comes from the session', async () => {
    const meta = await fetch(`${url}/v2`, { headers: AUTH });
    assert.equal(meta.status, 200);
    const body = (await meta.json()) as { name: string; version: string; extensions: string[] };
    assert.equal(body.name, 'inferctl');
    assert.match(body.version, /^\d+\.\d+\.\d+/);
    assert.ok(body.extensions.includes('binary_tensor_data'));

    const refused = await fetch(`${url}/v2`);
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer');
    const refusal = (await refused.json()) as { error: unknown };
    assert.equal(typeof refusal.error, 'string', 'V2 errors are {"error": "…"}');
    for (const route of ['/v2/models/tiny', '/v2/models/tiny/ready']) {
      assert.equal((await fetch(`${url}${route}`)).status, 401, route);
    }
    assert.equal((await fetch(`${url}/v2/models/tiny/infer`, { method: 'POST', body: '{}' })).status, 401);

    assert.deepEqual(await (await fetch(`${url}/v2/health/live`)).json(), { live: true });
    const ready = await fetch(`${url}/v2/health/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { ready: true });

    const model = await fetch(`${url}/v2/models/tiny`, { headers: AUTH });
    assert.equal(model.status, 200);
    assert.deepEqual(await model.json(), {
      name: 'tiny',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'image', datatype: 'FP32', shape: [-1, 3, 64, 64] }],
      outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 8] }],
    });
    const versioned = await fetch(`${url}/v2/models/tiny/versions/1/ready`, { headers: AUTH });
    assert.deepEqual(await versioned.json(), { name: 'tiny', ready: true });

    const multiModel = (await (await fetch(`${multiUrl}/v2/models/adder`, { headers: AUTH })).json()) as {
      inputs: Array<{ name: string; datatype: string; shape: number[] }>;
      outputs: Array<{ name: string; datatype: string; shape: number[] }>;
    };
    assert.deepEqual(
      multiModel.inputs.map((i) => `${i.name}:${i.datatype}[${i.shape.join(',')}]`),
      ['a:INT64[-1,3]', 'b:FP32[-1,3]', 'h:FP16[-1,2]', 'u:UINT8[-1,2]', 'i:INT32[-1,2]', 'flag:BOOL[-1,2]'],
    );
    assert.deepEqual(
      multiModel.outputs.map((o) => `${o.name}:${o.datatype}[${o.shape.join(',')}]`),
      ['sum:FP32[-1,3]', 'neg:INT64[-1,3]', 'square:FP16[-1,2]', 'isum:INT32[-1,2]', 'not:BOOL[-1,2]'],
    );
  });

  test('the classifier: JSON and binary infer answer exactly what onnxruntime answers on the same tensor', async () => {
    const random = seededRandom(13);
    const image = Float32Array.from({ length: 2 * 3 * 64 * 64 }, () => random() * 2 - 1);
    const direct = await classifier.runFeeds({ image: new ort.Tensor('float32', image, [2, 3, 64, 64]) });
    const expected = direct.probabilities!.data as Float32Array;

    const json = await fetch(`${url}/v2/models/tiny/infer`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'r1',
        inputs: [{ name: 'image', shape: [2, 3, 64, 64], datatype: 'FP32', data: [...image] }],
      }),
    });
    assert.equal(json.status, 200);
    assert.equal(json.headers.get('inference-header-content-length'), null);
    const answer = (await json.json()) as V2Response;
    assert.equal(answer.model_name, 'tiny');
    assert.equal(answer.id, 'r1');
    assert.equal(answer.outputs.length, 1);
    assert.deepEqual(
      { ...answer.outputs[0], data: undefined },
      { name: 'probabilities', datatype: 'FP32', shape: [2, 8], data: undefined },
    );
    assert.deepEqual(Float32Array.from(answer.outputs[0]!.data as number[]), expected, 'exact in JSON');

    const { body, headers } = binaryBody(
      {
        inputs: [
          {
            name: 'image',
            shape: [2, 3, 64, 64],
            datatype: 'FP32',
            parameters: { binary_data_size: image.byteLength },
          },
        ],
        parameters: { binary_data_output: true },
      },
      [bytes(image)],
    );
    const binary = await fetch(`${url}/v2/models/tiny/infer`, { method: 'POST', headers, body });
    assert.equal(binary.status, 200);
    const { header, blobs } = await readBinary(binary);
    assert.deepEqual(header.outputs[0]?.parameters, { binary_data_size: 2 * 8 * 4 });
    assert.deepEqual(blobs.get('probabilities'), bytes(expected), 'exact in binary');
    // Each row is a distribution (the tiny model ends in Softmax): the answer is the model's, not zeros.
    assert.ok(Math.abs(expected.slice(0, 8).reduce((a, b) => a + b, 0) - 1) < 1e-5);
  });

  test('a six-input model that is not a classifier: every datatype in and out, JSON and binary', async () => {
    const a = BigInt64Array.from([1n, -2n, 2n ** 40n, 5n, 0n, -(2n ** 62n)]);
    const b = Float32Array.from([0.5, 0.25, -1.5, 1e-3, 7, 1]);
    const hValues = [1.5, -2, 0.1, 300];
    const h = Uint16Array.from(hValues, float16Bits);
    const u = Uint8Array.from([0, 255, 7, 128]);
    const i = Int32Array.from([-1, 1, 2 ** 31 - 1 - 7, -(2 ** 31)]);
    const flag = Uint8Array.from([1, 0, 0, 1]);
    const inputs = [
      { name: 'a', shape: [2, 3], datatype: 'INT64', data: a },
      { name: 'b', shape: [2, 3], datatype: 'FP32', data: b },
      { name: 'h', shape: [2, 2], datatype: 'FP16', data: h },
      { name: 'u', shape: [2, 2], datatype: 'UINT8', data: u },
      { name: 'i', shape: [2, 2], datatype: 'INT32', data: i },
      { name: 'flag', shape: [2, 2], datatype: 'BOOL', data: flag },
    ];
    // What the graph computes, worked out here.
    const sum = Float32Array.from(b, (v, k) => Math.fround(Number(a[k]!)) + v);
    const neg = BigInt64Array.from(a, (v) => -v);
    const square = Uint16Array.from(hValues, (v) => float16Bits(float16Value(float16Bits(v)) ** 2));
    const isum = Int32Array.from(i, (v, k) => v + u[k]!);
    const not = Uint8Array.from(flag, (v) => (v ? 0 : 1));
    const ortTypes: Record<string, ort.Tensor.Type> = {
      INT64: 'int64',
      FP32: 'float32',
      FP16: 'float16',
      UINT8: 'uint8',
      INT32: 'int32',
      BOOL: 'bool',
    };
    const direct = await multi.runFeeds(
      Object.fromEntries(inputs.map((t) => [t.name, ortTensor(ortTypes[t.datatype]!, t.data, t.shape)])),
    );
    const expected: Record<string, ArrayBufferView> = { sum, neg, square, isum, not };
    for (const [name, value] of Object.entries(expected)) {
      assert.deepEqual(bytes(direct[name]!.data as ArrayBufferView), bytes(value), `onnxruntime agrees on ${name}`);
    }

    // All binary (as the Triton client sends by default).
    const bin = binaryBody(
      {
        inputs: inputs.map(({ data, ...t }) => ({ ...t, parameters: { binary_data_size: data.byteLength } })),
        parameters: { binary_data_output: true },
      },
      inputs.map((t) => bytes(t.data)),
    );
    const binary = await fetch(`${multiUrl}/v2/models/adder/infer`, {
      method: 'POST',
      headers: bin.headers,
      body: bin.body,
    });
    assert.equal(binary.status, 200, await binary.clone().text());
    const { header, blobs } = await readBinary(binary);
    assert.deepEqual(
      header.outputs.map((o) => `${o.name}:${o.datatype}[${o.shape.join(',')}]`),
      ['sum:FP32[2,3]', 'neg:INT64[2,3]', 'square:FP16[2,2]', 'isum:INT32[2,2]', 'not:BOOL[2,2]'],
    );
    for (const [name, value] of Object.entries(expected)) assert.deepEqual(blobs.get(name), bytes(value), name);

    // All JSON, only two outputs asked for, one of them binary.
    const jsonInputs = [
      { name: 'a', shape: [2, 3], datatype: 'INT64', data: '@A@' },
      { name: 'b', shape: [2, 3], datatype: 'FP32', data: [...b] },
      { name: 'h', shape: [2, 2], datatype: 'FP16', data: hValues },
      { name: 'u', shape: [2, 2], datatype: 'UINT8', data: [...u] },
      { name: 'i', shape: [2, 2], datatype: 'INT32', data: [...i] },
      { name: 'flag', shape: [2, 2], datatype: 'BOOL', data: [...flag].map(Boolean) },
    ];
    const text = JSON.stringify({
      inputs: jsonInputs,
      outputs: [{ name: 'neg' }, { name: 'not', parameters: { binary_data: true } }],
    }).replace('"@A@"', `[${[...a].join(',')}]`);
    const mixed = await fetch(`${multiUrl}/v2/models/adder/infer`, { method: 'POST', headers: AUTH, body: text });
    assert.equal(mixed.status, 200);
    const out = await readBinary(mixed);
    assert.deepEqual(
      out.header.outputs.map((o) => o.name),
      ['neg', 'not'],
    );
    // INT64 stays exact in JSON: re-read the raw digits rather than through JavaScript numbers.
    const headerText = await (async () => {
      const again = await fetch(`${multiUrl}/v2/models/adder/infer`, { method: 'POST', headers: AUTH, body: text });
      const all = Buffer.from(await again.arrayBuffer());
      return all.subarray(0, Number(again.headers.get('inference-header-content-length'))).toString();
    })();
    assert.match(headerText, new RegExp(`"data":\\[${[...neg].join(',')}\\]`));
    assert.deepEqual(out.blobs.get('not'), bytes(not));
  });

  test('a model that is not a classifier has no /score (404), and /readyz is 200 without a digest', async () => {
    const res = await fetch(`${multiUrl}/score`, { method: 'POST', headers: AUTH, body: 'x' });
    assert.equal(res.status, 404);
    assert.match(
      ((await res.json()) as { error: { message: string } }).error.message,
      /not an image classifier.*\/v2\/models\/\{name\}\/infer/,
    );
    const ready = await fetch(`${multiUrl}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready' });
  });

  test('refusals: wrong model, input, datatype, shape, output, method, and size, each a V2 error', async () => {
    const infer = (body: unknown, target = 'adder') =>
      fetch(`${multiUrl}/v2/models/${target}/infer`, { method: 'POST', headers: AUTH, body: JSON.stringify(body) });
    const good = () => [
      { name: 'a', shape: [1, 3], datatype: 'INT64', data: [1, 2, 3] },
      { name: 'b', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] },
      { name: 'h', shape: [1, 2], datatype: 'FP16', data: [1, 2] },
      { name: 'u', shape: [1, 2], datatype: 'UINT8', data: [1, 2] },
      { name: 'i', shape: [1, 2], datatype: 'INT32', data: [1, 2] },
      { name: 'flag', shape: [1, 2], datatype: 'BOOL', data: [true, false] },
    ];
    const ok = await infer({ inputs: good() });
    assert.equal(ok.status, 200, await ok.clone().text());
    await ok.arrayBuffer();
    const cases: Array<[Promise<Response>, number, RegExp]> = [
      [infer({ inputs: good() }, 'other'), 404, /There is no model "other"; this server serves "adder"/],
      [fetch(`${multiUrl}/v2/models/adder/versions/2`, { headers: AUTH }), 404, /no version "2" of model "adder"/],
      [
        infer({ inputs: [...good(), { name: 'z', shape: [1], datatype: 'FP32', data: [1] }] }),
        400,
        /no input "z"; it takes "a", "b", "h"/,
      ],
      [infer({ inputs: good().slice(1) }), 400, /lacks input "a"/],
      [
        infer({ inputs: good().map((t) => (t.name === 'b' ? { ...t, datatype: 'FP64' } : t)) }),
        400,
        /Input "b" is FP64 but the model takes FP32/,
      ],
      [
        infer({ inputs: good().map((t) => (t.name === 'u' ? { ...t, shape: [2], data: [1, 2] } : t)) }),
        400,
        /Input "u" has shape \[2\] but the model takes \[-1, 2\]/,
      ],
      [
        // [2, 2] + [3, 2]: each fits [-1, 2], together they do not broadcast.
        infer({
          inputs: good().map((t) =>
            t.name === 'i'
              ? { ...t, shape: [3, 2], data: [1, 2, 3, 4, 5, 6] }
              : t.name === 'u'
                ? { ...t, shape: [2, 2], data: [1, 2, 3, 4] }
                : t,
          ),
        }),
        400,
        /could not run on these inputs/,
      ],
      [infer({ inputs: good(), outputs: [{ name: 'nope' }] }), 400, /no output "nope"; it has "sum", "neg"/],
      [
        infer({ inputs: good().map((t) => (t.name === 'a' ? { ...t, data: [1, 2] } : t)) }),
        400,
        /Input "a": data has 2 elements but its shape holds 3/,
      ],
      [
        fetch(`${multiUrl}/v2/models/adder/infer`, { headers: AUTH }),
        405,
        /GET .* is not supported; POST an inference request/,
      ],
      [
        fetch(`${multiUrl}/v2/models/adder/infer`, {
          method: 'POST',
          headers: AUTH,
          body: Buffer.alloc(LIMIT + 1, 32),
        }),
        413,
        /over 2000000 bytes/,
      ],
      [fetch(`${multiUrl}/v2/nope`, { headers: AUTH }), 404, /No route \/v2\/nope.*POST \/v2\/models\/\{name\}\/infer/],
      [
        fetch(`${multiUrl}/v2/models/adder/infer`, {
          method: 'POST',
          headers: { ...AUTH, 'content-encoding': 'br' },
          body: zlib.brotliCompressSync(JSON.stringify({ inputs: good() })),
        }),
        415,
        /Content-Encoding br is not supported; send the body uncompressed, gzip or deflate/,
      ],
      [
        // 2 kB of gzip that inflates past the limit: refused for its decoded size.
        fetch(`${multiUrl}/v2/models/adder/infer`, {
          method: 'POST',
          headers: { ...AUTH, 'content-encoding': 'gzip' },
          body: zlib.gzipSync(Buffer.alloc(LIMIT + 1, 32)),
        }),
        413,
        /decompresses to over 2000000 bytes/,
      ],
      [
        fetch(`${multiUrl}/v2/models/adder/infer`, {
          method: 'POST',
          headers: { ...AUTH, 'content-encoding': 'gzip' },
          body: zlib.gzipSync(JSON.stringify({ inputs: good() })).subarray(0, 20),
        }),
        400,
        /The body is not valid gzip/,
      ],
    ];
    for (const [pending, status, message] of cases) {
      const res = await pending;
      const body = (await res.json()) as { error: unknown };
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(typeof body.error, 'string', JSON.stringify(body));
      assert.match(body.error as string, message);
    }
    // Still serving after all that.
    assert.equal((await infer({ inputs: good() })).status, 200);
  });

  test('gzip and deflate bodies, JSON and binary, are answered as their uncompressed form is', async () => {
    const a = BigInt64Array.from([1n, 2n, 3n]);
    const inputs = [
      { name: 'a', shape: [1, 3], datatype: 'INT64', parameters: { binary_data_size: 24 } },
      { name: 'b', shape: [1, 3], datatype: 'FP32', data: [0.5, 0.25, -1] },
      { name: 'h', shape: [1, 2], datatype: 'FP16', data: [1.5, -2] },
      { name: 'u', shape: [1, 2], datatype: 'UINT8', data: [200, 7] },
      { name: 'i', shape: [1, 2], datatype: 'INT32', data: [-100, 3] },
      { name: 'flag', shape: [1, 2], datatype: 'BOOL', data: [true, false] },
    ];
    const header = Buffer.from(JSON.stringify({ inputs, outputs: [{ name: 'sum' }, { name: 'isum' }] }));
    const plain = Buffer.concat([header, Buffer.from(a.buffer)]);
    const binary = { ...AUTH, 'inference-header-content-length': String(header.length) };
    const answer = async (body: Buffer, encoding?: string) => {
      const res = await fetch(`${multiUrl}/v2/models/adder/infer`, {
        method: 'POST',
        headers: encoding ? { ...binary, 'content-encoding': encoding } : binary,
        body,
      });
      assert.equal(res.status, 200, await res.clone().text());
      return (await res.json()) as V2Response;
    };
    const expected = await answer(plain);
    assert.deepEqual(
      expected.outputs.map((o) => o.data),
      [
        [1.5, 2.25, 2],
        [100, 10],
      ],
    );
    assert.deepEqual(await answer(zlib.gzipSync(plain), 'gzip'), expected);
    assert.deepEqual(await answer(zlib.deflateSync(plain), 'deflate'), expected);
    assert.deepEqual(await answer(zlib.gzipSync(plain), 'identity, GZIP'), expected, 'codings are case-insensitive');
    assert.deepEqual(await answer(zlib.gzipSync(zlib.deflateSync(plain)), 'deflate, gzip'), expected, 'in order');
  });

  test('while the model loads: /v2/health/ready and model routes are 503, live is 200; then ready', async () => {
    let resolve!: (m: V2Model) => void;
    const loading = new Promise<V2Model>((r) => (resolve = r));
    const late = await listen({ v2Model: loading });
    try {
      assert.equal((await fetch(`${late.url}/v2/health/live`)).status, 200);
      const notReady = await fetch(`${late.url}/v2/health/ready`);
      assert.equal(notReady.status, 503);
      assert.deepEqual(await notReady.json(), { ready: false });
      const model = await fetch(`${late.url}/v2/models/adder/ready`, { headers: AUTH });
      assert.equal(model.status, 503);
      assert.match(((await model.json()) as { error: string }).error, /still loading/);
      resolve(multi);
      await loading;
      await new Promise((r) => setImmediate(r));
      assert.equal((await fetch(`${late.url}/v2/health/ready`)).status, 200);
      assert.equal((await fetch(`${late.url}/v2/models/adder/ready`, { headers: AUTH })).status, 200);
    } finally {
      await stop(late.server);
    }
  });

  test('with batching on, concurrent requests of equal shape run together on axis 0, each answered its own rows', async () => {
    const batched = await listen({
      v2Model: multi,
      batching: { enabled: true, maxBatchSize: 8, maxQueueDelayMicros: 100_000 },
    });
    try {
      /** A request of `rows` rows whose values all derive from `seed`, and the sums it must get back. */
      const make = (seed: number, rows: number) => {
        const a = Array.from({ length: rows * 3 }, (_, k) => seed * 100 + k);
        const b = Array.from({ length: rows * 3 }, (_, k) => seed + k / 4);
        const body = {
          inputs: [
            { name: 'a', shape: [rows, 3], datatype: 'INT64', data: a },
            { name: 'b', shape: [rows, 3], datatype: 'FP32', data: b },
            { name: 'h', shape: [rows, 2], datatype: 'FP16', data: Array(rows * 2).fill(seed % 8) },
            { name: 'u', shape: [rows, 2], datatype: 'UINT8', data: Array(rows * 2).fill(seed) },
            { name: 'i', shape: [rows, 2], datatype: 'INT32', data: Array(rows * 2).fill(-seed) },
            { name: 'flag', shape: [rows, 2], datatype: 'BOOL', data: Array(rows * 2).fill(seed % 2 === 0) },
          ],
          outputs: [{ name: 'sum' }, { name: 'isum' }, { name: 'square' }],
        };
        return { body, sum: a.map((v, k) => Math.fround(v + b[k]!)), rows };
      };
      const requests = [...Array.from({ length: 10 }, (_, k) => make(k + 1, 1)), make(20, 2), make(21, 2), make(22, 3)];
      const answers = await Promise.all(
        requests.map(async (r) => {
          const res = await fetch(`${batched.url}/v2/models/adder/infer`, {
            method: 'POST',
            headers: AUTH,
            body: JSON.stringify(r.body),
          });
          return { status: res.status, body: (await res.json()) as V2Response };
        }),
      );
      answers.forEach(({ status, body }, k) => {
        const r = requests[k]!;
        const seed = r.body.inputs[3]!.data[0] as number;
        assert.equal(status, 200, JSON.stringify(body));
        const [sum, isum, square] = body.outputs;
        assert.deepEqual(sum, { name: 'sum', datatype: 'FP32', shape: [r.rows, 3], data: r.sum }, `request ${k}`);
        assert.deepEqual(isum?.data, Array(r.rows * 2).fill(0), `request ${k}: u + i = seed - seed`);
        assert.deepEqual(square?.data, Array(r.rows * 2).fill((seed % 8) ** 2), `request ${k}`);
      });
      const metrics = new Map(
        (await (await fetch(`${batched.url}/metrics`)).text())
          .split('\n')
          .filter((l) => l && !l.startsWith('#'))
          .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]),
      );
      const calls = metrics.get('inferctl_server_batch_size_count')!;
      assert.equal(metrics.get('inferctl_server_batch_size_sum'), 10 + 2 + 2 + 3, 'every row inferred once');
      assert.ok(calls < requests.length, `${requests.length} requests ran in ${calls} inference calls`);
      assert.equal(metrics.get('inferctl_server_batch_size_bucket{le="8"}'), calls, 'no batch over maxBatchSize rows');
    } finally {
      await stop(batched.server);
    }
  });
});
