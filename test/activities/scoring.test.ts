/**
 * The shard activity in MockActivityEnvironment: heartbeated checkpoints, resuming from one after a
 * crash (the half-written tail is truncated, nothing is duplicated, raw output rows included), idempotent
 * completion, cancellation, and the model facts done.json records for the summary.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';

import { createScoringActivities } from '../../activities/scoring';
import { readShardManifest, writeShardManifests } from '../../src/batch/input-listing';
import { BatchLayout } from '../../src/batch/output-layout';
import { writeSampleImages } from '../../src/demo/sample-images';
import { preprocessImage } from '../../src/preprocess/preprocess-image';
import { readModelInfo } from '../../src/model/model-info';
import { buildTinyCnn } from '../../src/demo/tiny-cnn';
import { Classifier } from '../../src/scoring/classifier';
import { ClassifierPool } from '../../src/scoring/classifier-pool';
import type { ShardCheckpoint, ShardRecord, ShardResult, ShardTask } from '../../src/shared/batch-types';
import { readJsonl } from '../helpers/jsonl';
import { buildSlowCnn } from '../helpers/slow-model';

describe('scoreShard activity', () => {
  let dir: string;
  let task: ShardTask;
  const pool = new ClassifierPool({ executionProvider: 'cpu', allowCpuFallback: false }, () => undefined);
  const activities = createScoringActivities({ classifiers: pool, workerName: 'test' });
  const scoreShard = (t: ShardTask) => activities.scoreShard(t);

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-shard-'));
    const modelPath = path.join(dir, 'tiny.onnx');
    await fs.writeFile(modelPath, buildTinyCnn());
    await writeSampleImages(path.join(dir, 'in'), 30);
    const layout = new BatchLayout(path.join(dir, 'out'));
    await writeShardManifests(path.join(dir, 'in'), layout.manifestDir, 30);
    task = {
      jobName: 'test',
      shard: 0,
      baseIndex: 0,
      manifestDir: layout.manifestDir,
      outputDir: layout.outputDir,
      modelPath,
      modelDigest: (await readModelInfo(modelPath)).digest,
      batchSize: 4,
      topK: 2,
      rawOutputs: false,
      requireCuda: false,
    };
  });
  after(async () => {
    await pool.releaseAll();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const layout = () => new BatchLayout(task.outputDir);

  test('resumes from the heartbeated checkpoint, dropping what the dead attempt wrote after it', async () => {
    // A first attempt that heartbeats, then "crashes" (is cancelled) part-way.
    const first = new MockActivityEnvironment({ attempt: 1 });
    const checkpoints: ShardCheckpoint[] = [];
    first.on('heartbeat', (d: ShardCheckpoint) => {
      checkpoints.push(d);
      if (checkpoints.length === 3) first.cancel();
    });
    await assert.rejects(first.run(scoreShard, task), CancelledFailure);
    const checkpoint = checkpoints[1]!; // the server kept an older heartbeat than the last one written
    assert.equal(checkpoint.itemsDone, 8);

    const partial = path.join(layout().shardPartialDir(0), 'predictions.jsonl');
    await fs.appendFile(partial, '{"index": 999, "path": "half a ro');
    const second = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: checkpoint });
    const result: ShardResult = await second.run(scoreShard, task);
    assert.equal(result.itemsOk, 30);
    assert.equal(result.attempts, 2);

    const rows = await readJsonl<{ index: number }>(path.join(layout().shardDir(0), 'predictions.jsonl'));
    assert.deepEqual(
      rows.map((r) => r.index),
      [...Array(30).keys()],
      'each input once, in order',
    );
    await assert.rejects(fs.access(layout().shardPartialDir(0)), 'the partial directory was renamed into place');
  });

  test('a finished shard is returned as is, without scoring again', async () => {
    const file = path.join(layout().shardDir(0), 'predictions.jsonl');
    const before = await fs.stat(file);
    const env = new MockActivityEnvironment({ attempt: 3 });
    let heartbeats = 0;
    env.on('heartbeat', () => heartbeats++);
    const result: ShardResult = await env.run(scoreShard, task);
    assert.equal(result.itemsOk, 30);
    assert.equal(heartbeats, 0, 'no batch was scored');
    assert.equal((await fs.stat(file)).mtimeMs, before.mtimeMs);
  });

  test('a checkpoint whose files are gone restarts the shard from the beginning', async () => {
    const other = { ...task, shard: 0, outputDir: path.join(dir, 'out2') };
    await fs.cp(task.manifestDir, path.join(other.outputDir, 'manifest'), { recursive: true });
    other.manifestDir = path.join(other.outputDir, 'manifest');
    const stale: ShardCheckpoint = {
      itemsDone: 12,
      itemsOk: 12,
      itemsFailed: 0,
      predictionsBytes: 5000,
      errorsBytes: 0,
      rawBytes: 0,
    };
    const result: ShardResult = await new MockActivityEnvironment({ attempt: 2, heartbeatDetails: stale }).run(
      scoreShard,
      other,
    );
    assert.equal(result.itemsOk, 30);
    const rows = await readJsonl<{ index: number }>(
      path.join(new BatchLayout(other.outputDir).shardDir(0), 'predictions.jsonl'),
    );
    assert.equal(rows.length, 30);
  });

  test("raw outputs resume too: each input's output row once, in order, equal to direct inference", async () => {
    const other: ShardTask = { ...task, rawOutputs: true, outputDir: path.join(dir, 'out-raw') };
    other.manifestDir = path.join(other.outputDir, 'manifest');
    await fs.cp(task.manifestDir, other.manifestDir, { recursive: true });
    const partialDir = new BatchLayout(other.outputDir).shardPartialDir(0);

    const first = new MockActivityEnvironment({ attempt: 1 });
    const checkpoints: ShardCheckpoint[] = [];
    first.on('heartbeat', (d: ShardCheckpoint) => {
      checkpoints.push(d);
      if (checkpoints.length === 3) first.cancel();
    });
    await assert.rejects(first.run(scoreShard, other), CancelledFailure);
    const checkpoint = checkpoints[1]!;
    const classes = (await readModelInfo(task.modelPath)).labels.length;
    assert.equal(checkpoint.rawBytes, checkpoint.itemsOk * classes * 4, 'the checkpoint counts whole rows');
    // The dead attempt wrote a third batch and half a row after the checkpoint the server kept.
    const rawPartial = path.join(partialDir, 'raw.f32');
    await fs.appendFile(rawPartial, Buffer.from(new Float32Array([9, 9]).buffer));
    assert.ok((await fs.stat(rawPartial)).size > checkpoint.rawBytes);

    const result: ShardResult = await new MockActivityEnvironment({ attempt: 2, heartbeatDetails: checkpoint }).run(
      scoreShard,
      other,
    );
    assert.equal(result.itemsOk, 30);
    assert.equal('model' in result, false, "the model facts stay in done.json, out of the workflow's history");

    const shardDir = new BatchLayout(other.outputDir).shardDir(0);
    const raw = await fs.readFile(path.join(shardDir, 'raw.f32'));
    assert.equal(raw.length, 30 * classes * 4, 'one row per input, the torn tail dropped');
    const rows = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    const inputs = await readShardManifest(new BatchLayout(other.outputDir).shardManifest(0));
    const direct = await Classifier.load(task.modelPath);
    try {
      for (const [i, file] of inputs.entries()) {
        const [expected] = await direct.infer([await preprocessImage(await fs.readFile(file), direct.info)]);
        const got = rows.subarray(i * classes, (i + 1) * classes);
        expected!.forEach((v, c) => assert.ok(Math.abs(got[c]! - v) < 1e-6, `input ${i} class ${c}`));
      }
    } finally {
      await direct.release();
    }

    const done = JSON.parse(await fs.readFile(path.join(shardDir, 'done.json'), 'utf8')) as ShardRecord;
    const info = await readModelInfo(task.modelPath);
    assert.deepEqual(done.model, {
      output: { name: info.outputName, classes, dtype: 'float32' },
      preprocess: {
        resize: { width: info.width, height: info.height },
        channelOrder: 'RGB',
        layout: 'NCHW',
        scale: info.scale,
        mean: info.mean,
        std: info.std,
        // The rest of the resolved spec (issue #13): what a reader needs to redo the preprocessing.
        interpolation: info.interpolation,
        orientation: info.orientation,
        output: info.output,
      },
    });
    const again: ShardResult = await new MockActivityEnvironment({ attempt: 3 }).run(scoreShard, other);
    assert.deepEqual(again, result, 'a finished shard returns the same result, without the model facts');
  });

  test('keeps heartbeating while a batch is in inference (inference runs off the main thread)', async () => {
    const slowPath = path.join(dir, 'slow.onnx');
    await fs.writeFile(slowPath, buildSlowCnn());
    const slowPool = new ClassifierPool(
      { executionProvider: 'cpu', allowCpuFallback: false, intraOpNumThreads: 1 },
      () => undefined,
    );
    const slow = createScoringActivities({ classifiers: slowPool, workerName: 'test', heartbeatEveryMs: 40 });
    const other: ShardTask = { ...task, outputDir: path.join(dir, 'out-slow'), modelPath: slowPath, batchSize: 3 };
    other.modelDigest = (await readModelInfo(slowPath)).digest;
    other.manifestDir = path.join(other.outputDir, 'manifest');
    await fs.cp(task.manifestDir, other.manifestDir, { recursive: true });
    await fs.writeFile(
      new BatchLayout(other.outputDir).shardManifest(0),
      (await readShardManifest(new BatchLayout(task.outputDir).shardManifest(0, task.manifestDir)))
        .slice(0, 6)
        .map((p) => JSON.stringify(p))
        .join('\n') + '\n',
    );
    // Time each inference call as the activity makes it (the pool hands the activity this same classifier).
    const classifier = await slowPool.get(slowPath, other.modelDigest);
    const runs: Array<[number, number, number]> = [];
    const infer = classifier.infer.bind(classifier);
    classifier.infer = async (batch, ...rest) => {
      const started = performance.now();
      try {
        return await infer(batch, ...rest);
      } finally {
        runs.push([started, performance.now(), batch.length]);
      }
    };
    const beats: number[] = [];
    const env = new MockActivityEnvironment({ attempt: 1 });
    env.on('heartbeat', () => beats.push(performance.now()));
    try {
      const result: ShardResult = await env.run((t: ShardTask) => slow.scoreShard(t), other);
      assert.equal(result.itemsOk, 6);
    } finally {
      await slowPool.releaseAll();
    }
    // The decode split's warm-up (one image, before its first measured batch), then the two batches of 3.
    assert.deepEqual(
      runs.map((r) => r[2]),
      [1, 3, 3],
      'a one-image warm-up, then two batches of 3',
    );
    for (const [start, end] of runs.filter((r) => r[2] === 3)) {
      assert.ok(end - start > 200, `an inference long enough to watch (${Math.round(end - start)} ms)`);
      const during = beats.filter((t) => t > start && t < end).length;
      assert.ok(during >= 2, `heartbeats during a ${Math.round(end - start)} ms inference: ${during}`);
    }
  });
});
