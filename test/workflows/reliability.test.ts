/**
 * Reliability under load and repeated crashes, with real processes:
 *  - GPU workers SIGKILLed again and again during one batch job, two on the queue: it completes and
 *    every input appears exactly once;
 *  - ten deployments and three batch jobs at once on one machine: all complete, no port is shared,
 *    nothing is left running.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import type { Client } from '@temporalio/client';

import { writeSampleImages } from '../../src/demo/sample-images';
import { batchWorkflowId } from '../../src/shared/batch-types';
import type { BatchScoreInput, BatchSummary } from '../../src/shared/batch-types';
import { deployWorkflowId } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { batchScore } from '../../workflows/batch-score';
import { deploy, statusQuery } from '../../workflows/deploy';
import { writeCopies } from '../helpers/images';
import { readJsonl } from '../helpers/jsonl';
import { recordReliability, rowAccounting } from '../helpers/reliability';
import { demoAssets, eventually, startControlWorker, startGpuWorker, testClient, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

describe('reliability', () => {
  const controlQueue = uniqueName('rel-control');
  let client: Client;
  let closeClient: () => Promise<void>;
  const workers: WorkerProcess[] = [];
  let assets: Awaited<ReturnType<typeof demoAssets>>;
  let scratch: string;

  before(async () => {
    assets = await demoAssets();
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-rel-'));
    ({ client, close: closeClient } = await testClient());
    workers.push(await startControlWorker(controlQueue));
  });
  after(async () => {
    for (const w of workers) await w.stop();
    await closeClient?.();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  function job(
    name: string,
    inputPath: string,
    gpuQueue: string,
    extra: Partial<BatchScoreInput> = {},
  ): BatchScoreInput {
    return {
      name,
      modelPath: assets.modelPath,
      inputPath,
      outputDir: path.join(scratch, name),
      shardSize: 40,
      batchSize: 8,
      maxShardsInFlight: 2,
      errorThreshold: 0,
      topK: 1,
      gpuTaskQueue: gpuQueue,
      heartbeatTimeoutSeconds: 3,
      ...extra,
    };
  }

  test('GPU workers SIGKILLed repeatedly during one job: it completes, every input exactly once', async () => {
    const gpuQueue = uniqueName('chaos-gpu');
    const images = path.join(scratch, 'chaos-in');
    const total = 1200;
    await writeCopies(images, total, 1024);
    // One shard per worker at a time, two in flight: each worker is busy, so every kill interrupts a shard.
    const oneShard = ['--max-concurrent-shards', '1'];
    const gpu = [await startGpuWorker(gpuQueue, oneShard), await startGpuWorker(gpuQueue, oneShard)];
    workers.push(...gpu);
    const name = uniqueName('chaos');
    const handle = await client.workflow.start(batchScore, {
      taskQueue: controlQueue,
      workflowId: batchWorkflowId(name),
      args: [job(name, images, gpuQueue)],
    });

    let kills = 0;
    let ended = false;
    const result = handle.result().finally(() => (ended = true));
    for (let round = 0; !ended && round < 12; round++) {
      await Promise.race([result, delay(1500)]);
      if (ended) break;
      const victim = round % 2;
      await gpu[victim]!.kill();
      kills++;
      gpu[victim] = await startGpuWorker(gpuQueue, oneShard);
      workers.push(gpu[victim]);
    }
    const outcome = await result;
    const rows = await readJsonl<{ index: number }>(outcome.predictionsFile);
    recordReliability({
      test: 'batch: two GPU workers, one SIGKILLed every 1.5 s',
      faultsInjected: kills,
      survived: outcome.itemsOk === total,
      ...rowAccounting(
        rows.map((r) => r.index),
        total,
      ),
    });
    assert.ok(kills >= 2, `workers were killed during the job (${kills} kills)`);
    assert.equal(outcome.itemsOk, total);
    assert.deepEqual(
      rows.map((r) => r.index),
      [...Array(total).keys()],
      'no row lost or duplicated',
    );
    const summary = JSON.parse(await fs.readFile(path.join(outcome.outputDir, 'summary.json'), 'utf8')) as BatchSummary;
    assert.ok(
      summary.shardTimings.some((s) => s.attempts > 1),
      'some shard was retried after a kill',
    );
  });

  test('ten deployments and three batch jobs at once: all complete, ports never clash', async () => {
    const gpuQueue = uniqueName('busy-gpu');
    workers.push(await startGpuWorker(gpuQueue));
    const red = assets.samples.find((s) => s.label === 'red')!;
    const names = Array.from({ length: 10 }, () => uniqueName('busy'));
    const deploys = await Promise.all(
      names.map((name) =>
        client.workflow.start(deploy, {
          taskQueue: controlQueue,
          workflowId: deployWorkflowId(name),
          args: [
            {
              name,
              modelPath: assets.modelPath,
              target: 'local',
              replicas: 1,
              ttlSeconds: 300,
              smoke: { samplePath: red.path, expectedLabel: 'red' },
            },
          ],
        }),
      ),
    );
    const inputs = path.join(scratch, 'busy-in');
    await writeSampleImages(inputs, 60);
    const jobs = await Promise.all(
      [0, 1, 2].map((i) => {
        const name = uniqueName(`busy-job-${i}`);
        return client.workflow.start(batchScore, {
          taskQueue: controlQueue,
          workflowId: batchWorkflowId(name),
          args: [job(name, inputs, gpuQueue)],
        });
      }),
    );

    const serving = await Promise.all(
      deploys.map((h) =>
        eventually(
          async () => {
            const s = await h.query(statusQuery);
            return s.stage === 'serving' ? s : undefined;
          },
          'every deployment to serve',
          180_000,
        ),
      ),
    );
    const urls = serving.flatMap((s) => [s.endpoint!, ...(s.replicaUrls ?? [])]);
    assert.equal(new Set(urls).size, urls.length, 'every endpoint and replica has its own port');
    assert.ok(
      serving.every((s) => s.smoke?.predictions[0]?.label === 'red'),
      'every smoke query answered',
    );

    await Promise.all(deploys.map((h) => h.signal('teardown', { reason: 'test' })));
    const outcomes = await Promise.all(deploys.map((h) => h.result()));
    assert.ok(outcomes.every((o) => o.stage === 'done'));
    let leaked = 0;
    for (const name of names) leaked += (await findProcessesByMarker(new LocalLayout(name).processMarker)).length;
    recordReliability({
      test: 'ten deployments and three batch jobs at once',
      faultsInjected: 0,
      survived: outcomes.every((o) => o.stage === 'done'),
      resourcesLeaked: leaked,
    });
    assert.equal(leaked, 0, 'no deployment left a process');
    const results = await Promise.all(jobs.map((h) => h.result()));
    assert.ok(
      results.every((r) => r.itemsOk === 60),
      'every batch job scored all its inputs',
    );
  });
});
