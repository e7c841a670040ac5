/**
 * The batchScore workflow through a real control worker and a real GPU worker process (CPU provider):
 * results equal direct onnxruntime, bad inputs are recorded and not fatal, the error threshold fails
 * the job with a message naming the errors file, and bad job settings fail clearly.
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
import { Classifier } from '../../src/scoring/classifier';
import { preprocessImage } from '../../src/images/preprocess';
import { batchWorkflowId } from '../../src/shared/batch-types';
import type { BatchScoreInput, BatchSummary } from '../../src/shared/batch-types';
import { batchScore } from '../../workflows/batch-score';
import type { BatchOutcome } from '../../workflows/batch-score';
import { freePort } from '../../src/temporal/dev-server';
import { demoAssets, startControlWorker, startGpuWorker, testClient, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';
import { readJsonl } from '../helpers/jsonl';

interface PredictionRow {
  index: number;
  path: string;
  predictions: Array<{ label: string; score: number }>;
}

describe('batchScore workflow', () => {
  const controlQueue = uniqueName('batch-control');
  const gpuQueue = uniqueName('batch-gpu');
  let client: Client;
  let closeClient: () => Promise<void>;
  const workers: WorkerProcess[] = [];
  let assets: Awaited<ReturnType<typeof demoAssets>>;
  let scratch: string;
  let metricsPort: number;

  before(async () => {
    assets = await demoAssets();
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-batch-'));
    ({ client, close: closeClient } = await testClient());
    metricsPort = await freePort();
    workers.push(
      await startControlWorker(controlQueue),
      await startGpuWorker(gpuQueue, ['--metrics-port', String(metricsPort)]),
    );
  });

  after(async () => {
    for (const w of workers) await w.stop();
    await closeClient?.();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  function job(name: string, inputPath: string, extra: Partial<BatchScoreInput> = {}): BatchScoreInput {
    return {
      name,
      modelPath: assets.modelPath,
      inputPath,
      outputDir: path.join(scratch, name, 'out'),
      shardSize: 7,
      batchSize: 4,
      maxShardsInFlight: 3,
      errorThreshold: -1,
      topK: 3,
      gpuTaskQueue: gpuQueue,
      ...extra,
    };
  }

  function run(input: BatchScoreInput) {
    return client.workflow.execute(batchScore, {
      taskQueue: controlQueue,
      workflowId: batchWorkflowId(input.name),
      args: [input],
    });
  }

  test('scores every input once, with the same answers as onnxruntime called directly', async () => {
    const name = uniqueName('equal');
    const dir = path.join(scratch, name, 'in');
    const samples = await writeSampleImages(dir, 40);
    const outcome: BatchOutcome = await run(job(name, dir));
    assert.equal(outcome.totalItems, 40);
    assert.equal(outcome.itemsOk, 40);
    assert.equal(outcome.itemsFailed, 0);
    assert.equal(outcome.shards, 6);
    assert.equal(outcome.executionProvider, 'cpu');

    const rows = await readJsonl<PredictionRow>(outcome.predictionsFile);
    assert.deepEqual(
      rows.map((r) => r.index),
      [...Array(40).keys()],
      'every index once, in order',
    );
    assert.deepEqual(new Set(rows.map((r) => r.path)), new Set(samples.map((s) => s.path)));

    const direct = await Classifier.load(assets.modelPath);
    try {
      for (const row of rows) {
        const tensor = await preprocessImage(await fs.readFile(row.path), direct.info);
        const [probs] = await direct.infer([tensor]);
        const expected = direct.topK(probs!, 3);
        assert.deepEqual(
          row.predictions.map((p) => p.label),
          expected.map((p) => p.label),
          row.path,
        );
        row.predictions.forEach((p, i) =>
          assert.ok(Math.abs(p.score - expected[i]!.score) < 1e-5, `${row.path} score`),
        );
      }
    } finally {
      await direct.release();
    }
    const truth = new Map(samples.map((s) => [s.path, s.label]));
    const correct = rows.filter((r) => r.predictions[0]?.label === truth.get(r.path)).length;
    assert.ok(correct >= 38, `the colour classifier gets the sample colours right (${correct}/40)`);

    const summary = JSON.parse(await fs.readFile(path.join(outcome.outputDir, 'summary.json'), 'utf8')) as BatchSummary;
    assert.equal(summary.shardTimings.length, 6);
    assert.ok(summary.itemsPerSecond > 0);
  });

  test('the GPU worker serves Prometheus metrics: the SDK runtime and inferctl scoring', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const scored = /^inferctl_items_scored_total\{[^}]*execution_provider="cpu"[^}]*outcome="ok"[^}]*\} (\d+)/m.exec(
      text,
    );
    assert.ok(scored, 'items scored counter with provider and outcome tags');
    assert.ok(Number(scored[1]) >= 40, `counted the first job's 40 items (${scored[1]})`);
    assert.match(text, /^inferctl_inference_latency_bucket\{/m, 'inference latency histogram');
    assert.match(text, /^inferctl_batch_size_bucket\{/m, 'batch size histogram');
    assert.match(
      text,
      /^inferctl_execution_provider\{[^}]*execution_provider="cpu"[^}]*\} 1/m,
      'execution provider gauge',
    );
    assert.match(text, /^temporal_activity_execution_latency/m, "the SDK runtime's own metrics");
  });

  test('bad inputs are recorded with their reason and do not stop the job', async () => {
    const name = uniqueName('bad');
    const dir = path.join(scratch, name, 'in');
    await writeSampleImages(dir, 5);
    const good = await fs.readFile(assets.samples[0]!.path);
    await fs.writeFile(path.join(dir, 'zero.jpg'), Buffer.alloc(0));
    await fs.writeFile(path.join(dir, 'truncated.jpg'), good.subarray(0, Math.floor(good.length / 3)));
    await fs.writeFile(path.join(dir, 'notes.txt'), 'not an image');
    await fs.writeFile(path.join(dir, 'noise.png'), Buffer.from(Array.from({ length: 500 }, (_, i) => (i * 37) % 256)));

    const outcome: BatchOutcome = await run(job(name, dir));
    assert.equal(outcome.totalItems, 9);
    assert.equal(outcome.itemsOk, 5);
    assert.equal(outcome.itemsFailed, 4);
    const errors = await readJsonl<{ index: number; path: string; reason: string; message: string }>(
      outcome.errorsFile,
    );
    const byName = new Map(errors.map((e) => [path.basename(e.path), e]));
    assert.equal(byName.get('zero.jpg')?.reason, 'empty');
    assert.ok(
      ['corrupt', 'decode-failed'].includes(byName.get('truncated.jpg')!.reason),
      byName.get('truncated.jpg')?.reason,
    );
    assert.equal(byName.get('notes.txt')?.reason, 'unsupported-format');
    assert.ok(byName.has('noise.png'));
    for (const e of errors) assert.ok(e.message.length > 0, 'each error says what went wrong');
    const rows = await readJsonl<PredictionRow>(outcome.predictionsFile);
    const indices = [...rows.map((r) => r.index), ...errors.map((e) => e.index)].sort((a, b) => a - b);
    assert.deepEqual(indices, [...Array(9).keys()], 'every input is in exactly one of the two files');
  });

  test('exceeding the error threshold fails the job and names the errors file', async () => {
    const name = uniqueName('threshold');
    const dir = path.join(scratch, name, 'in');
    await writeSampleImages(dir, 4);
    for (let i = 0; i < 3; i++) await fs.writeFile(path.join(dir, `broken-${i}.jpg`), Buffer.from('garbage'));
    const err = await run(job(name, dir, { errorThreshold: 2 })).then(
      () => assert.fail('the job should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'ErrorThresholdExceeded');
    assert.match(err.cause.message, /3 input\(s\) could not be scored, over the error threshold \(2 input\(s\)\)/);
    assert.ok(err.cause.message.includes(path.join(scratch, name, 'out', 'errors.jsonl')), err.cause.message);
    assert.equal((await readJsonl(path.join(scratch, name, 'out', 'errors.jsonl'))).length, 3);
  });

  test('missing model, empty input directory and unwritable output fail with what to fix', async () => {
    const empty = path.join(scratch, 'empty-in');
    await fs.mkdir(empty, { recursive: true });
    const aFile = path.join(scratch, 'a-file');
    await fs.writeFile(aFile, 'x');
    const cases: Array<[Partial<BatchScoreInput> & { inputPath?: string }, string, RegExp]> = [
      [{ modelPath: path.join(scratch, 'missing.onnx') }, 'ModelNotFound', /missing\.onnx/],
      [{ inputPath: empty }, 'EmptyInput', /No inputs found in .*empty-in/],
      [{ inputPath: path.join(scratch, 'no-such-dir') }, 'InputNotFound', /Input not found/],
      [{ outputDir: path.join(aFile, 'out') }, 'OutputNotWritable', /Cannot write to the output directory/],
    ];
    for (const [extra, type, message] of cases) {
      const name = uniqueName('invalid');
      const err = await run(job(name, extra.inputPath ?? path.dirname(assets.samples[0]!.path), extra)).then(
        () => assert.fail(`${type}: the job should fail`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError);
      assert.ok(err.cause instanceof ActivityFailure, `${type}: fails in an activity`);
      assert.ok(err.cause.cause instanceof ApplicationFailure);
      assert.equal(err.cause.cause.type, type);
      assert.equal(err.cause.cause.nonRetryable, true);
      assert.match(err.cause.cause.message, message);
    }
  });
});
