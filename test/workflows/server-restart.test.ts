/**
 * The Temporal server itself goes away mid-run: a private dev server is stopped while a deployment
 * serves and a batch job scores, then restarted on the same SQLite file and port. Both runs complete,
 * the deployment is torn down, and the batch output has every input exactly once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { Client, Connection } from '@temporalio/client';

import { writeSampleImages } from '../../src/demo/sample-images';
import { batchWorkflowId } from '../../src/shared/batch-types';
import { deployWorkflowId } from '../../src/shared/deploy-types';
import type { DeployOutcome } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { freePort, startDevServer } from '../../src/temporal/dev-server';
import type { DevServer } from '../../src/temporal/dev-server';
import { batchScore } from '../../workflows/batch-score';
import type { BatchOutcome } from '../../workflows/batch-score';
import { deploy, statusQuery } from '../../workflows/deploy';
import { readJsonl } from '../helpers/jsonl';
import { recordReliability, rowAccounting } from '../helpers/reliability';
import { buildSlowCnn } from '../helpers/slow-model';
import { demoAssets, eventually, startControlWorker, startGpuWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

describe('the Temporal server restarts mid-run', () => {
  let dataDir: string;
  let port: number;
  let server: DevServer | undefined;
  const workers: WorkerProcess[] = [];

  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-restart-'));
    port = await freePort();
    server = await startDevServer({ dataDir: path.join(dataDir, 'temporal'), port, headless: true });
  });
  after(async () => {
    for (const w of workers) await w.stop();
    await server?.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  const connect = async () => {
    const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
    return { client: new Client({ connection }), connection };
  };

  test('a serving deployment and a scoring job both complete after the server comes back', async () => {
    const env = { ...process.env, TEMPORAL_ADDRESS: `127.0.0.1:${port}` };
    const controlQueue = uniqueName('restart-control');
    const gpuQueue = uniqueName('restart-gpu');
    workers.push(
      await startControlWorker(controlQueue, [], env),
      await startGpuWorker(gpuQueue, ['--max-concurrent-shards', '1'], env),
    );
    const assets = await demoAssets();
    const images = path.join(dataDir, 'in');
    await writeSampleImages(images, 300, { size: 320 });
    // A model slow enough (tens of ms an image, a second or more a shard) that the job is still scoring
    // when the server is stopped, however fast or loaded the machine: the stop waits for its first shard.
    const slowModel = path.join(dataDir, 'slow.onnx');
    await fs.writeFile(slowModel, buildSlowCnn({ layers: 3 }));

    let { client, connection } = await connect();
    const name = uniqueName('restart');
    const deployHandle = await client.workflow.start(deploy, {
      taskQueue: controlQueue,
      workflowId: deployWorkflowId(name),
      args: [{ name, modelPath: assets.modelPath, target: 'local', replicas: 1, ttlSeconds: 8 }],
    });
    const jobName = uniqueName('restart-job');
    const outputDir = path.join(dataDir, 'out');
    await client.workflow.start(batchScore, {
      taskQueue: controlQueue,
      workflowId: batchWorkflowId(jobName),
      args: [
        {
          name: jobName,
          modelPath: slowModel,
          inputPath: images,
          outputDir,
          shardSize: 20,
          batchSize: 10,
          maxShardsInFlight: 1,
          errorThreshold: 0,
          topK: 1,
          gpuTaskQueue: gpuQueue,
          heartbeatTimeoutSeconds: 5,
        },
      ],
    });
    await eventually(
      async () => ((await deployHandle.query(statusQuery)).stage === 'serving' ? true : undefined),
      'serving',
    );
    const finishedShards = async () =>
      (await fs.readdir(path.join(outputDir, 'shards')).catch(() => [])).filter((d) => !d.endsWith('.partial'));
    await eventually(async () => (await finishedShards()).length > 0 || undefined, 'the job’s first shard', 120_000);
    await connection.close();

    // The server goes away for a few seconds, with work in flight, and comes back on the same file.
    await server!.stop();
    const finishedAtStop = await finishedShards();
    assert.ok(
      finishedAtStop.length < 15,
      `the job was mid-way when the server stopped (${finishedAtStop.length}/15 shards)`,
    );
    await delay(4000);
    server = await startDevServer({ dataDir: path.join(dataDir, 'temporal'), port, headless: true });

    ({ client, connection } = await connect());
    try {
      const outcome: DeployOutcome = await client.workflow.getHandle<typeof deploy>(deployWorkflowId(name)).result();
      assert.equal(outcome.stage, 'done');
      assert.equal(outcome.endedBy, 'ttl');
      assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).processMarker), [], 'torn down');

      const summary: BatchOutcome = await client.workflow
        .getHandle<typeof batchScore>(batchWorkflowId(jobName))
        .result();
      const rows = await readJsonl<{ index: number }>(summary.predictionsFile);
      const leftover = await findProcessesByMarker(new LocalLayout(name).processMarker);
      recordReliability({
        test: 'Temporal server stopped mid-run and restarted on its SQLite file',
        faultsInjected: 1,
        survived: outcome.stage === 'done' && summary.itemsOk === 300,
        resourcesLeaked: leftover.length,
        ...rowAccounting(
          rows.map((r) => r.index),
          300,
        ),
      });
      assert.equal(summary.itemsOk, 300);
      assert.deepEqual(
        rows.map((r) => r.index),
        [...Array(300).keys()],
        'every input exactly once',
      );
    } finally {
      await connection.close();
    }
  });
});
