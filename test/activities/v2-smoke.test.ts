/**
 * The V2 smoke query activity against a stub endpoint, in a MockActivityEnvironment: the request file is
 * POSTed to /v2/models/{name}/infer without the key (must be refused) and with it; JSON and binary answers
 * are decoded and compared with the expected outputs; every other outcome has its stable failure type, a
 * server error staying retryable.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';

import { createDeployActivities } from '../../activities/deploy';
import { encodeInferResponse } from '../../src/inference-protocol/tensors';
import { FailureType } from '../../src/shared/failure-types';
import type { V2SmokeResult, V2SmokeSpec } from '../../src/shared/deploy-types';
import type { DeploymentSpec } from '../../src/shared/target-types';
import { FakeTarget } from '../helpers/fake-target';

const spec: DeploymentSpec = {
  name: 'fake-v2',
  target: 'local',
  ownerId: 'deploy-fake-v2',
  modelPath: '/models/sums.onnx',
  replicas: 1,
  topK: 5,
  protocol: 'v2',
};
const apiKey = 'test-key-v2-51c0';
const REQUEST = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] });
const sum = (data: number[]) => ({
  name: 'sum',
  datatype: 'FP32' as const,
  shape: [1, 2],
  data: new Float32Array(data),
});
const flag = { name: 'flag', datatype: 'BOOL' as const, shape: [1, 2], data: new Uint8Array([1, 0]) };

function permanent(err: unknown, type: FailureType): ApplicationFailure {
  assert.ok(err instanceof ApplicationFailure, `an ApplicationFailure, got ${String(err)}`);
  assert.equal(err.type, type, err.message);
  assert.equal(err.nonRetryable, true, `${type} is not retried`);
  return err;
}

describe('smokeQueryV2 activity', () => {
  let server: http.Server;
  let endpoint: string;
  let dir: string;
  let smokeSpec: V2SmokeSpec;
  let reply: { status: number; body: Buffer; headers?: Record<string, string> };
  let unprotected: boolean;
  let requests: Array<{ url?: string; authorization?: string; contentType?: string; body: string }>;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-v2smoke-activity-'));
    const requestPath = path.join(dir, 'request.json');
    const expectPath = path.join(dir, 'expect.json');
    await fs.writeFile(requestPath, REQUEST);
    await fs.writeFile(
      expectPath,
      JSON.stringify({
        outputs: [
          { name: 'sum', data: [1.5, 2.5] },
          { name: 'flag', data: [true, false] },
        ],
      }),
    );
    smokeSpec = { requestPath, expectPath, tolerance: 1e-6 };
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const { authorization, 'content-type': contentType } = req.headers;
        requests.push({ url: req.url, authorization, contentType, body: Buffer.concat(chunks).toString() });
        if (!unprotected && authorization !== `Bearer ${apiKey}`) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"no key"}');
          return;
        }
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers }).end(reply.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await fs.rm(dir, { recursive: true, force: true });
  });

  function run(answer: typeof reply, opts: { unprotected?: boolean; smoke?: V2SmokeSpec } = {}) {
    requests = [];
    reply = answer;
    unprotected = opts.unprotected ?? false;
    const real = createDeployActivities({ targets: { local: new FakeTarget({ access: { endpoint, apiKey } }) } });
    const env = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
    const result: Promise<V2SmokeResult> = env.run(
      (s: DeploymentSpec, smoke: V2SmokeSpec) => real.smokeQueryV2(s, smoke),
      spec,
      opts.smoke ?? smokeSpec,
    );
    return result;
  }
  const json = (outputs: Parameters<typeof encodeInferResponse>[2]) => ({
    status: 200,
    body: encodeInferResponse('sums', undefined, outputs).body,
  });
  const rejection = (p: Promise<unknown>) =>
    p.then(
      () => assert.fail('the smoke query should fail'),
      (err: unknown) => err,
    );

  test('POSTs the request without the key (refused), then with it; a matching JSON answer passes', async () => {
    const result: V2SmokeResult = await run(
      json([
        { ...sum([1.5, 2.5]), binary: false },
        { ...flag, binary: false },
      ]),
    );
    assert.equal(result.modelName, 'sums');
    assert.deepEqual(result.outputs, [
      { name: 'sum', datatype: 'FP32', shape: [1, 2], maxDifference: 0 },
      { name: 'flag', datatype: 'BOOL', shape: [1, 2], maxDifference: 0 },
    ]);
    assert.equal(requests.length, 2);
    assert.deepEqual(
      requests.map((r) => [r.url, r.authorization, r.contentType, r.body]),
      [
        ['/v2/models/sums/infer', undefined, 'application/json', REQUEST],
        ['/v2/models/sums/infer', `Bearer ${apiKey}`, 'application/json', REQUEST],
      ],
    );
  });

  test('a binary answer (Inference-Header-Content-Length) is decoded and compared', async () => {
    const encoded = encodeInferResponse('sums', undefined, [
      { ...sum([1.5, 2.5000005]), binary: true },
      { ...flag, binary: true },
    ]);
    const result = await run({
      status: 200,
      body: encoded.body,
      headers: { 'inference-header-content-length': String(encoded.headerLength) },
    });
    assert.ok(result.outputs[0]!.maxDifference! > 0 && result.outputs[0]!.maxDifference! < 1e-6);
  });

  test('an answer that differs fails with SmokeQueryMismatch, naming the tensor and the difference', async () => {
    const err = await rejection(
      run(
        json([
          { ...sum([1.5, 3]), binary: false },
          { ...flag, binary: false },
        ]),
      ),
    );
    const failure = permanent(err, FailureType.SmokeQueryMismatch);
    assert.match(failure.message, /tolerance 0\.000001/);
    assert.match(failure.message, /output "sum" differs at \[0, 1\]: it answered 3, expected 2\.5 \(difference 0\.5/);
    assert.doesNotMatch(failure.message, /"flag"/);

    const missing = await rejection(run(json([{ ...sum([1.5, 2.5]), binary: false }])));
    assert.match(permanent(missing, FailureType.SmokeQueryMismatch).message, /output "flag" is missing/);
  });

  test('without expected outputs any well-formed answer passes', async () => {
    const result = await run(json([{ ...sum([7, 8]), binary: false }]), {
      smoke: { requestPath: smokeSpec.requestPath },
    });
    assert.deepEqual(result.outputs, [{ name: 'sum', datatype: 'FP32', shape: [1, 2] }]);
  });

  test('an endpoint that answers without the key fails with EndpointUnprotected, and never gets the key', async () => {
    const err = await rejection(run(json([]), { unprotected: true }));
    assert.match(permanent(err, FailureType.EndpointUnprotected).message, /without a key; it must refuse with 401/);
    assert.equal(requests.length, 1);
  });

  test('a refusal, or a malformed answer, fails with SmokeQueryFailed; a server error stays retryable', async () => {
    const refused = await rejection(run({ status: 400, body: Buffer.from('{"error":"Input \\"x\\" is FP64"}') }));
    assert.match(permanent(refused, FailureType.SmokeQueryFailed).message, /got 400 from .*\/infer: .*is FP64/);

    for (const body of [
      'not json',
      '{"outputs": 3}',
      '{"outputs":[{"name":"sum","datatype":"FP32","shape":[1,2],"data":[1]}]}',
    ]) {
      const malformed = await rejection(run({ status: 200, body: Buffer.from(body) }));
      assert.match(permanent(malformed, FailureType.SmokeQueryFailed).message, /not well formed/, body);
    }

    const unavailable = await rejection(run({ status: 503, body: Buffer.from('warming up') }));
    assert.ok(unavailable instanceof Error && !(unavailable instanceof ApplicationFailure), 'a 5xx is retried');
    assert.match(unavailable.message, /V2 smoke query got 503 .*warming up/);
  });
});
