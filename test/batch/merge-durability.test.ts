/**
 * The merge makes its outputs durable before it removes what they were made from: predictions.jsonl,
 * errors.jsonl and summary.json are fsynced, and so is the output directory that holds their names,
 * before shards/ is renamed away or deleted. The order is observed through the real calls the activity
 * makes (node:fs/promises wrapped for the test, then restored).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { MockActivityEnvironment } from '@temporalio/testing';

import { createBatchActivities } from '../../activities/batch';
import { BatchLayout, SHARD_FILES } from '../../src/batch/output-layout';
import type { BatchScoreInput, PreparedBatch, ShardRecord } from '../../src/shared/batch-types';

let dir: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-merge-sync-'));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

type Mutable = Record<string, unknown>;

/** Records `sync <path>`, `rename <from>`, `rm <path>` in call order while `fn` runs. */
async function observeCalls(fn: () => Promise<unknown>): Promise<string[]> {
  const calls: string[] = [];
  const paths = new Map<number, string>();
  const api = fs as unknown as Mutable;
  const probe = await fs.open(path.join(dir, 'probe'), 'w');
  const handleProto = Object.getPrototypeOf(probe) as Mutable;
  await probe.close();
  const saved = { open: fs.open, rename: fs.rename, rm: fs.rm, unlink: fs.unlink, rmdir: fs.rmdir };
  const savedSync = handleProto.sync as (this: fs.FileHandle) => Promise<void>;
  const savedDatasync = handleProto.datasync as (this: fs.FileHandle) => Promise<void>;
  api.open = async (...args: Parameters<typeof fs.open>) => {
    const handle = await saved.open(...args);
    paths.set(handle.fd, String(args[0]));
    return handle;
  };
  api.rename = (from: string, to: string) => {
    calls.push(`rename ${from}`);
    return saved.rename(from, to);
  };
  api.rm = (p: string, o?: Parameters<typeof fs.rm>[1]) => {
    calls.push(`rm ${p}`);
    return saved.rm(p, o);
  };
  api.unlink = (p: string) => {
    calls.push(`rm ${p}`);
    return saved.unlink(p);
  };
  api.rmdir = (p: string) => {
    calls.push(`rm ${p}`);
    return saved.rmdir(p);
  };
  const onSync = function (this: fs.FileHandle, real: (this: fs.FileHandle) => Promise<void>) {
    calls.push(`sync ${paths.get(this.fd) ?? `fd ${this.fd}`}`);
    return real.call(this);
  };
  handleProto.sync = function (this: fs.FileHandle) {
    return onSync.call(this, savedSync);
  };
  handleProto.datasync = function (this: fs.FileHandle) {
    return onSync.call(this, savedDatasync);
  };
  try {
    await fn();
  } finally {
    Object.assign(api, saved);
    handleProto.sync = savedSync;
    handleProto.datasync = savedDatasync;
  }
  return calls;
}

test('outputs and their directory are fsynced before the shards are removed', async () => {
  const outputDir = path.join(dir, 'out');
  const layout = new BatchLayout(outputDir);
  const shards: ShardRecord[] = [];
  for (let shard = 0; shard < 2; shard++) {
    await fs.mkdir(layout.shardDir(shard), { recursive: true });
    await fs.writeFile(path.join(layout.shardDir(shard), SHARD_FILES.predictions), `{"index":${shard}}\n`);
    await fs.writeFile(path.join(layout.shardDir(shard), SHARD_FILES.errors), '');
    const record: ShardRecord = {
      shard,
      itemsOk: 1,
      itemsFailed: 0,
      wallMs: 1,
      decodeMs: 0,
      inferMs: 1,
      attempts: 1,
      executionProvider: 'cpu',
      worker: 'test',
    };
    await fs.writeFile(path.join(layout.shardDir(shard), SHARD_FILES.done), JSON.stringify(record));
    shards.push(record);
  }
  await fs.mkdir(layout.manifestDir, { recursive: true });
  const input: BatchScoreInput = {
    name: 'durable',
    modelPath: path.join(dir, 'model.onnx'),
    inputPath: path.join(dir, 'in'),
    outputDir,
    shardSize: 1,
    batchSize: 1,
    maxShardsInFlight: 1,
    errorThreshold: -1,
    topK: 1,
  };
  const prepared: PreparedBatch = {
    totalItems: 2,
    shardCount: 2,
    manifestDir: layout.manifestDir,
    modelDigest: 'sha256:x',
  };
  const env = new MockActivityEnvironment();
  const activities = createBatchActivities();
  const summarise = (i: BatchScoreInput, p: PreparedBatch, s: string) => activities.summariseBatch(i, p, s);
  const calls = await observeCalls(() => env.run(summarise, input, prepared, new Date().toISOString()));

  const removal = calls.findIndex((c) => c === `rename ${layout.shardsDir}` || c.startsWith(`rm ${layout.shardsDir}`));
  assert.ok(removal >= 0, `the shards were removed (${calls.join(', ')})`);
  const before = calls.slice(0, removal);
  const synced = (file: string) =>
    before.some((c) => c.startsWith('sync ') && path.basename(c.slice(5)).startsWith(file));
  for (const file of ['predictions.jsonl', 'errors.jsonl', 'summary.json']) {
    assert.ok(synced(file), `${file} is fsynced before the shards are removed (${calls.join(', ')})`);
  }
  const lastOutputRename = before
    .map((c, i) => (c.startsWith(`rename ${outputDir}`) ? i : -1))
    .reduce((a, b) => Math.max(a, b), -1);
  const dirSync = before.findIndex((c, i) => c === `sync ${outputDir}` && i > lastOutputRename);
  assert.ok(dirSync >= 0, `the output directory is fsynced after the last rename into it (${calls.join(', ')})`);
  assert.equal((await fs.readFile(layout.predictionsFile, 'utf8')).split('\n').filter(Boolean).length, 2);
});
