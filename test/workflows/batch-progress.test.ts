/**
 * batchScore on the real dev server with a real GPU worker process: the `progress` query and the Web
 * UI's current details move inside a running shard (a one-shard job on a slow model), and after a
 * successful merge the per-shard files and the manifest copy are gone unless the job keeps them (a retry
 * of the summary after that answers the same summary).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { MockActivityEnvironment } from '@temporalio/testing';

import { createBatchActivities } from '../../activities/batch';
import { BatchLayout } from '../../src/batch/output-layout';
import { writeSampleImages } from '../../src/demo/sample-images';
import { fileExists } from '../../src/file-exists';
import type { BatchProgress, BatchScoreInput, PreparedBatch } from '../../src/shared/batch-types';
import { progressQuery } from '../../workflows/batch-score';
import type { BatchOutcome } from '../../workflows/batch-score';
import { readJsonl } from '../helpers/jsonl';
import { buildSlowCnn } from '../helpers/slow-model';
import { workflowSuite } from '../helpers/workflow-suite';
import { uniqueName } from '../helpers/workers';

describe('batchScore progress and output cleanup', () => {
  const suite = workflowSuite('batch-progress', { gpu: { args: ['--intra-op-threads', '1'] } });

  test('the progress query and the current details move inside a one-shard job', async () => {
    const name = uniqueName('moving');
    const dir = path.join(suite.scratch, name, 'in');
    await writeSampleImages(dir, 12);
    const modelPath = path.join(suite.scratch, name, 'slow.onnx');
    await fs.writeFile(modelPath, buildSlowCnn());
    const input = suite.batchInput({
      name,
      inputPath: dir,
      modelPath,
      shardSize: 12,
      batchSize: 2,
      maxShardsInFlight: 1,
      progressIntervalSeconds: 0.2,
    });
    const handle = await suite.startBatch(input);
    // itemsDone seen while the shard runs, in the order the queries answered.
    const inside: number[] = [];
    const details: string[] = [];
    let finished = false;
    const outcome = handle.result().finally(() => (finished = true));
    while (!finished) {
      try {
        const p: BatchProgress = await handle.query(progressQuery);
        if (p.stage === 'scoring' && p.shardsDone === 0 && p.itemsDone > 0) {
          inside.push(p.itemsDone);
          assert.equal(p.itemsInRunningShards, p.itemsDone, 'all of it from the running shard');
          const meta = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
          details.push(meta.currentDetails ?? '');
        }
      } catch {
        // Not answering yet (the first workflow task).
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const done: BatchOutcome = await outcome;
    assert.equal(done.itemsOk, 12);
    assert.equal(done.shards, 1);
    // What the workflow guarantees while shardsDone is 0: 0 < itemsDone ≤ 12, never going back (a late,
    // older report is dropped). 12 is legal: a query can land after the shard scored its last item and
    // before the workflow records the shard as done.
    assert.ok(
      inside.every((n, i) => n > 0 && n <= 12 && (i === 0 || n >= inside[i - 1]!)),
      `itemsDone within (0, 12] and never decreasing inside the shard: ${inside.join(', ')}`,
    );
    const partial = new Set(inside.filter((n) => n < 12));
    assert.ok(partial.size >= 2, `itemsDone took several values below 12 inside the shard: ${inside.join(', ')}`);
    assert.ok(
      details.some((d) => /\*\*Items:\*\* ([1-9]|1[01]) \/ 12/.test(d)),
      `the Web UI's current details moved too: ${details.at(-1)}`,
    );
  });

  async function finishedJob(
    extra: Partial<BatchScoreInput>,
  ): Promise<{ input: BatchScoreInput; outcome: BatchOutcome }> {
    const name = uniqueName('cleanup');
    const dir = path.join(suite.scratch, name, 'in');
    await writeSampleImages(dir, 9);
    const input = suite.batchInput({ name, inputPath: dir, shardSize: 4, batchSize: 2, rawOutputs: true, ...extra });
    const outcome = await (await suite.startBatch(input)).result();
    assert.equal(outcome.itemsOk, 9);
    const rows = await readJsonl<{ index: number }>(outcome.predictionsFile);
    assert.deepEqual(
      rows.map((r) => r.index),
      [...Array(9).keys()],
    );
    return { input, outcome };
  }

  test('after the merge the shard files and the manifest copy are removed, and a retried summary is the same', async () => {
    const { input, outcome } = await finishedJob({});
    const layout = new BatchLayout(input.outputDir);
    assert.equal(await fileExists(layout.shardsDir), false, 'shards/ removed');
    assert.equal(await fileExists(layout.manifestDir), false, 'manifest/ removed');
    assert.deepEqual((await fs.readdir(input.outputDir)).sort(), [
      '.inferctl-job.json', // the job's claim on its output directory stays with the outputs
      'errors.jsonl',
      'predictions.jsonl',
      'raw.npy',
      'summary.json',
    ]);
    // The summary activity retried after removing the shards: the same answer, the outputs untouched.
    const before = await fs.stat(outcome.predictionsFile);
    const prepared: PreparedBatch = {
      totalItems: outcome.totalItems,
      shardCount: outcome.shards,
      manifestDir: layout.manifestDir,
      modelDigest: outcome.modelDigest,
    };
    const again: BatchOutcome = await new MockActivityEnvironment().run(
      (i: BatchScoreInput, p: PreparedBatch, s: string) => createBatchActivities().summariseBatch(i, p, s),
      input,
      prepared,
      new Date().toISOString(),
    );
    assert.equal(again.itemsOk, 9);
    assert.deepEqual(again.rawShape, outcome.rawShape);
    assert.equal((await fs.stat(outcome.predictionsFile)).mtimeMs, before.mtimeMs);
  });

  test('--keep-shards keeps the shard files and the manifest copy', async () => {
    const { input } = await finishedJob({ keepShards: true });
    const layout = new BatchLayout(input.outputDir);
    assert.deepEqual(await fs.readdir(layout.shardsDir), ['shard-000000', 'shard-000001', 'shard-000002']);
    assert.ok(await fileExists(layout.shardManifest(2)));
  });
});
