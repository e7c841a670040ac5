/**
 * Batch scoring from Blob Storage to Blob Storage, against Azurite (strict mode): inputs listed from a
 * prefix, the model read from a blob, per-shard blobs committed once, predictions.jsonl composed
 * server-side from the shards' blobs (its committed blocks are the shards'), shard blobs removed after;
 * with the account key (connection string) and with a container SAS only; and a GPU worker SIGKILLed mid-shard:
 * every input exactly once in the blob output.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, test } from 'node:test';

import { parseNpyHeader } from '../../src/batch/npy';
import { makeColourJpeg } from '../../src/demo/sample-images';
import { readModelInfo } from '../../src/model/model-info';
import type { BatchSummary } from '../../src/shared/batch-types';
import type { BatchOutcome } from '../../workflows/batch-score';
import { useAzurite } from '../helpers/azurite';
import { recordReliability, rowAccounting } from '../helpers/reliability';
import { workflowSuite } from '../helpers/workflow-suite';
import { eventually, uniqueName } from '../helpers/workers';

describe('batchScore on Blob Storage (Azurite)', () => {
  const suite = workflowSuite('blob', { control: false });
  const azurite = useAzurite();

  /** Uploads `count` JPEGs (a few distinct colours) as <prefix>/img-000000.jpg …, plus a hidden blob. */
  async function uploadImages(container: string, prefix: string, count: number, size = 64): Promise<string[]> {
    const labels = ['red', 'green', 'blue', 'yellow'];
    const bodies = await Promise.all(labels.map((l, i) => makeColourJpeg(l, { size, seed: i })));
    await azurite.container(container);
    const names = Array.from({ length: count }, (_, i) => `${prefix}/img-${String(i).padStart(6, '0')}.jpg`);
    for (let i = 0; i < count; i += 16) {
      await Promise.all(names.slice(i, i + 16).map((n, j) => azurite.put(container, n, bodies[(i + j) % 4]!)));
    }
    await azurite.put(container, `${prefix}/.hidden/skip.jpg`, bodies[0]!);
    return names;
  }

  const lines = <T>(text: string | undefined) =>
    (text ?? '')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as T);

  test('blob to blob with a connection string: each input once, in order, composed server-side', async () => {
    const env = azurite.env;
    const workers = [await suite.startControlWorker({ env }), await suite.startGpuWorker({ env })];
    const names = await uploadImages('inputs', 'day1', 23);
    await azurite.put('inputs', 'day1/broken.jpg', 'not an image');
    await azurite.container('models');
    await azurite.put('models', 'tiny/model.onnx', await fs.readFile(suite.assets.modelPath));
    await azurite.container('scores');

    const input = suite.batchInput({
      inputPath: azurite.url('inputs', 'day1'),
      modelPath: azurite.url('models', 'tiny/model.onnx'),
      outputDir: azurite.url('scores', 'run-1'),
      shardSize: 5,
      rawOutputs: true,
    });
    const outcome: BatchOutcome = await (await suite.startBatch(input)).result();
    assert.equal(outcome.totalItems, 24);
    assert.equal(outcome.itemsOk, 23);
    assert.equal(outcome.itemsFailed, 1);
    assert.equal(outcome.predictionsFile, azurite.url('scores', 'run-1/predictions.jsonl'));

    const rows = lines<{ index: number; path: string; predictions: Array<{ label: string }> }>(
      await azurite.text('scores', 'run-1/predictions.jsonl'),
    );
    const all = [...names, 'day1/broken.jpg'].sort();
    const expected = all.filter((n) => n !== 'day1/broken.jpg');
    assert.deepEqual(
      rows.map((r) => r.path),
      expected.map((n) => azurite.url('inputs', n)),
      'every blob once, in name order, hidden ones skipped',
    );
    assert.deepEqual(
      rows.map((r) => r.index),
      expected.map((n) => all.indexOf(n)),
    );
    for (const r of rows) {
      const i = Number(/img-(\d+)/.exec(r.path)![1]);
      assert.equal(r.predictions[0]!.label, ['red', 'green', 'blue', 'yellow'][i % 4], `${r.path} scored`);
    }
    const errors = lines<{ path: string; reason: string }>(await azurite.text('scores', 'run-1/errors.jsonl'));
    assert.deepEqual(
      errors.map((e) => [e.path, e.reason]),
      [[azurite.url('inputs', 'day1/broken.jpg'), 'unsupported-format']],
    );

    // Composed from the shards' blobs: one committed block per shard, none downloaded and re-uploaded.
    const scores = azurite.service().getContainerClient('scores');
    const blocks = await scores.getBlockBlobClient('run-1/predictions.jsonl').getBlockList('committed');
    assert.equal(blocks.committedBlocks?.length, 5, 'one block per shard');
    const raw = await scores.getBlockBlobClient('run-1/raw.npy').downloadToBuffer();
    assert.ok(raw.subarray(0, 6).equals(Buffer.from('\x93NUMPY', 'latin1')), 'raw.npy is NumPy');
    const summary = JSON.parse((await azurite.text('scores', 'run-1/summary.json'))!) as BatchSummary;
    assert.equal(summary.itemsOk, 23);
    assert.deepEqual(summary.rawShape, [23, (await readModelInfo(suite.assets.modelPath)).labels.length]);
    assert.equal(raw.length, parseNpyHeader(raw).dataOffset + 23 * summary.rawShape[1] * 4, 'a row per scored input');
    assert.deepEqual(await azurite.names('scores', 'run-1/shards/'), [], 'shard blobs removed');
    assert.deepEqual(await azurite.names('scores', 'run-1/manifest/'), [], 'shard lists removed');
    assert.deepEqual(
      (await azurite.names('scores', 'run-1/')).sort(),
      ['errors.jsonl', 'predictions.jsonl', 'raw.npy', 'summary.json'].map((n) => `run-1/${n}`),
    );
    for (const w of workers) await w.stop(); // the next test's workers know Azurite by a SAS only
  });

  test('SAS only, a GPU worker SIGKILLed mid-shard: every input exactly once in the blob output', async () => {
    // These workers know Azurite only by a container SAS; the locations name its endpoint.
    await azurite.container('kill');
    const env = {
      AZURE_STORAGE_SAS_TOKEN: azurite.containerSas('kill'),
      AZURE_STORAGE_CONNECTION_STRING: '',
      INFERCTL_BLOB_ENDPOINTS: azurite.endpoint, // the operator names the endpoint that may receive the SAS
    };
    const gpuTaskQueue = uniqueName('blob-kill-gpu');
    await suite.startControlWorker({ env });
    const total = 120;
    await uploadImages('kill', 'imgs', total, 512);
    const input = suite.batchInput({
      inputPath: azurite.httpUrl('kill', 'imgs'),
      outputDir: azurite.httpUrl('kill', 'job'),
      shardSize: 60,
      batchSize: 4,
      maxShardsInFlight: 1,
      errorThreshold: 0,
      gpuTaskQueue,
      heartbeatTimeoutSeconds: 3,
    });
    const victim = await suite.startGpuWorker({ taskQueue: gpuTaskQueue, env, args: ['--max-concurrent-shards', '1'] });
    const handle = await suite.startBatch(input);

    // Kill once shard 0's first attempt has staged rows, long before it commits.
    const staged = azurite
      .service()
      .getContainerClient('kill')
      .getBlockBlobClient('job/shards/shard-000000/attempt-1/predictions.jsonl');
    const blocksAtKill = await eventually(
      async () => {
        const list = await staged.getBlockList('uncommitted').catch(() => undefined);
        const n = list?.uncommittedBlocks?.length ?? 0;
        return n > 0 ? n : undefined;
      },
      'shard 0 to stage rows',
      90_000,
    );
    await victim.kill();
    assert.ok(blocksAtKill < 15, `killed mid-shard (${blocksAtKill} of 15 batches staged)`);

    await suite.startGpuWorker({ taskQueue: gpuTaskQueue, env });
    const outcome: BatchOutcome = await handle.result();
    const rows = lines<{ index: number }>(await azurite.text('kill', 'job/predictions.jsonl'));
    recordReliability({
      test: 'batch on blob storage: GPU worker SIGKILLed mid-shard',
      faultsInjected: 1,
      survived: outcome.itemsOk === total,
      ...rowAccounting(
        rows.map((r) => r.index),
        total,
      ),
    });
    assert.equal(outcome.itemsOk, total);
    assert.deepEqual(
      rows.map((r) => r.index),
      [...Array(total).keys()],
      'each index exactly once, in order',
    );
    const summary = JSON.parse((await azurite.text('kill', 'job/summary.json'))!) as BatchSummary;
    const first = summary.shardTimings.find((s) => s.shard === 0)!;
    assert.ok(first.attempts >= 2, `shard 0's output is a later attempt's (attempt ${first.attempts})`);
  });
});
