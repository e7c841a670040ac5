/** The replica process entry, spawned for real: ready file, answers, clean exit, clear startup failures. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { makeColourJpeg } from '../../src/demo/sample-images';
import { buildTinyCnn } from '../../src/demo/tiny-cnn';
import { buildSlowCnn } from '../helpers/slow-model';
import { SERVER_MAIN, runServerMain } from '../helpers/server-main';

const KEY = 'main-test-key';

interface ReadyFile {
  pid: number;
  port: number;
  url: string;
  modelDigest: string;
}

describe('scoring server process (main.js)', () => {
  let dir: string;
  let modelPath: string;
  let keyFile: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-main-'));
    modelPath = path.join(dir, 'tiny.onnx');
    await fs.writeFile(modelPath, buildTinyCnn());
    keyFile = path.join(dir, 'key');
    await fs.writeFile(keyFile, `${KEY}\n`, { mode: 0o600 });
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  /** main.js started for real, once its ready file is there (its stderr gathered, its exit awaited). */
  async function startServer(model: string, extra: string[] = []) {
    const readyFile = path.join(dir, `ready-${path.basename(model)}.json`);
    await fs.rm(readyFile, { force: true });
    const child = spawn(
      process.execPath,
      [SERVER_MAIN, '--model', model, '--api-key-file', keyFile, '--ready-file', readyFile, ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out = { stderr: '' };
    child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    let ready: ReadyFile | undefined;
    for (let i = 0; i < 200 && !ready && child.exitCode === null; i++) {
      ready = await fs.readFile(readyFile, 'utf8').then(
        (t) => JSON.parse(t) as ReadyFile,
        () => undefined,
      );
      if (!ready) await delay(50);
    }
    if (!ready) child.kill('SIGKILL');
    assert.ok(ready, `ready file written (stderr: ${out.stderr})`);
    return { child, ready, out, exited };
  }

  test('writes its ready file, answers with the key, and exits 0 on SIGTERM', async () => {
    const { child, ready, out, exited } = await startServer(modelPath, ['--top-k', '2']);
    try {
      assert.equal(ready.pid, child.pid);
      assert.equal(ready.url, `http://127.0.0.1:${ready.port}`);
      assert.match(ready.modelDigest, /^sha256:[0-9a-f]{64}$/);
      assert.equal((await fetch(`${ready.url}/readyz`)).status, 200);

      const res = await fetch(`${ready.url}/score`, {
        method: 'POST',
        body: await makeColourJpeg('cyan'),
        headers: { authorization: `Bearer ${KEY}` },
      });
      const body = (await res.json()) as { predictions: Array<{ label: string }>; modelDigest: string };
      assert.equal(res.status, 200);
      assert.equal(body.predictions.length, 2, '--top-k 2');
      assert.equal(body.predictions[0]?.label, 'cyan');
      assert.equal(body.modelDigest, ready.modelDigest);
      assert.equal((await fetch(`${ready.url}/score`, { method: 'POST', body: 'x' })).status, 401);

      child.kill('SIGTERM');
      assert.deepEqual(await exited, { code: 0, signal: null });
      assert.equal(out.stderr, '', 'nothing on stderr');
      await assert.rejects(fetch(`${ready.url}/healthz`), 'no longer listening');
    } finally {
      child.kill('SIGKILL');
    }
  });

  /**
   * A replica on a slow model (`layers` convolutions: 200 take about 2.5 s of CPU) with one POST /score in
   * its inference: the request seen in flight (read on a connection of its own each time: a keep-alive one
   * left open would hold the server's close back), then the replica's CPU 150 ms on (decoding a 64x64 JPEG
   * costs about a millisecond, so the inference is running), however loaded the machine is.
   */
  async function replicaInInference(layers: number) {
    const slowPath = path.join(dir, `slow-${layers}.onnx`);
    await fs.writeFile(slowPath, buildSlowCnn({ layers }));
    const server = await startServer(slowPath, ['--no-batching']);
    const { child, ready } = server;
    const client = new AbortController();
    const answer = fetch(`${ready.url}/score`, {
      method: 'POST',
      body: await makeColourJpeg('red'),
      headers: { authorization: `Bearer ${KEY}` },
      signal: client.signal,
    }).catch((err: unknown) => err as Error);
    const inFlight = () =>
      new Promise<boolean>((resolve, reject) =>
        http
          .get(`${ready.url}/metrics`, { agent: false }, (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve(/^inferctl_server_scoring_in_flight 1$/m.test(text)));
          })
          .on('error', reject),
      );
    const cpuMs = async () => {
      const stat = await fs.readFile(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 10 ms ticks
    };
    try {
      for (let i = 0; i < 1000 && !(await inFlight()); i++) await delay(20);
      assert.ok(await inFlight(), 'the request is in the server');
      const seen = await cpuMs();
      for (let i = 0; i < 1500 && (await cpuMs()) - seen < 150; i++) await delay(20);
      assert.ok((await cpuMs()) - seen >= 150, 'the request is in inference');
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    return { ...server, client, answer };
  }

  test('SIGTERM while an abandoned request is still in inference: exits 0 once it is done, nothing on stderr', async () => {
    const { child, out, exited, client, answer } = await replicaInInference(200);
    try {
      // Its client leaves, then the server is told to stop: the server closes at once (no connection left),
      // its session only once that run has answered, into nothing. Closing it mid-run aborted the process.
      client.abort();
      assert.equal(((await answer) as Error).name, 'AbortError');
      child.kill('SIGTERM');
      assert.deepEqual(await exited, { code: 0, signal: null });
      assert.equal(out.stderr, '', 'no "Terminating worker thread" from a run cut off by the stop');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('SIGTERM while an inference outlasts the 5 s drain: the connection is closed at 5 s, the process exits 0 after the run', async () => {
    const { child, out, exited, answer } = await replicaInInference(1600); // about 20 s of CPU: well past the 5 s drain even on two fast cores
    try {
      const stopped = performance.now();
      child.kill('SIGTERM');
      const failed = await answer;
      const cut = performance.now() - stopped;
      assert.ok(failed instanceof Error, 'the client still waiting is cut off at the drain');
      assert.ok(cut >= 4_500, `not before the drain (${Math.round(cut)} ms)`);
      assert.deepEqual(await exited, { code: 0, signal: null });
      assert.equal(out.stderr, '', 'no abort from exiting mid-run');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('startup failures are one line on stderr and exit code 1', async () => {
    const openKey = path.join(dir, 'open-key');
    await fs.writeFile(openKey, KEY);
    await fs.chmod(openKey, 0o644);
    const emptyKey = path.join(dir, 'empty-key');
    await fs.writeFile(emptyKey, '\n', { mode: 0o600 });
    const notOnnx = path.join(dir, 'photo.onnx');
    await fs.writeFile(notOnnx, await makeColourJpeg('red'));

    const cases: Array<[string[], RegExp]> = [
      [['--model', modelPath], /--model and --api-key-file are required/],
      [['--model', modelPath, '--api-key-file', openKey], /readable by others \(mode 644\); chmod 600 it/],
      [['--model', modelPath, '--api-key-file', emptyKey], /is empty/],
      [['--model', modelPath, '--api-key-file', path.join(dir, 'nokey')], /cannot read the API key file/],
      [
        ['--model', path.join(dir, 'nope.onnx'), '--api-key-file', keyFile],
        /cannot load the model: Model file not found/,
      ],
      [['--model', notOnnx, '--api-key-file', keyFile], /cannot load the model: .*not a valid ONNX model/],
      [['--model', modelPath, '--api-key-file', keyFile, '--port', 'http'], /--port must be an integer/],
      [['--model', modelPath, '--api-key-file', keyFile, '--top-k', '0'], /--top-k must be an integer ≥ 1/],
      [['--model', modelPath, '--api-key-file', keyFile, '--bogus'], /Unknown option '--bogus'/],
    ];
    const results = await Promise.all(cases.map(([args]) => runServerMain(args)));
    results.forEach(({ code, stderr }, i) => {
      const [args, message] = cases[i]!;
      assert.equal(code, 1, args.join(' '));
      assert.match(stderr, message);
      assert.match(stderr, /^scoring server: [^\n]+\n$/, `one line: ${JSON.stringify(stderr)}`);
    });
  });
});
