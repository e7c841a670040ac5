/**
 * `inferctl schedule` with blob inputs and outputs (Azurite): the output template is resolved on the
 * blob prefix, each slot writes its own prefix, and re-running a slot replaces that slot's output
 * (after the input changed, the slot holds the new job's rows only, once). Bad blob locations are
 * usage errors that say how to write them; a SAS in the URL is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { makeColourJpeg } from '../../src/demo/sample-images';
import { useAzurite } from '../helpers/azurite';
import { demoAssets, eventually, startControlWorker, startGpuWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';
import { runInferctl } from '../helpers/cli';

const inferctl = (args: string[]) => runInferctl(args);

const day = (d: Date) => d.toISOString().slice(0, 10);

describe('inferctl schedule on Blob Storage', () => {
  const azurite = useAzurite();
  const controlQueue = uniqueName('sblob-control');
  const gpuQueue = uniqueName('sblob-gpu');
  const name = uniqueName('blobnightly');
  const workers: WorkerProcess[] = [];
  let modelPath: string;

  before(async () => {
    modelPath = (await demoAssets()).modelPath;
    const env = { ...process.env, ...azurite.env };
    workers.push(await startControlWorker(controlQueue, [], env), await startGpuWorker(gpuQueue, [], env));
    await azurite.container('daily');
    await azurite.container('scores');
  });
  after(async () => {
    await inferctl(['schedule', 'delete', name]);
    for (const w of workers) await w.stop();
  });

  async function putImages(from: number, to: number): Promise<void> {
    for (let i = from; i < to; i++) {
      await azurite.put(
        'daily',
        `in/img-${i}.jpg`,
        await makeColourJpeg(['red', 'blue'][i % 2]!, { size: 32, seed: i }),
      );
    }
  }

  async function completedRuns(count: number): Promise<void> {
    await eventually(
      async () => {
        const run = await inferctl(['schedule', 'describe', name, '--json']);
        const runs = (JSON.parse(run.stdout) as { recentRuns: Array<{ status?: string }> }).recentRuns;
        return runs.length >= count && runs.every((r) => r.status === 'COMPLETED') ? true : undefined;
      },
      `${count} completed scheduled run(s)`,
      120_000,
    );
  }

  const rows = async (slot: string) =>
    ((await azurite.text('scores', `nightly/${slot}/predictions.jsonl`)) ?? '').split('\n').filter(Boolean);

  test('a slot writes its own blob prefix; re-running it replaces that output', async () => {
    await putImages(0, 4);
    const created = await inferctl([
      'schedule',
      'create',
      name,
      '--cron',
      '0 2 * * *',
      '--model',
      modelPath,
      '--input',
      azurite.url('daily', 'in'),
      '--output',
      azurite.url('scores', 'nightly/{date}'),
      '--shard-size',
      '3',
      '--task-queue',
      controlQueue,
      '--gpu-queue',
      gpuQueue,
    ]);
    assert.equal(created.code, 0, created.stderr);
    const slot = new Date(Date.now() - 2 * 86400_000);
    const backfill = (from: string, to: string) =>
      inferctl(['schedule', 'backfill', name, '--from', `${day(slot)}T${from}:00Z`, '--to', `${day(slot)}T${to}:00Z`]);

    assert.equal((await backfill('01:00', '03:00')).code, 0);
    await completedRuns(1);
    assert.equal((await rows(day(slot))).length, 4, 'the slot has its own output under the prefix');

    // The input grows; re-running the slot replaces its output (6 rows, once each), nothing left over.
    await putImages(4, 6);
    assert.equal((await backfill('01:30', '02:30')).code, 0);
    await completedRuns(2);
    const again = await rows(day(slot));
    assert.equal(again.length, 6);
    assert.deepEqual(
      again.map((l) => (JSON.parse(l) as { index: number }).index),
      [0, 1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      (await azurite.names('scores', 'nightly/')).sort(),
      ['errors.jsonl', 'predictions.jsonl', 'summary.json'].map((f) => `nightly/${day(slot)}/${f}`),
      "only that slot's final outputs",
    );
  });

  test('bad blob locations are usage errors that say how to write them', async () => {
    const create = (output: string) =>
      inferctl([
        'schedule',
        'create',
        uniqueName('bad'),
        '--cron',
        '0 2 * * *',
        '--model',
        modelPath,
        '--input',
        '/tmp',
        '--output',
        output,
      ]);
    const badAccount = await create('az://Not_An_Account/scores/{date}');
    assert.equal(badAccount.code, 2);
    assert.match(
      badAccount.stderr,
      /"Not_An_Account" is not a storage account name.*az:\/\/<account>\/<container>\/<prefix>/,
    );
    const sas = await create('https://acct123.blob.core.windows.net/scores/x?sv=2024&sig=abc');
    assert.equal(sas.code, 2);
    assert.match(sas.stderr, /SAS token.*AZURE_STORAGE_SAS_TOKEN/);
  });
});
