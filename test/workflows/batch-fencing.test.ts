/**
 * Fencing, with real processes: a GPU worker SIGSTOPped mid-shard past its heartbeat timeout, the shard
 * reassigned to a second worker (attempt 2), then the first one SIGCONTed while attempt 2 runs. The
 * lost attempt must not write into the shard's output: on files its directory was renamed away by
 * attempt 2, so it cannot commit; on Blob Storage it writes only its own attempt's blobs, which the
 * merge does not read since the workflow accepted the later attempt's result. (The paused worker's open
 * polls may be handed a few retries first, which time out in turn; the attempt that takes over is the
 * first one the second worker gets.) Each job keeps its shards so the test can see whose output the
 * shard's is: every input exactly once, and the shard is the later attempt's, scored by the second worker.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import type { BatchScoreInput, BatchSummary, ShardRecord } from '../../src/shared/batch-types';
import type { BatchOutcome } from '../../workflows/batch-score';
import { useAzurite } from '../helpers/azurite';
import { writeCopies } from '../helpers/images';
import { readJsonl } from '../helpers/jsonl';
import { recordReliability, rowAccounting } from '../helpers/reliability';
import { workflowSuite } from '../helpers/workflow-suite';
import { eventually, uniqueName } from '../helpers/workers';

const TOTAL = 120;

describe('fencing: a lost shard attempt cannot write into the shard after the new one took over', () => {
  const suite = workflowSuite('fence', { control: false });
  const azurite = useAzurite();

  /**
   * Runs a one-shard job: worker A starts it, is SIGSTOPped once `started()` says rows are written, B
   * takes over (a later attempt writes rows, seen by `takenOver()`), then A is SIGCONTed. Returns the
   * outcome and B's name.
   */
  async function runWithLostAttempt(
    input: BatchScoreInput,
    started: () => Promise<boolean>,
    takenOver: () => Promise<boolean>,
  ): Promise<{ outcome: BatchOutcome; workerB: string }> {
    const a = await suite.startGpuWorker({ taskQueue: input.gpuTaskQueue, env: azurite.env });
    const handle = await suite.startBatch(input);
    await eventually(async () => ((await started()) ? true : undefined), 'attempt 1 to write rows', 90_000);
    a.child.kill('SIGSTOP');
    try {
      const b = await suite.startGpuWorker({ taskQueue: input.gpuTaskQueue, env: azurite.env });
      await eventually(
        async () => ((await takenOver()) ? true : undefined),
        'a later attempt on the second worker',
        240_000,
      );
      a.child.kill('SIGCONT');
      const outcome: BatchOutcome = await handle.result();
      await delay(1000); // whatever the resumed attempt still does, it has had time to try
      return { outcome, workerB: `${os.hostname()}:${b.child.pid}` };
    } finally {
      a.child.kill('SIGCONT');
    }
  }

  function job(outputDir: string, inputPath: string): BatchScoreInput {
    return suite.batchInput({
      inputPath,
      outputDir,
      shardSize: TOTAL,
      batchSize: 2,
      maxShardsInFlight: 1,
      errorThreshold: 0,
      gpuTaskQueue: uniqueName('fence-gpu'),
      heartbeatTimeoutSeconds: 3,
      keepShards: true,
    });
  }

  function record(outcome: BatchOutcome, indices: number[], name: string) {
    recordReliability({
      test: `fencing (${name}): GPU worker SIGSTOPped past its heartbeat timeout, shard reassigned, SIGCONT`,
      faultsInjected: 1,
      survived: outcome.itemsOk === TOTAL,
      ...rowAccounting(indices, TOTAL),
    });
  }

  test('on the file system', async () => {
    const control = await suite.startControlWorker({ env: azurite.env });
    const input = job(path.join(suite.scratch, 'files', 'out'), path.join(suite.scratch, 'files', 'in'));
    await writeCopies(input.inputPath, TOTAL, 512);
    const shards = path.join(input.outputDir, 'shards');
    const size = (p: string) =>
      fs.stat(path.join(shards, p)).then(
        (s) => s.size,
        () => -1,
      );
    const { outcome, workerB } = await runWithLostAttempt(
      input,
      async () => (await size('shard-000000.attempt-1.partial/predictions.jsonl')) > 0,
      async () => {
        const later = (await fs.readdir(shards)).filter((d) =>
          /^shard-000000\.attempt-([2-9]|\d\d+)\.partial$/.test(d),
        );
        for (const d of later) if ((await size(`${d}/predictions.jsonl`)) > 0) return true;
        return false;
      },
    );
    const rows = await readJsonl<{ index: number }>(outcome.predictionsFile);
    record(
      outcome,
      rows.map((r) => r.index),
      'files',
    );
    assert.deepEqual(
      rows.map((r) => r.index),
      [...Array(TOTAL).keys()],
      'each input exactly once, in order',
    );
    const done = JSON.parse(await fs.readFile(path.join(shards, 'shard-000000', 'done.json'), 'utf8')) as ShardRecord;
    assert.ok(done.attempts >= 2, `the shard's output is a later attempt's (attempt ${done.attempts})`);
    assert.equal(done.worker, workerB, 'scored by the second worker');
    // Nothing of the lost attempt was committed: attempt 1's directory is gone, no other holds a done.json.
    const left = (await fs.readdir(shards)).filter((d) => d !== 'shard-000000');
    assert.ok(!left.some((d) => d.startsWith('shard-000000.attempt-1.')), `attempt 1 left: ${left.join(', ')}`);
    for (const d of left) assert.equal(await size(`${d}/done.json`), -1, `${d} was never committed`);
    const summary = JSON.parse(await fs.readFile(outcome.summaryFile, 'utf8')) as BatchSummary;
    assert.equal(summary.shardTimings[0]!.worker, workerB);
    await control.stop();
  });

  test('on Blob Storage', async () => {
    await suite.startControlWorker({ env: azurite.env });
    const local = path.join(suite.scratch, 'blob-in');
    await writeCopies(local, TOTAL, 512);
    await azurite.container('fence');
    for (const name of (await fs.readdir(local)).filter((n) => !n.startsWith('.'))) {
      await azurite.put('fence', `in/${name}`, await fs.readFile(path.join(local, name)));
    }
    const input = job(azurite.url('fence', 'out'), azurite.url('fence', 'in'));
    const container = azurite.service().getContainerClient('fence');
    const staged = async (attempt: number) => {
      const blob = container.getBlockBlobClient(`out/shards/shard-000000/attempt-${attempt}/predictions.jsonl`);
      const list = await blob.getBlockList('all').catch(() => undefined);
      return (list?.uncommittedBlocks?.length ?? 0) + (list?.committedBlocks?.length ?? 0);
    };
    const { outcome, workerB } = await runWithLostAttempt(
      input,
      async () => (await staged(1)) > 0,
      async () => {
        for (let attempt = 2; attempt <= 10; attempt++) if ((await staged(attempt)) > 0) return true;
        return false;
      },
    );
    const text = (await azurite.text('fence', 'out/predictions.jsonl')) ?? '';
    const indices = text
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { index: number }).index);
    record(outcome, indices, 'blob');
    assert.deepEqual(indices, [...Array(TOTAL).keys()], 'each input exactly once, in order');
    const summary = JSON.parse((await azurite.text('fence', 'out/summary.json'))!) as BatchSummary;
    const owner = summary.shardTimings[0]!.attempts;
    assert.ok(owner >= 2, `the shard's output is a later attempt's (attempt ${owner})`);
    assert.equal(summary.shardTimings[0]!.worker, workerB, 'scored by the second worker');
    // predictions.jsonl is that attempt's blob, byte for byte (composed from it alone, one block).
    const shardBlob = container.getBlockBlobClient(`out/shards/shard-000000/attempt-${owner}/predictions.jsonl`);
    assert.equal(text, (await shardBlob.downloadToBuffer()).toString());
    const composed = await container.getBlockBlobClient('out/predictions.jsonl').getBlockList('committed');
    assert.equal(composed.committedBlocks?.length, 1, 'one shard, one block');
  });
});
