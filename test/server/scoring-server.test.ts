/**
 * The scoring server over real HTTP on loopback: the key, the methods, the limits, bad bodies that
 * never crash it, readiness while the model loads, and handler bugs that stay 500s.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { makeColourJpeg } from '../../src/demo/sample-images';
import { seededRandom } from '../../src/demo/seeded-random';
import { buildTinyCnn } from '../../src/demo/tiny-cnn';
import { Classifier } from '../../src/scoring/classifier';
import { DEFAULT_BATCHING } from '../../src/server/dynamic-batcher';
import { createScoringServer } from '../../src/server/scoring-server';
import type { ScoringServerOptions } from '../../src/server/scoring-server';
import { buildSlowCnn } from '../helpers/slow-model';

const KEY = 'test-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };
const LIMIT = 200_000;

interface ErrorBody {
  error: { code: string; message: string };
}

async function listen(opts: Partial<ScoringServerOptions> & Pick<ScoringServerOptions, 'classifier'>) {
  const server = createScoringServer({ apiKey: KEY, topK: 3, maxBodyBytes: LIMIT, ...opts });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function stop(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** Sends raw bytes on a fresh connection; resolves with everything the server wrote until it closed. */
function raw(url: string, ...writes: Array<string | Buffer>): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1', () => {
      for (const w of writes) socket.write(w);
    });
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer; got ${JSON.stringify(data)}`)));
  });
}

describe('scoring server', () => {
  let dir: string;
  let classifier: Classifier;
  let server: http.Server;
  let url: string;
  const errors: unknown[] = [];

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-server-'));
    const modelPath = path.join(dir, 'tiny.onnx');
    await fs.writeFile(modelPath, buildTinyCnn());
    classifier = await Classifier.load(modelPath, { intraOpNumThreads: 1 });
    ({ server, url } = await listen({ classifier, onError: (err) => errors.push(err) }));
  });
  after(async () => {
    if (server) await stop(server);
    await classifier?.release();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const post = (body: Uint8Array | string, headers: Record<string, string> = AUTH) =>
    fetch(`${url}/score`, { method: 'POST', body, headers });

  test('POST /score with the key answers the top-k labels and the model digest', async () => {
    const res = await post(await makeColourJpeg('magenta'));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await res.json()) as { predictions: Array<{ label: string; score: number }>; modelDigest: string };
    assert.deepEqual(Object.keys(body), ['predictions', 'modelDigest']);
    assert.equal(body.predictions.length, 3);
    assert.equal(body.predictions[0]?.label, 'magenta');
    assert.ok(body.predictions[0].score > 0.9);
    assert.ok(body.predictions[0].score >= body.predictions[1]!.score);
    assert.equal(body.modelDigest, classifier.info.digest);
  });

  test('without the key, or with a wrong one, it is 401 with WWW-Authenticate: Bearer', async () => {
    const image = await makeColourJpeg('red');
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: `Basic ${KEY}` },
      { authorization: `Bearer ${KEY}x` },
      { authorization: `Bearer ${KEY.slice(0, -1)}` },
      { authorization: 'Bearer ' },
      { authorization: `${KEY}` },
    ];
    for (const headers of attempts) {
      const res = await post(image, headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.equal(((await res.json()) as ErrorBody).error.code, 'unauthorized');
    }
    const lowercase = await post(image, { authorization: `bearer ${KEY}` });
    assert.equal(lowercase.status, 200, 'the scheme is case-insensitive');
    await lowercase.arrayBuffer();
  });

  test('GET /score is 405 with Allow: POST; unknown paths 404; /healthz and /readyz 200', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await fetch(`${url}/score`, { method, headers: AUTH });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get('allow'), 'POST');
      assert.equal(((await res.json()) as ErrorBody).error.code, 'method-not-allowed');
    }
    for (const route of ['/nope', '/score/extra', '/']) {
      const res = await fetch(`${url}${route}`);
      assert.equal(res.status, 404, route);
      assert.equal(((await res.json()) as ErrorBody).error.code, 'not-found');
    }
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', modelDigest: classifier.info.digest });
  });

  test('over the limit is 413, declared or streamed, without reading the rest', async () => {
    for (const size of [LIMIT + 1, 20_000_000]) {
      const declared = await post(Buffer.alloc(size, 1));
      assert.equal(declared.status, 413, `${size} bytes`);
      assert.equal(((await declared.json()) as ErrorBody).error.code, 'body-too-large');
    }
    const atLimit = await post(Buffer.concat([await makeColourJpeg('red'), Buffer.alloc(LIMIT)]).subarray(0, LIMIT));
    assert.equal(atLimit.status, 200, 'exactly at the limit is fine (trailing bytes after a JPEG are ignored)');
    await atLimit.arrayBuffer();

    // No Content-Length: the server counts as it reads, stops at the limit, and closes the connection.
    const sockets: net.Socket[] = [];
    const track = (socket: net.Socket) => sockets.push(socket);
    server.on('connection', track);
    const total = 50_000_000;
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= total) return controller.close();
        sent += 65_536;
        controller.enqueue(new Uint8Array(65_536));
      },
    });
    try {
      const outcome = await fetch(`${url}/score`, {
        method: 'POST',
        body: stream,
        headers: AUTH,
        duplex: 'half',
      }).then(
        async (res) => `${res.status} ${((await res.json()) as ErrorBody).error.code}`,
        (err: unknown) => `fetch failed: ${String(err)}`,
      );
      assert.equal(outcome, '413 body-too-large');
      const read = sockets.reduce((sum, s) => sum + s.bytesRead, 0);
      assert.ok(read < 10 * LIMIT, `the server read ${read} of the ${total} bytes offered`);
    } finally {
      server.off('connection', track);
    }
  });

  test('the key and the declared size are checked before the body is sent (Expect: 100-continue)', async () => {
    const head = (auth: string, length: number) =>
      `POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;
    const wrongKey = await raw(url, head('Bearer nope', 1000));
    assert.match(wrongKey, /^HTTP\/1\.1 401 /);
    assert.doesNotMatch(wrongKey, /100 Continue/);
    const tooBig = await raw(url, head(`Bearer ${KEY}`, 50_000_000));
    assert.match(tooBig, /^HTTP\/1\.1 413 /);

    const image = await makeColourJpeg('yellow');
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(new URL(url).port), '127.0.0.1', () =>
        socket.write(head(`Bearer ${KEY}`, image.length)),
      );
      let data = '';
      socket.on('data', (d: Buffer) => {
        if (data === '' && d.toString().startsWith('HTTP/1.1 100 Continue')) socket.write(image);
        data += d.toString();
      });
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.match(answer, /"label":"yellow"/);
  });

  test('non-images are 415, empty and corrupt images 400, random bytes 4xx, and it keeps serving', async () => {
    const text = await post('hello, not an image');
    assert.equal(text.status, 415);
    const textBody = (await text.json()) as ErrorBody;
    assert.equal(textBody.error.code, 'unsupported-format');
    assert.match(textBody.error.message, /JPEG, PNG or WebP/);

    const jpeg = await makeColourJpeg('green');
    const truncated = await post(jpeg.subarray(0, 200));
    assert.equal(truncated.status, 400);
    assert.equal(((await truncated.json()) as ErrorBody).error.code, 'corrupt');
    const empty = await post(Buffer.alloc(0));
    assert.equal(empty.status, 400);
    assert.equal(((await empty.json()) as ErrorBody).error.code, 'empty');

    const random = seededRandom(42);
    for (let i = 0; i < 30; i++) {
      const noise = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 5000) }, () => random() * 256));
      if (i % 3 === 0) jpeg.copy(noise, 0, 0, Math.min(noise.length, 100)); // a JPEG header, then garbage
      const res = await post(noise);
      assert.ok(res.status === 400 || res.status === 415, `random body ${i}: ${res.status}`);
      assert.match(((await res.json()) as ErrorBody).error.code, /^(unsupported-format|corrupt|decode-failed)$/);
    }
    const afterwards = await post(jpeg);
    assert.equal(afterwards.status, 200, 'still serving after bad bodies');
    await afterwards.arrayBuffer();
    assert.deepEqual(errors, [], 'bad bodies are client errors, not server errors');
  });

  test('a malformed request is answered 400 and does not take the server down', async () => {
    assert.match(await raw(url, 'NOT HTTP AT ALL\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(await raw(url, `GET /healthz HTTP/1.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), /^HTTP\/1\.1 431/);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
  });

  test('slow clients are cut off at the header and request deadlines', async () => {
    const slow = await listen({ classifier, headersTimeoutMs: 300, requestTimeoutMs: 600 });
    try {
      const started = Date.now();
      const [headers, body] = await Promise.all([
        raw(slow.url, 'POST /score HTTP/1.1\r\nHost: x\r\n'), // never finishes its headers
        raw(
          slow.url,
          `POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: 1000\r\n\r\nabc`,
        ),
      ]);
      assert.match(headers, /^HTTP\/1\.1 408 /);
      assert.match(body, /^HTTP\/1\.1 408 /);
      assert.ok(Date.now() - started < 3000, `cut off after ${Date.now() - started} ms`);
    } finally {
      await stop(slow.server);
    }
  });

  test('a handler failure is a JSON 500, reported, and the server keeps serving', async () => {
    const reported: unknown[] = [];
    const broken = Object.create(classifier) as Classifier;
    broken.classify = () => Promise.reject(new Error('inference exploded'));
    const other = await listen({ classifier: broken, onError: (err) => reported.push(err) });
    try {
      const post500 = await fetch(`${other.url}/score`, { method: 'POST', body: 'x', headers: AUTH });
      assert.equal(post500.status, 500);
      const body = (await post500.json()) as ErrorBody;
      assert.equal(body.error.code, 'internal');
      assert.doesNotMatch(body.error.message, /exploded/, 'internals are logged, not sent');
      assert.match(String(reported[0]), /inference exploded/);
      assert.equal((await fetch(`${other.url}/healthz`)).status, 200);
    } finally {
      await stop(other.server);
    }
  });

  test('while the model loads: /readyz and /score are 503; once loaded, 200', async () => {
    let resolve!: (c: Classifier) => void;
    const loading = new Promise<Classifier>((r) => (resolve = r));
    const late = await listen({ classifier: loading });
    try {
      const notReady = await fetch(`${late.url}/readyz`);
      assert.equal(notReady.status, 503);
      assert.deepEqual(await notReady.json(), { status: 'loading' });
      const early = await fetch(`${late.url}/score`, { method: 'POST', body: 'x', headers: AUTH });
      assert.equal(early.status, 503);
      assert.equal(early.headers.get('retry-after'), '1');
      assert.equal(((await early.json()) as ErrorBody).error.code, 'not-ready');
      assert.equal((await fetch(`${late.url}/healthz`)).status, 200, 'alive while loading');
      resolve(classifier);
      await loading;
      assert.equal((await fetch(`${late.url}/readyz`)).status, 200);
    } finally {
      await stop(late.server);
    }
  });

  test('a model that fails to load leaves /readyz at 503 with the reason', async () => {
    const reported: unknown[] = [];
    const failed = await listen({
      classifier: Promise.reject(new Error('Model file not found: x.onnx')),
      onError: (err) => reported.push(err),
    });
    try {
      const res = await fetch(`${failed.url}/readyz`);
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), { status: 'failed', error: 'Model file not found: x.onnx' });
      assert.equal(reported.length, 1);
    } finally {
      await stop(failed.server);
    }
  });

  test('refuses to start without a key', () => {
    assert.throws(() => createScoringServer({ classifier, apiKey: '', topK: 1, maxBodyBytes: 1 }), /non-empty apiKey/);
  });

  for (const batching of [DEFAULT_BATCHING, undefined]) {
    test(`/healthz is answered while an inference is in flight (batching ${batching ? 'on' : 'off'})`, async () => {
      const slowPath = path.join(dir, 'slow.onnx');
      await fs.writeFile(slowPath, buildSlowCnn());
      const slow = await Classifier.load(slowPath, { intraOpNumThreads: 1 });
      let inferring!: () => void;
      const started = new Promise<void>((resolve) => (inferring = resolve));
      let inferenceEnded = Infinity;
      const infer = slow.infer.bind(slow);
      slow.infer = async (batch) => {
        inferring();
        try {
          return await infer(batch);
        } finally {
          inferenceEnded = performance.now();
        }
      };
      const live = await listen({ classifier: slow, ...(batching ? { batching } : {}) });
      try {
        const scored = fetch(`${live.url}/score`, { method: 'POST', body: await makeColourJpeg('red'), headers: AUTH });
        await started;
        const health = await fetch(`${live.url}/healthz`);
        const answeredAt = performance.now();
        assert.equal(health.status, 200);
        assert.equal((await scored).status, 200);
        assert.ok(
          answeredAt < inferenceEnded,
          `/healthz answered ${Math.round(inferenceEnded - answeredAt)} ms before the inference ended`,
        );
      } finally {
        await stop(live.server);
        await slow.release();
      }
    });
  }
});
