/**
 * Scale to zero on the local target, with real processes, every flag through `bin/inferctl.js`: a
 * deployment goes to zero replicas after its quiet period while its endpoint (address and key) stays; its
 * first request is held and answered 200 after a wake (the cold start measured and printed), twenty
 * concurrent requests during a wake are all answered, `status` shows cold/waking/warm and the last wake;
 * a wake that cannot finish within --wake-timeout answers 503 with Retry-After.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { statusQuery } from '../../workflows/deploy';
import type { DeployStatus } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { demoAssets, eventually, startControlWorker, testClient, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';
import { recordFigure } from '../helpers/reliability';

const BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'inferctl.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function inferctl(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('scale to zero (local)', () => {
  const taskQueue = uniqueName('stz-tq');
  let worker: WorkerProcess;
  let assets: Awaited<ReturnType<typeof demoAssets>>;
  let client: Awaited<ReturnType<typeof testClient>>;
  const names: string[] = [];

  before(async () => {
    assets = await demoAssets();
    worker = await startControlWorker(taskQueue);
    client = await testClient();
  });
  after(async () => {
    for (const name of names) await inferctl(['teardown', name, '--json']);
    await worker?.stop();
    await client?.close();
  });

  async function deploy(name: string, flags: string[]): Promise<DeployStatus> {
    names.push(name);
    const green = assets.samples.find((s) => s.label === 'green')!;
    const run = await inferctl([
      'deploy',
      '--model',
      assets.modelPath,
      '--name',
      name,
      '--ttl',
      '1h',
      '--smoke-sample',
      green.path,
      '--json',
      '--task-queue',
      taskQueue,
      ...flags,
    ]);
    assert.equal(run.code, 0, run.stderr);
    return (JSON.parse(run.stdout) as { status: DeployStatus }).status;
  }

  const status = (name: string) => client.client.workflow.getHandle(`deploy-${name}`).query(statusQuery);
  const cold = (name: string) =>
    eventually(
      async () => {
        const s = await status(name);
        return s.scaleToZero?.state === 'cold' && s.replicas === 0 ? s : undefined;
      },
      `${name} at zero replicas`,
      60_000,
    );

  function score(endpoint: string, key: string, image: Buffer) {
    const started = performance.now();
    return fetch(`${endpoint}/score`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg' },
      body: image,
    }).then(async (res) => ({ res, body: await res.text(), ms: performance.now() - started }));
  }

  test('to zero after the quiet period, the endpoint kept; held requests answered after a wake', async () => {
    const name = uniqueName('stz');
    const layout = new LocalLayout(name);
    const deployed = await deploy(name, [
      '--replicas',
      '1',
      '--min-replicas',
      '0',
      '--max-replicas',
      '2',
      '--scale-down-after',
      '3s',
      '--wake-timeout',
      '60s',
    ]);
    const endpoint = deployed.endpoint!;
    const key = fs.readFileSync(layout.apiKeyFile, 'utf8').trim();
    assert.equal(deployed.scaleToZero?.state, 'warm');

    const atZero = await cold(name);
    assert.equal(atZero.endpoint, endpoint, 'the endpoint keeps its address');
    const gatewayOnly = await findProcessesByMarker(layout.processMarker);
    assert.equal(gatewayOnly.length, 1, `only the gateway runs at zero replicas (pids ${gatewayOnly.join(', ')})`);
    const human = await inferctl(['status', name]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /scale to zero: cold \(0-2 replicas; to zero after 3\.0s/);
    const scaleCold = await inferctl(['scale', name, '--replicas', '2']);
    assert.equal(scaleCold.code, 2, 'a refused Update is bad input (docs/cli.md)');
    assert.match(scaleCold.stderr, /is cold \(no replica serves\); it wakes on its next request/);
    const scaleOver = await inferctl(['scale', name, '--replicas', '3']);
    assert.equal(scaleOver.code, 2);
    assert.match(scaleOver.stderr, /runs at most 2 replica\(s\) \(--max-replicas\); got 3/);

    // The first request at zero replicas: held, answered 200 once a replica is up.
    const image = fs.readFileSync(assets.samples.find((s) => s.label === 'red')!.path);
    const first = await score(endpoint, key, image);
    assert.equal(first.res.status, 200, first.body);
    assert.equal((JSON.parse(first.body) as { predictions: Array<{ label: string }> }).predictions[0]?.label, 'red');
    // The gateway answers as soon as the replica is up; the workflow records the wake a moment later.
    const warm = await eventually(
      async () => ((await status(name)).scaleToZero?.state === 'warm' ? status(name) : undefined),
      'the wake recorded',
    );
    assert.equal(warm.scaleToZero?.wakes, 1);
    assert.ok(warm.scaleToZero.lastWakeMs! > 0);
    const test = 'scale-to-zero.test.ts';
    recordFigure({
      test,
      figure: 'cold start: first request at 0 replicas to its answer',
      value: Math.round(first.ms),
      unit: 'ms',
    });
    recordFigure({
      test,
      figure: "the workflow's wake (0 → 1 replica ready)",
      value: warm.scaleToZero.lastWakeMs!,
      unit: 'ms',
    });
    const after = await inferctl(['status', name]);
    // (warm, or cold again already: the quiet period is 3 s and the CLI takes its time to start)
    assert.match(after.stdout, /scale to zero: (warm|cold)/);
    assert.match(after.stdout, /last wake .* \(took [\d.]+m?s; \d+ request\(s\) held; 1 wake\(s\)\)/);

    // Back to zero; then twenty requests at once during the next wake, all answered.
    await cold(name);
    assert.equal(fs.readFileSync(layout.apiKeyFile, 'utf8').trim(), key, 'the endpoint keeps its key');
    const burst = await Promise.all(Array.from({ length: 20 }, () => score(endpoint, key, image)));
    assert.deepEqual(
      burst.map((b) => b.res.status),
      Array<number>(20).fill(200),
    );
    const slowest = Math.max(...burst.map((b) => b.ms));
    recordFigure({
      test,
      figure: 'a wake with 20 concurrent requests (all 200): the slowest',
      value: Math.round(slowest),
      unit: 'ms',
    });
    const again = await eventually(
      async () => ((await status(name)).scaleToZero?.wakes === 2 ? status(name) : undefined),
      'the second wake recorded',
    );
    assert.equal(again.endpoint, endpoint);
    assert.ok(again.steps.filter((s) => s.step === 'scale-to-zero').length >= 2);
  });

  test('a wake that cannot finish within --wake-timeout answers 503 with Retry-After, then wakes', async () => {
    const name = uniqueName('stz-slow');
    const layout = new LocalLayout(name);
    const deployed = await deploy(name, ['--min-replicas', '0', '--scale-down-after', '2s', '--wake-timeout', '200ms']);
    const key = fs.readFileSync(layout.apiKeyFile, 'utf8').trim();
    await cold(name);
    const image = fs.readFileSync(assets.samples.find((s) => s.label === 'green')!.path);
    // Starting a scoring server takes longer than 200 ms: the request is answered 503, not left hanging.
    const refused = await score(deployed.endpoint!, key, image);
    assert.equal(refused.res.status, 503, refused.body);
    assert.equal(refused.res.headers.get('retry-after'), '10');
    assert.match(refused.body, /did not wake within its wake timeout/);
    assert.ok(refused.ms < 5000, `answered in ${refused.ms.toFixed(0)} ms`);
    // The wake it asked for goes on; a retry is answered.
    await eventually(async () => ((await status(name)).scaleToZero?.state === 'warm' ? true : undefined), 'the wake');
    const retried = await score(deployed.endpoint!, key, image);
    assert.equal(retried.res.status, 200, retried.body);
  });

  test('the flags are checked before anything starts', async () => {
    const model = assets.modelPath;
    const alone = await inferctl(['deploy', '--model', model, '--wake-timeout', '1m']);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /go with --min-replicas 0/);
    const one = await inferctl(['deploy', '--model', model, '--min-replicas', '1', '--max-replicas', '3']);
    assert.equal(one.code, 2);
    assert.match(one.stderr, /--min-replicas takes 0/);
    // aks takes it too (its front holds the endpoint): the dry run lists the front, nothing is created.
    const aks = await inferctl(['deploy', '--model', model, '--target', 'aks', '--min-replicas', '0', '--dry-run']);
    assert.equal(aks.code, 0, aks.stderr);
    assert.match(aks.stdout, /Deployment inferctl-tiny-cnn\/tiny-cnn-front/);
    const over = await inferctl([
      'deploy',
      '--model',
      model,
      '--replicas',
      '3',
      '--min-replicas',
      '0',
      '--max-replicas',
      '2',
    ]);
    assert.equal(over.code, 2);
    assert.match(over.stderr, /--replicas 3 is more than --max-replicas 2/);
  });
});
