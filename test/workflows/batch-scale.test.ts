/**
 * Batch scoring at scale and under faults: a GPU worker SIGKILLed in the middle of a shard (a new one
 * resumes from the heartbeated checkpoint; every input appears exactly once), and a job of 20,000 tiny
 * inputs whose every run's history stays under the bound thanks to continue-as-new.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import type { Client } from '@temporalio/client';

import { parseNpyHeader } from '../../src/batch/npy';
import { readModelInfo } from '../../src/model/model-info';
import { batchWorkflowId } from '../../src/shared/batch-types';
import type { BatchScoreInput, BatchSummary } from '../../src/shared/batch-types';
import { batchScore } from '../../workflows/batch-score';
import type { BatchOutcome } from '../../workflows/batch-score';
import { writeCopies } from '../helpers/images';
import { readJsonl } from '../helpers/jsonl';
import { recordReliability, rowAccounting } from '../helpers/reliability';
import { demoAssets, eventually, startControlWorker, startGpuWorker, testClient, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

const HISTORY_EVENT_BOUND = 10_000;

describe('batchScore at scale and under faults', () => {
  const controlQueue = uniqueName('scale-control');
  let client: Client;
  let closeClient: () => Promise<void>;
  const workers: WorkerProcess[] = [];
  let assets: Awaited<ReturnType<typeof demoAssets>>;
  let scratch: string;

  before(async () => {
    assets = await demoAssets();
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-scale-'));
    ({ client, close: closeClient } = await testClient());
    workers.push(await startControlWorker(controlQueue));
  });

  after(async () => {
    for (const w of workers) await w.stop();
    await closeClient?.();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  test('a GPU worker SIGKILLed mid-shard: a new worker resumes and every input appears exactly once', async () => {
    const gpuQueue = uniqueName('kill-gpu');
    const name = uniqueName('kill');
    const dir = path.join(scratch, name, 'in');
    const total = 480;
    await writeCopies(dir, total, 640);
    const input: BatchScoreInput = {
      name,
      modelPath: assets.modelPath,
      inputPath: dir,
      outputDir: path.join(scratch, name, 'out'),
      shardSize: 160,
      batchSize: 8,
      maxShardsInFlight: 1,
      errorThreshold: 0,
      topK: 1,
      rawOutputs: true,
      gpuTaskQueue: gpuQueue,
      heartbeatTimeoutSeconds: 3,
    };
    const victim = await startGpuWorker(gpuQueue, ['--max-concurrent-shards', '1']);
    workers.push(victim);
    const handle = await client.workflow.start(batchScore, {
      taskQueue: controlQueue,
      workflowId: batchWorkflowId(name),
      args: [input],
    });

    // Kill the worker once the first shard has written some rows, but long before it is done.
    const partial = path.join(input.outputDir, 'shards', 'shard-000000.attempt-1.partial', 'predictions.jsonl');
    await eventually(
      async () => {
        const size = (await fs.stat(partial).catch(() => undefined))?.size ?? 0;
        return size > 0 ? size : undefined;
      },
      'the first shard to write rows',
      60_000,
    );
    await victim.kill();
    const rowsAtKill = (await fs.readFile(partial, 'utf8')).split('\n').filter(Boolean).length;
    assert.ok(rowsAtKill < 160, `killed mid-shard (${rowsAtKill} of 160 rows written)`);

    workers.push(await startGpuWorker(gpuQueue));
    const outcome: BatchOutcome = await handle.result();
    assert.equal(outcome.itemsOk, total);
    assert.equal(outcome.itemsFailed, 0);

    const rows = await readJsonl<{ index: number }>(outcome.predictionsFile);
    recordReliability({
      test: 'batch: GPU worker SIGKILLed mid-shard',
      faultsInjected: 1,
      survived: outcome.itemsOk === total,
      ...rowAccounting(
        rows.map((r) => r.index),
        total,
      ),
    });
    assert.equal(rows.length, total, 'no row lost or duplicated');
    assert.deepEqual(
      rows.map((r) => r.index),
      [...Array(total).keys()],
      'each index exactly once, in order',
    );
    const raw = await fs.readFile(path.join(input.outputDir, 'raw.npy'));
    const classes = (await readModelInfo(assets.modelPath)).labels.length;
    const header = parseNpyHeader(raw);
    assert.deepEqual(header.shape, [total, classes], 'one float32 row per input');
    assert.equal(raw.length, header.dataOffset + total * classes * 4, 'no row lost or duplicated in raw.npy');
    const values = new Float32Array(raw.buffer.slice(raw.byteOffset + header.dataOffset, raw.byteOffset + raw.length));
    const scored = await readJsonl<{ predictions: Array<{ score: number }> }>(outcome.predictionsFile);
    scored.forEach((r, i) => {
      const row = values.subarray(i * classes, (i + 1) * classes);
      assert.equal(Math.max(...row), r.predictions[0]!.score, `raw row ${i} is predictions line ${i}'s`);
    });

    const summary = JSON.parse(await fs.readFile(path.join(input.outputDir, 'summary.json'), 'utf8')) as BatchSummary;
    const first = summary.shardTimings.find((s) => s.shard === 0)!;
    assert.ok(first.attempts >= 2, `shard 0 was retried (attempts ${first.attempts})`);
  });

  test('20,000 tiny inputs: completes, each run of the workflow keeps its history under the bound', async () => {
    const gpuQueue = uniqueName('many-gpu');
    workers.push(await startGpuWorker(gpuQueue, ['--max-concurrent-shards', '4']));
    const name = uniqueName('many');
    const dir = path.join(scratch, name, 'in');
    const total = 20_000;
    await writeCopies(dir, total, 16);
    const input: BatchScoreInput = {
      name,
      modelPath: assets.modelPath,
      inputPath: dir,
      outputDir: path.join(scratch, name, 'out'),
      shardSize: 25,
      batchSize: 25,
      maxShardsInFlight: 8,
      errorThreshold: 0,
      topK: 1,
      gpuTaskQueue: gpuQueue,
    };
    const workflowId = batchWorkflowId(name);
    const outcome: BatchOutcome = await client.workflow.execute(batchScore, {
      taskQueue: controlQueue,
      workflowId,
      args: [input],
    });
    assert.equal(outcome.totalItems, total);
    assert.equal(outcome.itemsOk, total);
    assert.equal(outcome.shards, 800);
    const rows = await readJsonl<{ index: number }>(outcome.predictionsFile);
    assert.equal(new Set(rows.map((r) => r.index)).size, total);

    const runs: string[] = [];
    for await (const wf of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(wf.runId);
    assert.ok(runs.length >= 2, `continued as new (${runs.length} runs)`);
    for (const runId of runs) {
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      const events = history.events?.length ?? 0;
      assert.ok(events < HISTORY_EVENT_BOUND, `run ${runId} has ${events} events`);
    }
  });
});
