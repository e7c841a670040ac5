/**
 * The scoring server over real HTTP on loopback: the key, the methods, the limits, bad bodies that
 * never crash it, and the replica process entry that the local target starts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { makeColourJpeg } from '../../src/images/sample-images';
import { buildTinyCnn } from '../../src/model/tiny-cnn';
import { Classifier } from '../../src/scoring/classifier';
import { createScoringServer } from '../../src/server/scoring-server';

const KEY = 'test-key-0123456789';
const SERVER_MAIN = path.resolve(__dirname, '..', '..', 'src', 'server', 'main.js');

describe('scoring server', () => {
  let dir: string;
  let modelPath: string;
  let url: string;
  let close: () => Promise<void>;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-server-'));
    modelPath = path.join(dir, 'tiny.onnx');
    await fs.writeFile(modelPath, buildTinyCnn());
    const classifier = await Classifier.load(modelPath);
    const server = createScoringServer({ classifier, apiKey: KEY, topK: 3, maxBodyBytes: 200_000 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await classifier.release();
    };
  });
  after(async () => {
    await close?.();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const post = (body: Uint8Array | string, headers: Record<string, string> = { authorization: `Bearer ${KEY}` }) =>
    fetch(`${url}/score`, { method: 'POST', body, headers });

  test('POST /score with the key answers the top-k labels', async () => {
    const res = await post(await makeColourJpeg('magenta'));
    assert.equal(res.status, 200);
    const body = (await res.json()) as { predictions: Array<{ label: string; score: number }>; modelDigest: string };
    assert.equal(body.predictions.length, 3);
    assert.equal(body.predictions[0]?.label, 'magenta');
    assert.match(body.modelDigest, /^sha256:/);
  });

  test('without the key, or with a wrong one, it is 401', async () => {
    const image = await makeColourJpeg('red');
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: `Basic ${KEY}` },
      { authorization: `Bearer ${KEY}x` },
    ];
    for (const headers of attempts) {
      const res = await post(image, headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      await res.arrayBuffer();
    }
  });

  test('GET /score is 405, unknown paths 404, health and readiness answer', async () => {
    const get = await fetch(`${url}/score`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    await get.arrayBuffer();
    const missing = await fetch(`${url}/nope`);
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { status: string }).status, 'ready');
  });

  test('bodies over the limit are 413, non-images 415, corrupt images 400, and it keeps serving', async () => {
    const big = await post(Buffer.alloc(300_000, 1));
    assert.equal(big.status, 413);
    await big.arrayBuffer();
    const text = await post('hello, not an image');
    assert.equal(text.status, 415);
    assert.equal(((await text.json()) as { error: { code: string } }).error.code, 'unsupported-format');
    const jpeg = await makeColourJpeg('green');
    const truncated = await post(jpeg.subarray(0, 200));
    assert.equal(truncated.status, 400);
    await truncated.arrayBuffer();
    const empty = await post(Buffer.alloc(0));
    assert.equal(empty.status, 400);
    await empty.arrayBuffer();
    for (let i = 0; i < 20; i++) {
      const noise = Buffer.from(Array.from({ length: 1000 + i * 37 }, (_, j) => (j * (i + 3) * 2654435761) % 256));
      const res = await post(noise);
      assert.ok(res.status >= 400 && res.status < 500, `random body ${i}: ${res.status}`);
      await res.arrayBuffer();
    }
    const after = await post(jpeg);
    assert.equal(after.status, 200, 'still serving after bad bodies');
    await after.arrayBuffer();
  });

  test('a malformed request line is answered 400 and does not take the server down', async () => {
    const { port } = new URL(url);
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let data = '';
      socket.on('data', (d) => (data += d.toString()));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
  });

  test('the replica process writes its ready file, answers, and exits cleanly on SIGTERM', async () => {
    const keyFile = path.join(dir, 'key');
    await fs.writeFile(keyFile, KEY, { mode: 0o600 });
    const readyFile = path.join(dir, 'ready.json');
    const child = spawn(
      process.execPath,
      [SERVER_MAIN, '--model', modelPath, '--api-key-file', keyFile, '--ready-file', readyFile],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let ready: { pid: number; url: string } | undefined;
    for (let i = 0; i < 200 && !ready; i++) {
      ready = await fs.readFile(readyFile, 'utf8').then(
        (t) => JSON.parse(t) as { pid: number; url: string },
        () => undefined,
      );
      if (!ready) await delay(50);
    }
    assert.ok(ready, 'ready file written');
    assert.equal(ready.pid, child.pid);
    const res = await fetch(`${ready.url}/score`, {
      method: 'POST',
      body: await makeColourJpeg('cyan'),
      headers: { authorization: `Bearer ${KEY}` },
    });
    assert.equal(((await res.json()) as { predictions: Array<{ label: string }> }).predictions[0]?.label, 'cyan');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  test('the replica process refuses a key file others can read, and a model it cannot load', async () => {
    const keyFile = path.join(dir, 'open-key');
    await fs.writeFile(keyFile, KEY, { mode: 0o644 });
    await fs.chmod(keyFile, 0o644);
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [SERVER_MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.once('exit', (code) => resolve({ code, stderr }));
      });
    const open = await run(['--model', modelPath, '--api-key-file', keyFile]);
    assert.equal(open.code, 1);
    assert.match(open.stderr, /readable by others; chmod 600/);
    await fs.chmod(keyFile, 0o600);
    const bad = await run(['--model', path.join(dir, 'nope.onnx'), '--api-key-file', keyFile]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cannot load the model: Model file not found/);
  });
});
