/**
 * Batch scoring with the user's own script (docs/batch-scripts.md), through a real control worker, a real
 * GPU worker and real Python processes (the environment built from PyPI once per content hash, cached):
 * init() once per process and run(mini_batch) with lists of paths; run() raising fails its mini-batch's
 * inputs; a wrong row count says so; a stuck run() is ended by the mini-batch timeout; init() raising
 * fails the job at once with the traceback; the Python process SIGKILLed mid-shard is a retried attempt
 * with every input exactly once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import type { BatchScoreInput, BatchScriptSpec, ShardRecord } from '../../src/shared/batch-types';
import { FailureType } from '../../src/shared/failure-types';
import { useAzurite } from '../helpers/azurite';
import { expectWorkflowFailure } from '../helpers/failure-chain';
import { readJsonl } from '../helpers/jsonl';
import { recordReliability, rowAccounting } from '../helpers/reliability';
import { BATCH_SCRIPTS, PYTHON_SKIP, SCRIPT_ENVS, SCRIPT_WORKER_ENV } from '../helpers/script-fixtures';
import { workflowSuite } from '../helpers/workflow-suite';
import { eventually, startGpuWorkerCli, uniqueName } from '../helpers/workers';

interface ScriptRow {
  index: number;
  path: string;
  result: { file: string; bytes: number; model: string; pid: number; inits: number; secret: string | null };
}
interface ErrorRow {
  index: number;
  path: string;
  reason: string;
  message: string;
}

/** Python processes, children of `parent`, running a batch app from the test environment cache. */
async function scriptProcessesOf(parent: number): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) !== parent || state === 'Z') continue;
    const environ = await fs.readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '');
    if (environ.split('\0').some((v) => v.startsWith(`AML_APP_ROOT=${path.join(SCRIPT_ENVS, 'batch-apps')}`))) {
      found.push(Number(entry));
    }
  }
  return found;
}

describe('batch scoring with a scoring script', { skip: PYTHON_SKIP }, () => {
  const suite = workflowSuite('bscript', { env: SCRIPT_WORKER_ENV, gpu: {} });
  const azurite = useAzurite();

  async function inputs(name: string, files: string[]): Promise<string> {
    const dir = path.join(suite.scratch, name, 'in');
    await fs.mkdir(dir, { recursive: true });
    for (const [i, f] of files.entries()) await fs.writeFile(path.join(dir, f), 'x'.repeat(i + 1));
    return dir;
  }

  async function model(name: string, text: string): Promise<string> {
    const file = path.join(suite.scratch, name, 'model.txt');
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, text);
    return file;
  }

  function job(
    name: string,
    inputPath: string,
    modelPath: string,
    script: Partial<BatchScriptSpec> & Pick<BatchScriptSpec, 'entryScript'>,
    extra: Partial<BatchScoreInput> = {},
  ): BatchScoreInput {
    return suite.batchInput({
      name,
      inputPath,
      modelPath,
      shardSize: 10,
      maxShardsInFlight: 2,
      errorThreshold: -1,
      script: { miniBatchSize: 4, miniBatchTimeoutSeconds: 60, outputAction: 'jsonl', ...script },
      ...extra,
    });
  }

  const basic = path.join(BATCH_SCRIPTS, 'basic', 'batch_score.py');
  const names = (n: number, special: Record<number, string> = {}) =>
    Array.from({ length: n }, (_, i) => `f-${String(i).padStart(3, '0')}${special[i] ? `-${special[i]}` : ''}.txt`);

  test('every input once: rows from run(), a raising mini-batch and a short one failed with their reasons', async () => {
    const name = uniqueName('rows');
    const files = names(23, { 5: 'raise', 13: 'short' });
    const input = job(name, await inputs(name, files), await model(name, 'model-v1'), { entryScript: basic });
    const outcome = await (await suite.startBatch(input)).result();
    const rows = await readJsonl<ScriptRow>(outcome.predictionsFile);
    const errors = await readJsonl<ErrorRow>(outcome.errorsFile);
    // Shards of 10 in mini-batches of 4: shard 0 is [0-3] [4-7] [8-9], shard 1 [10-13] [14-17] [18-19].
    const raised = [4, 5, 6, 7];
    const short = [10, 11, 12, 13];
    assert.deepEqual(
      errors.map((e) => e.index),
      [...raised, ...short],
    );
    for (const e of errors.filter((e) => raised.includes(e.index))) {
      assert.equal(e.reason, 'run-raised');
      assert.equal(e.message, 'ValueError: cannot score f-005-raise.txt', 'the exception’s last line');
    }
    for (const e of errors.filter((e) => short.includes(e.index))) {
      assert.equal(e.reason, 'row-count');
      assert.match(e.message, /run\(\) returned 3 row\(s\) for a mini-batch of 4 input\(s\)/);
    }
    const ok = [...Array(23).keys()].filter((i) => !raised.includes(i) && !short.includes(i));
    assert.deepEqual(
      rows.map((r) => r.index),
      ok,
      'every other input once, in order',
    );
    for (const r of rows) {
      assert.equal(r.result.file, path.basename(r.path), 'row i is input i');
      assert.equal(r.result.bytes, files.indexOf(path.basename(r.path)) + 1);
      assert.equal(r.result.model, 'model-v1', 'init() read the model from AZUREML_MODEL_DIR');
      assert.equal(r.result.inits, 1, 'init() ran once in each process');
      assert.equal(r.result.secret, null, 'the worker’s environment does not reach the script');
    }
    const pids = new Set(rows.map((r) => r.result.pid));
    assert.equal(pids.size, 1, 'one Python process per worker by default, shared by its 2 shards in flight');
    assert.equal(outcome.itemsOk, ok.length);
    assert.equal(outcome.itemsFailed, 8);
    assert.equal(outcome.executionProvider, 'script');
    recordReliability({
      test: 'script batch: run() raising and a short row count fail only their mini-batches',
      faultsInjected: 2,
      survived: outcome.totalItems === 23,
      ...rowAccounting(
        [...rows, ...errors].map((r) => r.index),
        23,
      ),
    });
  });

  test('inferctl gpu-worker --script-processes 2: the 2 shards in flight each run in a Python process of its own', async () => {
    const name = uniqueName('procs');
    const gpuQueue = uniqueName('bscript-procs-gpu');
    const worker = await startGpuWorkerCli(gpuQueue, ['--script-processes', '2'], suite.workerEnv());
    try {
      const files = names(20);
      // Shards of 10 in mini-batches of 4, each run() 0.5 s: both shards are in flight at once.
      const input = job(
        name,
        await inputs(name, files),
        await model(name, 'sleep=0.5'),
        { entryScript: basic },
        {
          gpuTaskQueue: gpuQueue,
        },
      );
      const outcome = await (await suite.startBatch(input)).result();
      const rows = await readJsonl<ScriptRow>(outcome.predictionsFile);
      assert.deepEqual(
        rows.map((r) => r.index),
        [...Array(20).keys()],
        'every input once, in order',
      );
      const pids = new Set(rows.map((r) => r.result.pid));
      assert.equal(pids.size, 2, 'two Python processes, one per shard in flight');
      for (const r of rows) assert.equal(r.result.inits, 1, 'init() ran once in each process');
      assert.equal(
        (await scriptProcessesOf(worker.child.pid!)).length,
        2,
        'both stay up for the next shards (a process is kept, not restarted)',
      );
    } finally {
      await worker.stop();
    }
  });

  test('a stuck run() is ended by the mini-batch timeout; the next mini-batch gets a fresh process', async () => {
    const name = uniqueName('stuck');
    const files = names(8, { 2: 'stuck' });
    const input = job(name, await inputs(name, files), await model(name, 'model-v1'), {
      entryScript: basic,
      miniBatchSize: 3,
      miniBatchTimeoutSeconds: 2,
    });
    const outcome = await (await suite.startBatch(input)).result();
    const rows = await readJsonl<ScriptRow>(outcome.predictionsFile);
    const errors = await readJsonl<ErrorRow>(outcome.errorsFile);
    assert.deepEqual(
      errors.map((e) => [e.index, e.reason]),
      [
        [0, 'timeout'],
        [1, 'timeout'],
        [2, 'timeout'],
      ],
    );
    assert.match(errors[0]!.message, /longer than the mini-batch timeout \(2 s\)/);
    assert.deepEqual(
      rows.map((r) => r.index),
      [3, 4, 5, 6, 7],
    );
    assert.equal(rows[0]!.result.inits, 1, 'the fresh process ran init() once');
  });

  test('init() raising fails the job at once, non-retryable, with the traceback', async () => {
    const name = uniqueName('init');
    const input = job(name, await inputs(name, names(5)), await model(name, 'm'), {
      entryScript: path.join(BATCH_SCRIPTS, 'init-raises', 'batch_score.py'),
    });
    const chain = await expectWorkflowFailure(await suite.startBatch(input));
    assert.equal(chain.workflow?.type, FailureType.ShardFailed);
    assert.equal(chain.root.type, FailureType.ScriptInitFailed);
    assert.equal(chain.root.nonRetryable, true);
    assert.match(chain.root.message, /init\(\) raised/);
    assert.match(chain.root.message, /batch_score\.py", line \d+, in init/, 'the frame in the user’s code');
    assert.match(chain.root.message, /FileNotFoundError: no model at .*missing\.onnx/);
    assert.equal(chain.activity?.retryState, 'NON_RETRYABLE_FAILURE');
  });

  test('the Python process SIGKILLed mid-shard: the shard is retried, no row lost or duplicated', async () => {
    const name = uniqueName('kill');
    const total = 40;
    const input = job(
      name,
      await inputs(name, names(total)),
      await model(name, 'sleep=0.25'),
      {
        entryScript: basic,
        miniBatchSize: 2,
      },
      { shardSize: total, maxShardsInFlight: 1, keepShards: true, heartbeatTimeoutSeconds: 10 },
    );
    const handle = await suite.startBatch(input);
    const partial = path.join(input.outputDir, 'shards', 'shard-000000.attempt-1.partial', 'predictions.jsonl');
    await eventually(
      async () => ((await fs.stat(partial).catch(() => undefined))?.size ?? 0) > 0 || undefined,
      'attempt 1 to write rows',
      120_000,
    );
    const [pid] = await scriptProcessesOf(suite.gpuWorker.child.pid!);
    assert.ok(pid, 'the GPU worker runs the script in a Python process of its own');
    process.kill(pid, 'SIGKILL');
    const outcome = await handle.result();
    const rows = await readJsonl<ScriptRow>(outcome.predictionsFile);
    const indices = rows.map((r) => r.index);
    const accounting = rowAccounting(indices, total);
    recordReliability({
      test: 'script batch: the Python process SIGKILLed mid-shard',
      faultsInjected: 1,
      survived: outcome.itemsOk === total,
      ...accounting,
    });
    assert.deepEqual(indices, [...Array(total).keys()], 'each input exactly once, in order');
    assert.deepEqual(accounting, { rowsLost: 0, rowsDuplicated: 0 });
    const done = JSON.parse(
      await fs.readFile(path.join(input.outputDir, 'shards', 'shard-000000', 'done.json'), 'utf8'),
    ) as ShardRecord;
    assert.equal(done.attempts, 2, 'the shard was retried once');
    assert.ok(
      rows.some((r) => r.result.pid !== pid),
      'rows after the kill come from a new process',
    );
  });

  test('blob to blob (Azurite): inputs downloaded ahead to local files for run(), rows to the output prefix', async () => {
    const queue = uniqueName('bscript-blob');
    const env = azurite.env;
    await suite.startControlWorker({ taskQueue: queue, env });
    await suite.startGpuWorker({ taskQueue: `${queue}-gpu`, env });
    await azurite.container('script-in');
    await azurite.container('script-out');
    const files = names(11, { 7: 'raise' });
    for (const [i, f] of files.entries()) await azurite.put('script-in', `day1/${f}`, 'y'.repeat(i + 1));
    const name = uniqueName('blob');
    const input = job(
      name,
      azurite.url('script-in', 'day1'),
      await model(name, 'model-blob'),
      { entryScript: basic },
      {
        outputDir: azurite.url('script-out', name),
        gpuTaskQueue: `${queue}-gpu`,
      },
    );
    const outcome = (await (
      await suite.client.workflow.start('batchScore', { taskQueue: queue, workflowId: `score-${name}`, args: [input] })
    ).result()) as { itemsOk: number; itemsFailed: number };
    const lines = <T>(text: string | undefined) =>
      (text ?? '')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as T);
    const rows = lines<ScriptRow>(await azurite.text('script-out', `${name}/predictions.jsonl`));
    const errors = lines<ErrorRow>(await azurite.text('script-out', `${name}/errors.jsonl`));
    assert.deepEqual(
      errors.map((e) => [e.index, e.reason, e.message]),
      [4, 5, 6, 7].map((i) => [i, 'run-raised', 'ValueError: cannot score 7-f-007-raise.txt']),
      'the script saw each blob as a local file (named after its position and blob name)',
    );
    assert.deepEqual(
      rows.map((r) => [r.index, r.path, r.result.bytes]),
      [0, 1, 2, 3, 8, 9, 10].map((i) => [i, azurite.url('script-in', `day1/${files[i]}`), i + 1]),
      'each blob once, in order, its row naming the blob',
    );
    assert.equal(outcome.itemsOk, 7);
    assert.equal(outcome.itemsFailed, 4);
  });
});
