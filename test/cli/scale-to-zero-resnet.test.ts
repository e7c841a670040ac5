/**
 * The cold start of a ResNet-50-shaped model (src/demo/resnet50.ts: the real topology at 224x224, about
 * 100 MB, generated here and never committed) on the local target, through `bin/inferctl.js`: deployed with
 * `--min-replicas 0`, gone to zero after its quiet period, its first request held and answered 200 once the
 * replica has loaded the model. The time from that request to its answer is recorded next to the demo
 * model's (test/cli/scale-to-zero.test.ts); a figure, not a timed assertion.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { buildResnet50Shaped } from '../../src/demo/resnet50';
import type { DeployStatus } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { statusQuery } from '../../workflows/deploy';
import { recordFigure } from '../helpers/reliability';
import { demoAssets, eventually, startControlWorker, testClient, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

const BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'inferctl.js');

function inferctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 300_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('scale to zero: the cold start of a ResNet-50-shaped model (local)', () => {
  const taskQueue = uniqueName('stz-resnet-tq');
  let worker: WorkerProcess;
  let client: Awaited<ReturnType<typeof testClient>>;
  let dir: string;
  const name = uniqueName('stz-resnet');

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-stz-resnet-'));
    fs.writeFileSync(path.join(dir, 'resnet50.onnx'), buildResnet50Shaped({ seed: 50 }));
    worker = await startControlWorker(taskQueue);
    client = await testClient();
  });
  after(async () => {
    await inferctl(['teardown', name, '--json']);
    await worker?.stop();
    await client?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('its first request at zero replicas is held and answered once the model has loaded', async () => {
    const deployed = await inferctl([
      'deploy',
      '--model',
      path.join(dir, 'resnet50.onnx'),
      '--name',
      name,
      '--ttl',
      '1h',
      '--min-replicas',
      '0',
      '--max-replicas',
      '1',
      '--scale-down-after',
      '2s',
      '--wake-timeout',
      '240s',
      '--json',
      '--task-queue',
      taskQueue,
    ]);
    assert.equal(deployed.code, 0, deployed.stderr);
    const endpoint = (JSON.parse(deployed.stdout) as { status: DeployStatus }).status.endpoint!;
    const status = () => client.client.workflow.getHandle(`deploy-${name}`).query(statusQuery);
    await eventually(
      async () => {
        const s = await status();
        return s.scaleToZero?.state === 'cold' && s.replicas === 0 ? s : undefined;
      },
      'the ResNet-50-shaped deployment at zero replicas',
      120_000,
    );

    const key = fs.readFileSync(new LocalLayout(name).apiKeyFile, 'utf8').trim();
    const image = fs.readFileSync((await demoAssets()).samples.find((s) => s.label === 'red')!.path);
    const started = performance.now();
    const res = await fetch(`${endpoint}/score`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'image/png' },
      body: image,
    });
    const body = await res.text();
    const ms = performance.now() - started;
    assert.equal(res.status, 200, body);
    const predictions = (JSON.parse(body) as { predictions: { label: string; score: number }[] }).predictions;
    assert.ok(predictions.length > 0 && predictions.every((p) => Number.isFinite(p.score)), body);
    const warm = await eventually(
      async () => ((await status()).scaleToZero?.state === 'warm' ? status() : undefined),
      'the wake recorded',
    );
    assert.equal(warm.scaleToZero?.wakes, 1);
    const test = 'scale-to-zero-resnet.test.ts';
    recordFigure({
      test,
      figure: 'cold start, ResNet-50-shaped model (102 MB): first request at 0 replicas to its answer',
      value: Math.round(ms),
      unit: 'ms',
    });
    recordFigure({
      test,
      figure: "the workflow's wake, ResNet-50-shaped model (0 → 1 replica ready)",
      value: warm.scaleToZero.lastWakeMs!,
      unit: 'ms',
    });
  });
});
