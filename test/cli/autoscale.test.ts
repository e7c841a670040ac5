/**
 * Autoscaling on the local target, with real processes, every flag through `bin/inferctl.js`: a slow model
 * under a load loop goes from 1 to 3 replicas and back to 1 after the loop stops, with no failed request;
 * each decision (its reason and the counters it read) is in `status`, text and --json, and each scale is a
 * recorded step; `scale --min-replicas/--max-replicas` sets the bounds and moves the replicas into them,
 * `scale --replicas` is refused with what to do instead; bad flag mixes are exit 2 before anything starts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { statusQuery } from '../../workflows/deploy';
import type { DeployStatus } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { runInferctl as inferctl } from '../helpers/cli';
import { buildSlowCnn } from '../helpers/slow-model';
import { demoAssets, eventually, startControlWorker, testClient, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';
import { recordFigure } from '../helpers/reliability';

describe('autoscale (local)', () => {
  const taskQueue = uniqueName('as-tq');
  let worker: WorkerProcess;
  let assets: Awaited<ReturnType<typeof demoAssets>>;
  let client: Awaited<ReturnType<typeof testClient>>;
  let slowModel: string;
  const names: string[] = [];

  before(async () => {
    assets = await demoAssets();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-autoscale-'));
    slowModel = path.join(dir, 'slow.onnx');
    // A few tens of milliseconds per image: requests queue at one replica under the load loop.
    fs.writeFileSync(slowModel, buildSlowCnn({ layers: 12, channels: 64 }));
    worker = await startControlWorker(taskQueue);
    client = await testClient();
  });
  after(async () => {
    for (const name of names) await inferctl(['teardown', name, '--json']);
    await worker?.stop();
    await client?.close();
  });

  const status = (name: string) => client.client.workflow.getHandle(`deploy-${name}`).query(statusQuery);
  const atReplicas = (name: string, n: number, timeoutMs = 90_000) =>
    eventually(
      async () => {
        const s = await status(name);
        return s.replicas === n ? s : undefined;
      },
      `${name} at ${n} replica(s)`,
      timeoutMs,
    );

  test('1 → 3 under a load loop and back to 1 after it, no failed request; decisions in status', async () => {
    const name = uniqueName('as');
    names.push(name);
    const sample = assets.samples.find((s) => s.label === 'green')!;
    const args = [
      'deploy',
      '--model',
      slowModel,
      '--name',
      name,
      '--ttl',
      '1h',
      '--smoke-sample',
      sample.path,
      '--task-queue',
      taskQueue,
      '--min-replicas',
      '1',
      '--max-replicas',
      '3',
      '--target-concurrency',
      '1.5',
      '--autoscale-period',
      '1s',
      '--scale-up-window',
      '0s',
      '--scale-down-window',
      '4s',
    ];
    const run = await inferctl([...args, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const deployed = (JSON.parse(run.stdout) as { status: DeployStatus }).status;
    assert.equal(deployed.replicas, 1);
    assert.deepEqual(
      [deployed.autoscale?.minReplicas, deployed.autoscale?.maxReplicas, deployed.autoscale?.targetConcurrency],
      [1, 3, 1.5],
    );
    assert.equal(deployed.autoscale?.scaleDownWindowSeconds, 4);
    // The same flags again attach (the replica count is the autoscaler's, not part of the comparison).
    const same = await inferctl(args);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /already running with this spec: attached/);
    const key = fs.readFileSync(new LocalLayout(name).apiKeyFile, 'utf8').trim();
    const image = fs.readFileSync(sample.path);

    // Four clients in a closed loop: about four requests in flight, 4 / 1.5 per replica → 3 replicas.
    const codes = new Map<number, number>();
    let stop = false;
    const client = async () => {
      while (!stop) {
        const res = await fetch(`${deployed.endpoint}/score`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg' },
          body: image,
        });
        await res.arrayBuffer();
        codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
      }
    };
    const started = performance.now();
    const loop = Promise.all(Array.from({ length: 4 }, client));
    let up: DeployStatus;
    try {
      up = await atReplicas(name, 3);
      recordFigure({
        test: 'autoscale.test.ts',
        figure: 'load loop start to 3 replicas ready (1 s readings, 0 s scale-up window)',
        value: Math.round(performance.now() - started),
        unit: 'ms',
      });
      // At 3 replicas the load is within reach of the target: it stays at 3 while the loop runs.
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal((await status(name)).replicas, 3, 'no scale down while the load lasts');
    } finally {
      stop = true;
      await loop;
    }
    const upDecision = up.autoscale!.decisions.find((d) => d.to > d.from)!;
    assert.ok(upDecision, JSON.stringify(up.autoscale?.decisions));
    assert.ok(upDecision.reading.samples > 0 && upDecision.reading.meanInFlight > 1.5, JSON.stringify(upDecision));
    assert.match(upDecision.reason, /in flight \([\d.]+ per replica, target 1\.5.*; scale up 1 → [23]/);

    const down = await atReplicas(name, 1, 60_000);
    assert.deepEqual([...codes.keys()], [200], `every answer 200: ${JSON.stringify([...codes])}`);
    const answered = codes.get(200)!;
    assert.ok(answered > 20, `${answered} requests answered`);
    assert.ok(down.autoscale!.scaledUp >= 1 && down.autoscale!.scaledDown >= 1);
    assert.ok(down.steps.some((s) => s.step === 'scale-up' && s.ok && /1 → [23] \(autoscale:/.test(s.detail ?? '')));
    assert.ok(down.steps.some((s) => s.step === 'scale-down' && s.ok && /→ 1 \(autoscale:/.test(s.detail ?? '')));

    const human = await inferctl(['status', name]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(
      human.stdout,
      /autoscale: 1-3 replicas, target 1\.5 in flight per replica \(reads 1\.0s; up over 0ms, down over 4\.0s; tolerance 10%\); scaled up \d+, down \d+ time/,
    );
    assert.match(
      human.stdout,
      /decision \S+: [\d.]+ in flight \([\d.]+ per replica, target 1\.5, peak \d+, \d+ request\(s\) in [\d.]+s\): recommends \d/,
    );
    assert.match(human.stdout, /✔ scale-down [\d.]+m?s: [23] → 1 \(autoscale: /);
    const json = await inferctl(['status', name, '--json']);
    const viewed = (JSON.parse(json.stdout) as { status: DeployStatus }).status;
    assert.ok(viewed.autoscale!.decisions.length > 0);
    assert.ok(viewed.autoscale!.decisions.every((d) => d.reason.length > 0 && d.reading.seconds > 0));

    // The bounds, through scale: replicas moved into them at once; a fixed count is refused.
    const raise = await inferctl(['scale', name, '--min-replicas', '2', '--max-replicas', '3', '--json']);
    assert.equal(raise.code, 0, raise.stderr);
    const raised = JSON.parse(raise.stdout) as { replicas: number; previousReplicas: number; minReplicas: number };
    assert.deepEqual([raised.minReplicas, raised.previousReplicas, raised.replicas], [2, 1, 2]);
    // Deploying again with the first flags: the bounds differ now, and it says how to change them.
    const again = await inferctl(args);
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, /different spec: autoscaling .*"minReplicas":1.*inferctl scale .* --min-replicas A/);
    const fixed = await inferctl(['scale', name, '--replicas', '3']);
    assert.equal(fixed.code, 2);
    assert.match(fixed.stderr, /autoscales between 2 and 3 replicas .*set its bounds instead/);
    const zero = await inferctl(['scale', name, '--min-replicas', '0']);
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /0 only for a deployment started with --min-replicas 0/);
    const target = await inferctl(['scale', name, '--target-concurrency', '4']);
    assert.equal(target.code, 0, target.stderr);
    assert.match(target.stdout, /between 2 and 3 replicas, target 4 in flight per replica; it serves 2 replica\(s\)/);
    assert.equal((await status(name)).autoscale?.targetConcurrency, 4);
  });

  test('with --min-replicas 0: a wake brings it to 1, the load to 3, the quiet period back to 0', async () => {
    const name = uniqueName('as-zero');
    names.push(name);
    const sample = assets.samples.find((s) => s.label === 'green')!;
    const run = await inferctl([
      'deploy',
      '--model',
      slowModel,
      '--name',
      name,
      '--ttl',
      '1h',
      '--smoke-sample',
      sample.path,
      '--json',
      '--task-queue',
      taskQueue,
      '--min-replicas',
      '0',
      '--max-replicas',
      '3',
      '--scale-down-after',
      '4s',
      '--wake-timeout',
      '60s',
      '--target-concurrency',
      '1.5',
      '--autoscale-period',
      '1s',
      '--scale-down-window',
      '2s',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const deployed = (JSON.parse(run.stdout) as { status: DeployStatus }).status;
    const key = fs.readFileSync(new LocalLayout(name).apiKeyFile, 'utf8').trim();
    const image = fs.readFileSync(sample.path);
    await eventually(async () => ((await status(name)).scaleToZero?.state === 'cold' ? true : undefined), 'cold');

    const codes = new Map<number, number>();
    let stop = false;
    const loop = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (!stop) {
          const res = await fetch(`${deployed.endpoint}/score`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg' },
            body: image,
          });
          await res.arrayBuffer();
          codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
        }
      }),
    );
    try {
      const up = await atReplicas(name, 3);
      assert.equal(up.scaleToZero?.wakes, 1, 'woken once, then scaled up by autoscale');
    } finally {
      stop = true;
      await loop;
    }
    const cold = await eventually(
      async () => {
        const s = await status(name);
        return s.scaleToZero?.state === 'cold' && s.replicas === 0 ? s : undefined;
      },
      'back at zero replicas',
      90_000,
    );
    assert.deepEqual([...codes.keys()], [200], `every answer 200: ${JSON.stringify([...codes])}`);
    assert.equal(cold.endpoint, deployed.endpoint, 'the endpoint keeps its address');
    const steps = cold.steps.map((s) => s.step);
    assert.ok(steps.includes('wake') && steps.includes('scale-up') && steps.includes('scale-to-zero'), steps.join());
    assert.ok(
      cold.autoscale!.decisions.every((d) => d.from > 0),
      'no decision is taken at zero replicas',
    );
  });

  test('the flags are checked before anything starts', async () => {
    const model = assets.modelPath;
    const cases: Array<[string[], RegExp]> = [
      [['--target-concurrency', '2'], /needs --max-replicas/],
      [['--scale-down-window', '1m'], /go with --target-concurrency/],
      [['--target-concurrency', '0', '--max-replicas', '2'], /must be a positive number/],
      [['--target-concurrency', '2', '--min-replicas', '3', '--max-replicas', '2'], /--min-replicas 3 is more than/],
      [
        [
          '--target-concurrency',
          '2',
          '--max-replicas',
          '2',
          '--target',
          'aks',
          '--cluster',
          'c',
          '--max-gpu-nodes',
          '2',
        ],
        /with --cluster the GPU pool is yours/,
      ],
      [['--target-concurrency', '2', '--max-replicas', '2', '--scale-down-after', '1m'], /go with --min-replicas 0/],
    ];
    for (const [flags, message] of cases) {
      const run = await inferctl(['deploy', '--model', model, ...flags]);
      assert.equal(run.code, 2, `${flags.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
    const neither = await inferctl(['scale', 'anything']);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /scale takes --replicas N, or/);
  });
});
