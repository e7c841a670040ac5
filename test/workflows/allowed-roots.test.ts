/**
 * INFERCTL_ALLOWED_ROOTS on the workers: a model, sample, input or output outside the roots is refused
 * before anything runs, and a manifest entry pointing outside is recorded as that input's error.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { WorkflowFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';

import { writeSampleImages } from '../../src/demo/sample-images';
import { buildTinyCnn } from '../../src/demo/tiny-cnn';
import { batchWorkflowId } from '../../src/shared/batch-types';
import type { BatchScoreInput } from '../../src/shared/batch-types';
import { deployWorkflowId } from '../../src/shared/deploy-types';
import { batchScore } from '../../workflows/batch-score';
import { deploy } from '../../workflows/deploy';
import { readJsonl } from '../helpers/jsonl';
import { startControlWorker, startGpuWorker, testClient, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

describe('allowed roots', () => {
  const controlQueue = uniqueName('roots-control');
  const gpuQueue = uniqueName('roots-gpu');
  let client: Client;
  let closeClient: () => Promise<void>;
  const workers: WorkerProcess[] = [];
  let allowed: string;
  let outside: string;

  before(async () => {
    allowed = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-allowed-'));
    outside = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-outside-'));
    for (const dir of [allowed, outside]) await fs.writeFile(path.join(dir, 'model.onnx'), buildTinyCnn());
    const env = { ...process.env, INFERCTL_ALLOWED_ROOTS: allowed };
    ({ client, close: closeClient } = await testClient());
    workers.push(await startControlWorker(controlQueue, [], env), await startGpuWorker(gpuQueue, [], env));
  });
  after(async () => {
    for (const w of workers) await w.stop();
    await closeClient?.();
    for (const dir of [allowed, outside]) await fs.rm(dir, { recursive: true, force: true });
  });

  async function refusal(run: Promise<unknown>): Promise<ApplicationFailure> {
    const err = await run.then(
      () => assert.fail('should be refused'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    let cause: unknown = err.cause;
    while (
      cause instanceof ActivityFailure ||
      (cause instanceof ApplicationFailure && cause.type === 'DeploymentFailed')
    )
      cause = cause.cause;
    assert.ok(cause instanceof ApplicationFailure);
    return cause;
  }

  test('a deployment whose model is outside the roots is refused', async () => {
    const name = uniqueName('roots');
    const failure = await refusal(
      client.workflow.execute(deploy, {
        taskQueue: controlQueue,
        workflowId: deployWorkflowId(name),
        args: [{ name, modelPath: path.join(outside, 'model.onnx'), target: 'local', replicas: 1, ttlSeconds: 1 }],
      }),
    );
    assert.equal(failure.type, 'PathNotAllowed');
    assert.match(failure.message, /outside the directories this worker may use/);
  });

  test('a batch job writing outside the roots is refused; a manifest entry outside is that input’s error', async () => {
    const job = (name: string, extra: Partial<BatchScoreInput>): BatchScoreInput => ({
      name,
      modelPath: path.join(allowed, 'model.onnx'),
      inputPath: path.join(allowed, 'in'),
      outputDir: path.join(allowed, 'out', name),
      shardSize: 10,
      batchSize: 4,
      maxShardsInFlight: 1,
      errorThreshold: -1,
      topK: 1,
      gpuTaskQueue: gpuQueue,
      ...extra,
    });
    const samples = await writeSampleImages(path.join(allowed, 'in'), 4);
    const name = uniqueName('roots-out');
    const failure = await refusal(
      client.workflow.execute(batchScore, {
        taskQueue: controlQueue,
        workflowId: batchWorkflowId(name),
        args: [job(name, { outputDir: path.join(outside, 'out') })],
      }),
    );
    assert.equal(failure.type, 'PathNotAllowed');

    const [escapee] = await writeSampleImages(path.join(outside, 'images'), 1);
    const manifest = path.join(allowed, 'manifest.txt');
    await fs.writeFile(manifest, [...samples.map((s) => s.path), escapee!.path].join('\n'));
    const ok = uniqueName('roots-manifest');
    const outcome = await client.workflow.execute(batchScore, {
      taskQueue: controlQueue,
      workflowId: batchWorkflowId(ok),
      args: [job(ok, { inputPath: manifest })],
    });
    assert.equal(outcome.itemsOk, 4);
    assert.equal(outcome.itemsFailed, 1);
    const [error] = await readJsonl<{ path: string; reason: string }>(outcome.errorsFile);
    assert.equal(error?.reason, 'not-allowed');
    assert.equal(error?.path, escapee!.path);
  });
});
