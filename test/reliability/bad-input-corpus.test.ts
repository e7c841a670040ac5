/**
 * A generated corpus of malformed inputs, over a thousand of them: images (truncated at every few bytes,
 * zero-byte, wrong magic, random, absurd dimensions), HTTP bodies to a real replica process, model
 * files, and CLI arguments. Each must end in a clear, typed refusal (or a correct answer for the odd
 * formats we convert), never a crash; the replica must still serve afterwards. The counts go to the
 * run's reliability report (test-artifacts/reliability-report.json).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import sharp from 'sharp';

import { ImageError, ModelError } from '../../src/errors';
import { preprocessImage } from '../../src/preprocess/preprocess-image';
import { makeColourJpeg } from '../../src/demo/sample-images';
import { readModelInfo } from '../../src/model/model-info';
import { buildTinyCnn } from '../../src/demo/tiny-cnn';
import { recordReliability } from '../helpers/reliability';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SERVER_MAIN = path.join(ROOT, 'dist', 'src', 'server', 'main.js');
const BIN = path.join(ROOT, 'bin', 'inferctl.js');
const INFO = {
  width: 64,
  height: 64,
  scale: 1 / 255,
  mean: [0.5, 0.5, 0.5] as [number, number, number],
  std: [0.5, 0.5, 0.5] as [number, number, number],
};
const IMAGE_REASONS = new Set(['empty', 'unsupported-format', 'corrupt', 'too-large', 'decode-failed']);

/** A deterministic byte generator, so a failure can be reproduced. */
function bytes(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const report: Record<string, { tried: number; refusedCleanly: number; accepted: number }> = {};
/** Measured, not assumed: whether the replica process was still running after the HTTP corpus. */
let replicaSurvived: boolean | undefined;
function count(kind: string, accepted: boolean): void {
  report[kind] ??= { tried: 0, refusedCleanly: 0, accepted: 0 };
  report[kind].tried++;
  if (accepted) report[kind].accepted++;
  else report[kind].refusedCleanly++;
}

async function imageCorpus(): Promise<Buffer[]> {
  const jpeg = await makeColourJpeg('green', { size: 96 });
  const png = await sharp({
    create: { width: 48, height: 48, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 1 } },
  })
    .png()
    .toBuffer();
  const corpus: Buffer[] = [Buffer.alloc(0)];
  for (const original of [jpeg, png]) {
    for (let cut = 1; cut < original.length; cut += Math.max(1, Math.floor(original.length / 220)))
      corpus.push(original.subarray(0, cut));
    for (let i = 0; i < 20; i++) {
      const wrongMagic = Buffer.from(original);
      wrongMagic[i % 4] = (wrongMagic[i % 4]! + 1 + i) % 256;
      corpus.push(wrongMagic);
    }
    for (let i = 0; i < 40; i++) {
      const flipped = Buffer.from(original);
      for (let j = 0; j < 16; j++) {
        const at = (i * 131 + j * 977) % flipped.length;
        flipped[at] = flipped[at]! ^ 0xff;
      }
      corpus.push(flipped);
    }
  }
  for (let i = 0; i < 60; i++) corpus.push(bytes(i, 16 + i * 37));
  // A PNG whose header claims 100000 x 100000 pixels.
  const huge = Buffer.from(png);
  huge.writeUInt32BE(100_000, 16);
  huge.writeUInt32BE(100_000, 20);
  corpus.push(huge);
  return corpus;
}

describe('a corpus of malformed inputs', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-corpus-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
    for (const [kind, r] of Object.entries(report)) {
      recordReliability({
        test: `bad-input corpus: ${kind}`,
        faultsInjected: 0,
        survived: kind !== 'http-body' || replicaSurvived === true,
        inputsTried: r.tried,
        inputsRejectedCleanly: r.refusedCleanly,
      });
    }
  });

  test('images: every malformed image is refused with a stable reason (or decoded correctly)', async () => {
    for (const image of await imageCorpus()) {
      try {
        const t = await preprocessImage(image, INFO);
        assert.equal(t.length, 3 * 64 * 64);
        assert.ok(t.every(Number.isFinite));
        count('image', true);
      } catch (err) {
        assert.ok(err instanceof ImageError, `an ImageError, not ${String(err)}`);
        assert.ok(IMAGE_REASONS.has(err.reason), err.reason);
        count('image', false);
      }
    }
    assert.ok(report.image!.tried >= 600, `${report.image!.tried} images tried`);
    assert.ok(report.image!.refusedCleanly >= 500);
  });

  test('models: corrupt, truncated, random and empty files are refused as ModelError', async () => {
    const good = buildTinyCnn();
    const files: Buffer[] = [Buffer.alloc(0)];
    for (let cut = 1; cut < good.length; cut += Math.max(1, Math.floor(good.length / 80)))
      files.push(Buffer.from(good.subarray(0, cut)));
    for (let i = 0; i < 40; i++) files.push(bytes(1000 + i, 64 + i * 50));
    for (const [i, content] of files.entries()) {
      const file = path.join(dir, `model-${i}.onnx`);
      await fs.writeFile(file, content);
      try {
        await readModelInfo(file);
        count('model', true);
      } catch (err) {
        assert.ok(err instanceof ModelError, `model ${i}: a ModelError, not ${String(err)}`);
        assert.ok(err.message.includes(file), 'the message names the file');
        count('model', false);
      }
    }
    assert.ok(report.model!.refusedCleanly >= 100, `${report.model!.refusedCleanly} models refused`);
  });

  test('HTTP bodies: a real replica answers each with a 4xx and keeps serving', async () => {
    const model = path.join(dir, 'serve.onnx');
    await fs.writeFile(model, buildTinyCnn());
    const keyFile = path.join(dir, 'key');
    await fs.writeFile(keyFile, 'corpus-key', { mode: 0o600 });
    const ready = path.join(dir, 'ready.json');
    const replica = spawn(
      process.execPath,
      [SERVER_MAIN, '--model', model, '--api-key-file', keyFile, '--ready-file', ready, '--max-body-bytes', '200000'],
      { stdio: 'ignore' },
    );
    try {
      let url: string | undefined;
      for (let i = 0; i < 200 && !url; i++) {
        url = await fs.readFile(ready, 'utf8').then(
          (t) => (JSON.parse(t) as { url: string }).url,
          () => undefined,
        );
        if (!url) await delay(50);
      }
      assert.ok(url, 'replica ready');
      const bodies = [...(await imageCorpus()).slice(0, 300), Buffer.alloc(300_000, 7), Buffer.from('{"json": true}')];
      for (const body of bodies) {
        const res = await fetch(`${url}/score`, {
          method: 'POST',
          body,
          headers: { authorization: 'Bearer corpus-key', 'content-type': 'application/octet-stream' },
        });
        const text = await res.text();
        assert.ok(
          res.status === 200 || (res.status >= 400 && res.status < 500),
          `status ${res.status}: ${text.slice(0, 100)}`,
        );
        count('http-body', res.status === 200);
      }
      replicaSurvived = replica.exitCode === null && replica.signalCode === null;
      assert.ok(replicaSurvived, 'the replica never crashed');
      const ok = await fetch(`${url}/score`, {
        method: 'POST',
        body: await makeColourJpeg('red'),
        headers: { authorization: 'Bearer corpus-key' },
      });
      assert.equal(ok.status, 200, 'and still answers a good image');
      await ok.arrayBuffer();
    } finally {
      replica.kill('SIGTERM');
    }
  });

  test('CLI arguments: each bad invocation exits 2 with a one-line reason', async () => {
    const cases = [
      ['deploy', '--model', 'm.onnx', '--replicas', '-1'],
      ['deploy', '--model', 'm.onnx', '--replicas', 'many'],
      ['deploy', '--model', 'm.onnx', '--target', 'gke'],
      ['deploy', '--model', 'm.onnx', '--ttl', '-5m'],
      ['deploy', '--model', 'm.onnx', '--top-k', '0'],
      ['score', '--model', 'm.onnx', '--input', 'x', '--output', 'y', '--shard-size', '0'],
      ['score', '--model', 'm.onnx', '--input', 'x', '--output', 'y', '--batch-size', '-3'],
      ['score', '--model', 'm.onnx', '--input', 'x', '--output', 'y', '--error-threshold', '1.5'],
      ['score', '--input', 'x'],
      ['schedule', 'create', 'nightly', '--cron', 'every night', '--model', 'm', '--input', 'i', '--output', 'o'],
      ['schedule', 'create', 'nightly', '--model', 'm', '--input', 'i', '--output', 'o'],
      ['schedule', 'backfill', 'nightly', '--from', 'yesterday', '--to', 'today'],
      ['extend', 'x', '--ttl', 'forever'],
      ['list', '--stage', 'sleeping'],
      ['gpu-worker', '--graph-optimization', 'max'],
    ];
    const run = (args: string[]) =>
      new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(
          process.execPath,
          [BIN, ...args],
          { env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' } },
          (err, _o, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }),
        ),
      );
    const results = await Promise.all(cases.map(run));
    results.forEach((r, i) => {
      assert.equal(r.code, 2, `${cases[i]!.join(' ')} → exit ${r.code}: ${r.stderr}`);
      assert.ok(r.stderr.trim().length > 0, 'says why');
      count('cli', false);
    });
    const total = Object.values(report).reduce((n, r) => n + r.tried, 0);
    assert.ok(total >= 1000, `${total} malformed inputs tried in all`);
  });
});
