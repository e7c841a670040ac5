/**
 * The shard activity in MockActivityEnvironment: heartbeated checkpoints, resuming from one after a
 * crash (the half-written tail is truncated, nothing is duplicated), idempotent completion, cancellation.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';

import { createScoringActivities } from '../../activities/scoring';
import { writeShardManifests } from '../../src/batch/input-listing';
import { BatchLayout } from '../../src/batch/output-layout';
import { writeSampleImages } from '../../src/demo/sample-images';
import { readModelInfo } from '../../src/model/model-info';
import { buildTinyCnn } from '../../src/demo/tiny-cnn';
import { ClassifierPool } from '../../src/scoring/classifier-pool';
import type { ShardCheckpoint, ShardResult, ShardTask } from '../../src/shared/batch-types';
import { readJsonl } from '../helpers/jsonl';

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
});
