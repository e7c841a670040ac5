/**
 * The script front's own properties, with a Node HTTP server standing where the Python server listens (the
 * front is what is under test here; the real azureml-inference-server-http behind it is in
 * test/workflows/deploy-script.test.ts): the key checked before a byte of the body is read, the body limit
 * on the declared and the counted size, readiness, and answers forwarded as they are.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { createScriptFront } from '../../src/script/script-front';
import type { ScriptState } from '../../src/script/script-front';

const KEY = 'front-test-key';
const LIMIT = 1024;
/** A 4 MiB answer of varied bytes. */
const BIG = Buffer.from(Array.from({ length: 4 * 1024 * 1024 }, (_, i) => (i * 31 + (i >> 10)) & 255));

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** A raw request; `body` is written only after a 100 Continue when `expectContinue`. */
function request(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer; expectContinue?: boolean },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; raw: string[]; body: Buffer; continued: boolean }> {
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: opts.method ?? 'POST',
      path: opts.path ?? '/score',
      headers: { ...opts.headers, ...(opts.expectContinue ? { expect: '100-continue' } : {}) },
    });
    req.on('continue', () => {
      continued = true;
      req.end(opts.body);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          raw: res.rawHeaders,
          body: Buffer.concat(chunks),
          continued,
        }),
      );
    });
    req.on('error', reject);
    if (!opts.expectContinue) req.end(opts.body);
  });
}

describe('script front', () => {
  const seen: Array<{
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    bytes: number;
    body: Buffer;
  }> = [];
  const upstream = http.createServer((req, res) => {
    let bytes = 0;
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      body.push(c);
    });
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, bytes, body: Buffer.concat(body) });
      if (req.url === '/score?big') {
        // An answer in many writes, larger than any socket buffer: the front must forward every chunk in order.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG.length });
        const write = (from: number): void => {
          if (from >= BIG.length) return void res.end();
          if (res.write(BIG.subarray(from, from + 65_536))) write(from + 65_536);
          else res.once('drain', () => write(from + 65_536));
        };
        write(0);
        return;
      }
      res.writeHead(418, 'I Am A Script', [
        ['Content-Type', 'application/octet-stream'],
        ['X-Custom', 'kept'],
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
      ]);
      res.end(Buffer.from([0, 255, 1, 254]));
    });
  });
  const state: ScriptState = { ready: false };
  const front = createScriptFront({ apiKey: KEY, maxBodyBytes: LIMIT, state: () => state, onError: () => {} });
  let port: number;
  const auth = { authorization: `Bearer ${KEY}` };

  before(async () => {
    state.upstream = { port: await listen(upstream) };
    port = await listen(front);
  });
  after(() => {
    front.close();
    upstream.close();
  });

  test('before init() has finished: /readyz 503 loading, /score 503; once failed, the reason', async () => {
    const readyz = await request(port, { method: 'GET', path: '/readyz' });
    assert.equal(readyz.status, 503);
    assert.equal((JSON.parse(readyz.body.toString()) as { status: string }).status, 'loading');
    assert.equal((await request(port, { headers: auth, body: Buffer.from('x') })).status, 503);
    state.failed = 'init() raised: ValueError: x';
    const failed: unknown = JSON.parse((await request(port, { method: 'GET', path: '/readyz' })).body.toString());
    assert.deepEqual(failed, { status: 'failed', error: 'init() raised: ValueError: x' });
    delete state.failed;
    state.ready = true;
    assert.equal((await request(port, { method: 'GET', path: '/readyz' })).status, 200);
    assert.equal((await request(port, { method: 'GET', path: '/healthz' })).status, 200);
  });

  test('a request without the key is refused before its body is sent, also on Expect: 100-continue', async () => {
    const before = seen.length;
    const refused = await request(port, {
      body: Buffer.alloc(10),
      expectContinue: true,
      headers: { authorization: 'Bearer wrong' },
    });
    assert.equal(refused.status, 401);
    assert.equal(refused.continued, false, 'no 100 Continue for a request without the key');
    assert.equal(refused.headers['www-authenticate'], 'Bearer');
    const accepted = await request(port, { body: Buffer.alloc(10), expectContinue: true, headers: auth });
    assert.equal(accepted.continued, true);
    assert.equal(accepted.status, 418);
    assert.equal(seen.length, before + 1, 'only the request with the key reached the script');
  });

  test('the body limit holds on the declared size and on a chunked body', async () => {
    const before = seen.length;
    const declared = await request(port, {
      headers: { ...auth, 'content-length': String(LIMIT + 1) },
      body: Buffer.alloc(LIMIT + 1),
    });
    assert.equal(declared.status, 413);
    const chunked = await request(port, {
      headers: { ...auth, 'transfer-encoding': 'chunked' },
      body: Buffer.alloc(LIMIT * 4),
    });
    assert.equal(chunked.status, 413);
    assert.ok(
      seen.slice(before).every((s) => s.bytes <= LIMIT),
      'no more than the limit reached the script',
    );
  });

  test('every method and the query string are forwarded; the answer comes back as the script gave it; the key is not forwarded', async () => {
    const answer = await request(port, { method: 'GET', path: '/score?x=1', headers: { ...auth, 'x-request': 'r' } });
    assert.equal(answer.status, 418);
    assert.deepEqual([...answer.body], [0, 255, 1, 254]);
    assert.equal(answer.headers['x-custom'], 'kept');
    assert.deepEqual(answer.headers['set-cookie'], ['a=1', 'b=2']);
    const last = seen.at(-1)!;
    assert.equal(last.method, 'GET');
    assert.equal(last.url, '/score?x=1');
    assert.equal(last.headers['x-request'], 'r');
    assert.equal(last.headers.authorization, undefined, 'the deployment key never reaches the script');
    const swagger = await request(port, { method: 'GET', path: '/swagger.json', headers: auth });
    assert.equal(swagger.status, 418);
    assert.equal((await request(port, { method: 'GET', path: '/', headers: auth })).status, 404);
    const metrics = (await request(port, { method: 'GET', path: '/metrics' })).body.toString();
    assert.match(metrics, /^inferctl_server_scoring_requests_total\{code="418"\} \d+$/m);
    assert.match(metrics, /^inferctl_server_scoring_requests_total\{code="401"\} 1$/m);
  });

  test('a body sent in pieces and a 4 MiB answer in many writes pass byte for byte, in order', async () => {
    const pieces = Array.from({ length: 8 }, (_, i) => Buffer.alloc(100, i + 1));
    const sent = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/score', headers: auth }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      // Chunked, a piece per tick: the front sees several data events before the end.
      const next = (i: number): void => {
        if (i === pieces.length) return void req.end();
        req.write(pieces[i]);
        setTimeout(() => next(i + 1), 5);
      };
      next(0);
    });
    assert.equal(sent, 418);
    assert.deepEqual(seen.at(-1)!.body, Buffer.concat(pieces));

    // Read slowly, so that the front must hold the script's answer back rather than buffer it all.
    const answer = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/score?big', headers: auth });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          res.pause();
          setTimeout(() => res.resume(), 1);
        });
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(Buffer.alloc(3));
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.length, BIG.length);
    assert.ok(answer.body.equals(BIG), 'the answer arrives byte for byte');
  });

  test('a Python server that is gone (its socket removed) answers 502 script-unavailable, with the reason', async () => {
    const before = state.upstream;
    state.upstream = { socketPath: path.join(os.tmpdir(), `front-gone-${process.pid}.sock`) };
    try {
      const answer = await request(port, { headers: auth, body: Buffer.alloc(5) });
      assert.equal(answer.status, 502);
      const { error } = JSON.parse(answer.body.toString()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'script-unavailable');
      assert.match(error.message, /did not answer \(connect ENOENT/);
    } finally {
      state.upstream = before;
    }
  });

  test('over a Unix socket (how front-main reaches its Python server) the request and the answer pass the same', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'front-socket-'));
    const socketPath = path.join(dir, 'python.sock');
    const overSocket = http.createServer((req, res) => upstream.emit('request', req, res));
    await new Promise<void>((resolve) => overSocket.listen(socketPath, resolve));
    const before = state.upstream;
    state.upstream = { socketPath };
    try {
      const answer = await request(port, {
        path: '/score?y=2',
        headers: { ...auth, 'x-request': 's' },
        body: Buffer.alloc(7),
      });
      assert.equal(answer.status, 418);
      assert.equal(answer.raw[answer.raw.indexOf('X-Custom') + 1], 'kept');
      assert.deepEqual([...answer.body], [0, 255, 1, 254]);
      const last = seen.at(-1)!;
      assert.deepEqual([last.method, last.url, last.bytes, last.headers['x-request']], ['POST', '/score?y=2', 7, 's']);
      assert.equal(last.headers.authorization, undefined);
    } finally {
      state.upstream = before;
      await new Promise((resolve) => overSocket.close(resolve));
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
