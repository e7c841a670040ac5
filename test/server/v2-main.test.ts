/**
 * The replica process with --v2-only, spawned for real: any ONNX model served on the /v2 routes under
 * --model-name, /score 404, the ready file's digest, a clean exit; and a file onnxruntime cannot read
 * failing at startup in one line.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { buildMultiInputModel } from '../inference-protocol/fixtures';

const KEY = 'v2-main-key';
const AUTH = { authorization: `Bearer ${KEY}` };
const SERVER_MAIN = path.resolve(__dirname, '..', '..', 'src', 'server', 'main.js');

describe('scoring server process with --v2-only', () => {
  let dir: string;
  let modelPath: string;
  let keyFile: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-v2-main-'));
    modelPath = path.join(dir, 'adder.onnx');
    await fs.writeFile(modelPath, buildMultiInputModel());
    keyFile = path.join(dir, 'key');
    await fs.writeFile(keyFile, `${KEY}\n`, { mode: 0o600 });
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  test('serves a model that is not a classifier on /v2 under --model-name, and exits 0 on SIGTERM', async () => {
    const readyFile = path.join(dir, 'ready.json');
    const args = ['--model', modelPath, '--api-key-file', keyFile, '--ready-file', readyFile];
    const child = spawn(process.execPath, [SERVER_MAIN, ...args, '--v2-only', '--model-name', 'sums'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let ready: { url: string; modelDigest: string } | undefined;
      for (let i = 0; i < 200 && !ready && child.exitCode === null; i++) {
        ready = await fs.readFile(readyFile, 'utf8').then(
          (t) => JSON.parse(t) as { url: string; modelDigest: string },
          () => undefined,
        );
        if (!ready) await delay(50);
      }
      assert.ok(ready, `ready file written (stderr: ${stderr})`);
      const digest = crypto
        .createHash('sha256')
        .update(await fs.readFile(modelPath))
        .digest('hex');
      assert.equal(ready.modelDigest, `sha256:${digest}`);

      assert.equal((await fetch(`${ready.url}/readyz`)).status, 200);
      assert.equal((await fetch(`${ready.url}/v2/health/ready`)).status, 200);
      const meta = (await (await fetch(`${ready.url}/v2/models/sums`, { headers: AUTH })).json()) as { name: string };
      assert.equal(meta.name, 'sums');
      assert.equal((await fetch(`${ready.url}/v2/models/adder`, { headers: AUTH })).status, 404, 'named by the flag');
      const score = await fetch(`${ready.url}/score`, { method: 'POST', headers: AUTH, body: 'x' });
      assert.equal(score.status, 404);
      await score.arrayBuffer();

      const infer = await fetch(`${ready.url}/v2/models/sums/infer`, {
        method: 'POST',
        headers: AUTH,
        body: JSON.stringify({
          inputs: [
            { name: 'a', shape: [1, 3], datatype: 'INT64', data: [1, 2, 3] },
            { name: 'b', shape: [1, 3], datatype: 'FP32', data: [0.5, 0.5, 0.5] },
            { name: 'h', shape: [1, 2], datatype: 'FP16', data: [3, -3] },
            { name: 'u', shape: [1, 2], datatype: 'UINT8', data: [1, 2] },
            { name: 'i', shape: [1, 2], datatype: 'INT32', data: [10, 20] },
            { name: 'flag', shape: [1, 2], datatype: 'BOOL', data: [true, false] },
          ],
        }),
      });
      const body = (await infer.json()) as { outputs: Array<{ name: string; data: unknown[] }> };
      assert.equal(infer.status, 200, JSON.stringify(body));
      assert.deepEqual(Object.fromEntries(body.outputs.map((o) => [o.name, o.data])), {
        sum: [1.5, 2.5, 3.5],
        neg: [-1, -2, -3],
        square: [9, 9],
        isum: [11, 22],
        not: [false, true],
      });

      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.match(stdout, /scoring server ready on .*V2 only/);
      assert.equal(stderr, '', 'nothing on stderr');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a file onnxruntime cannot load is one line on stderr and exit code 1', async () => {
    const bad = path.join(dir, 'bad.onnx');
    await fs.writeFile(bad, 'not a model');
    const child = spawn(process.execPath, [SERVER_MAIN, '--model', bad, '--api-key-file', keyFile, '--v2-only'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 1);
    assert.match(stderr, /^scoring server: cannot load the model: onnxruntime cannot load .*bad\.onnx[^\n]*\n$/);
  });
});
