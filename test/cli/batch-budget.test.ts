/**
 * A batch job's cost ledger and budget, on real workers (a control worker and a GPU worker running
 * onnxruntime), through bin/inferctl.js: a local job without a price for its GPU workers costs 0 and says
 * why; with a test price table, `score --budget` stops the job between shards (exit 3, the 80 % warning in
 * status and the log), its output holding exactly the done shards' rows; `score resume --budget` finishes
 * it with every input exactly once and the spent amount carried; `schedule create --budget` carries the
 * budget into every scheduled job.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { writeSampleImages } from '../../src/demo/sample-images';
import type { BatchScoreInput } from '../../src/shared/batch-types';
import { DEFAULT_PRICE_TABLE } from '../../src/shared/price-table';
import type { BatchStatusView } from '../../src/cli/commands/score-jobs';
import { runInferctl } from '../helpers/cli';
import { readJsonl } from '../helpers/jsonl';
import { recordFigure, recordReliability, rowAccounting } from '../helpers/reliability';
import { demoAssets, startControlWorker, startGpuWorker, testClient, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

/** A GPU worker busy for an hour costs 3,600: 1 a second of a shard in flight. */
const WORKER_HOURLY = 3600;
const INPUTS = 60;

describe('batch job costs and budgets (local, through bin/inferctl.js)', () => {
  const controlQueue = uniqueName('bbudget-control');
  const gpuQueue = uniqueName('bbudget-gpu');
  const workers: WorkerProcess[] = [];
  let control: WorkerProcess;
  let scratch: string;
  let modelPath: string;
  let priced: string;
  let unpriced: string;
  let pricedPool: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    modelPath = (await demoAssets()).modelPath;
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-bbudget-'));
    await writeSampleImages(path.join(scratch, 'in'), INPUTS);
    const table = { ...DEFAULT_PRICE_TABLE, currency: 'EUR', asOf: '2026-12-06', source: 'test prices' };
    priced = path.join(scratch, 'priced.json');
    unpriced = path.join(scratch, 'unpriced.json');
    await fs.writeFile(priced, JSON.stringify({ ...table, localWorkerHourly: WORKER_HOURLY }));
    await fs.writeFile(unpriced, JSON.stringify(table));
    pricedPool = path.join(scratch, 'pool.json');
    await fs.writeFile(pricedPool, JSON.stringify({ ...table, vmHourly: { Standard_NC4as_T4_v3: 3 } }));
    // INFERCTL_PRICE_TABLE is not this test's to inherit: each command names its table.
    env = { ...process.env, INFERCTL_PRICE_TABLE: '' };
    control = await startControlWorker(controlQueue);
    workers.push(control, await startGpuWorker(gpuQueue));
  });
  after(async () => {
    for (const w of workers) await w.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  const inferctl = (args: string[]) => runInferctl(args, { env, timeoutMs: 180_000 });
  const job = (name: string, output: string, ...more: string[]) => [
    'score',
    '--model',
    modelPath,
    '--input',
    path.join(scratch, 'in'),
    '--output',
    output,
    '--name',
    name,
    '--shard-size',
    '1',
    '--concurrency',
    '1',
    '--task-queue',
    controlQueue,
    '--gpu-queue',
    gpuQueue,
    ...more,
  ];
  const statusOf = async (name: string, code: number): Promise<BatchStatusView> => {
    const run = await inferctl(['score', 'status', name, '--json']);
    assert.equal(run.code, code, run.stderr);
    return JSON.parse(run.stdout) as BatchStatusView;
  };

  test('without a price for local GPU workers: the ledger is 0 and says why; --budget is refused (exit 2)', async () => {
    const name = uniqueName('unpriced');
    const run = await inferctl(job(name, path.join(scratch, 'out-unpriced'), '--price-table', unpriced));
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /^Cost: EUR 0\.00 \(price table of 2026-12-06\): local GPU workers are not priced: the price table has no localWorkerHourly/m,
    );
    const refused = await inferctl(
      job(uniqueName('refused'), path.join(scratch, 'out-refused'), '--price-table', unpriced, '--budget', '5'),
    );
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /--budget on local GPU workers needs their price: a price table with "localWorkerHourly"/,
    );
  });

  test('--budget stops the job between shards (exit 3), keeps exactly the done shards; resume finishes it once', async () => {
    const name = uniqueName('stopped');
    const output = path.join(scratch, 'out-stopped');
    // 0.4 s of a shard in flight: a few of the 60 one-input shards, never all of them.
    const run = await inferctl(job(name, output, '--price-table', priced, '--budget', '0.4'));
    assert.equal(run.code, 3, `exit 3, stopped by budget: ${run.stdout}\n${run.stderr}`);
    assert.match(
      run.stderr,
      new RegExp(
        `Batch job "${name}" stopped by budget: spent EUR [\\d.]+ of EUR 0\\.40\\d*; \\d+ shard\\(s\\) not scored, ` +
          `everything scored is kept\\. Resume with: inferctl score resume ${name} --budget <more than [\\d.]+>`,
      ),
    );
    assert.match(
      run.stdout,
      /^Budget: EUR 0\.40\d*, \d+ % spent; spent at \S+ \(80 % at \S+\): no more shards were started$/m,
    );

    const stopped = await statusOf(name, 3);
    const summary = stopped.summary!;
    const stop = summary.stopped!;
    const { nextShard } = stop.resume.carry;
    assert.ok(nextShard >= 1 && nextShard < INPUTS, `some shards done, some not: ${nextShard} of ${INPUTS}`);
    assert.equal(stop.shardsLeft, INPUTS - nextShard);
    assert.ok(stop.spent >= 0.4, `spent ${stop.spent}, at least the budget`);
    // The 80 % warning: in the status (its time), and in the control worker's log.
    const budget = summary.cost!.budgetState!;
    assert.equal(budget.state, 'reached');
    assert.ok(budget.warnedAt && budget.reachedAt && budget.warnedAt <= budget.reachedAt, JSON.stringify(budget));
    assert.match(control.output(), /Budget 80 % spent/);
    // The output holds exactly the done shards' rows (shard n is input n): 0 lost, 0 duplicated.
    const rows = await readJsonl<{ index: number }>(path.join(output, 'predictions.jsonl'));
    assert.deepEqual(
      rows.map((r) => r.index).sort((a, b) => a - b),
      Array.from({ length: nextShard }, (_, i) => i),
    );
    assert.equal(summary.itemsOk, nextShard);
    // The memo (the Web UI) carries the total and the budget's state.
    const client = await testClient();
    try {
      const memo = (await client.client.workflow.getHandle(`score-${name}`).describe()).memo as {
        cost?: { total: number; budget: number; budgetState: string };
      };
      assert.equal(memo.cost?.budgetState, 'reached');
      assert.equal(memo.cost?.budget, 0.4);
    } finally {
      await client.close();
    }

    // Resuming with a budget below what was spent is refused: the budget is for the whole job.
    const tooLow = await inferctl(['score', 'resume', name, '--budget', '0.3']);
    assert.equal(tooLow.code, 2, tooLow.stderr);
    assert.match(tooLow.stderr, /has spent EUR [\d.]+ already: --budget must be more than that/);

    const resumed = await inferctl(['score', 'resume', name, '--budget', '1000', '--task-queue', controlQueue]);
    assert.equal(resumed.code, 0, `${resumed.stdout}\n${resumed.stderr}`);
    assert.match(resumed.stdout, new RegExp(`^Resuming score-${name}: ${INPUTS - nextShard} shard\\(s\\) left`, 'm'));
    assert.match(resumed.stdout, new RegExp(`^Scored ${INPUTS} of ${INPUTS} inputs \\(0 failed\\)`, 'm'));
    const all = await readJsonl<{ index: number }>(path.join(output, 'predictions.jsonl'));
    assert.deepEqual(
      all.map((r) => r.index).sort((a, b) => a - b),
      Array.from({ length: INPUTS }, (_, i) => i),
      'every input exactly once',
    );
    recordReliability({
      test: 'batch-budget.test.ts (stopped by budget, then resumed)',
      faultsInjected: 0,
      survived: true,
      ...rowAccounting(
        all.map((r) => r.index),
        INPUTS,
      ),
    });
    const done = await statusOf(name, 0);
    const cost = done.summary!.cost!;
    assert.ok(cost.total > stop.spent, `the spent amount carried on: ${cost.total} > ${stop.spent}`);
    assert.equal(cost.budgetState?.budget, 1000);
    assert.equal(cost.budgetState?.state, 'ok');
    recordFigure({
      test: 'batch-budget.test.ts',
      figure: `local batch job stopped by budget (EUR 0.40 at EUR ${WORKER_HOURLY}/h per shard in flight): shards done of ${INPUTS}`,
      value: nextShard,
      unit: 'shards',
    });

    const again = await inferctl(['score', 'resume', name, '--budget', '2000']);
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, /only a job its budget stopped can be resumed/);
  });

  test('score --target aks --dry-run prices the pool with --price-table and says how long --budget lasts', async () => {
    const run = await inferctl([
      ...job('dry', path.join(scratch, 'out-dry')).filter((a) => !['--task-queue', controlQueue].includes(a)),
      '--target',
      'aks',
      '--cluster',
      'ml-aks',
      '--gpu-nodes',
      '2',
      '--dry-run',
      '--price-table',
      pricedPool,
      '--budget',
      '12',
    ]);
    assert.equal(run.code, 0, run.stderr);
    // 2 nodes at EUR 3 an hour: EUR 6/h; EUR 12 buys 2 h of the pool.
    assert.match(run.stdout, /Standard_NC4as_T4_v3 VM +× +2 +EUR 6\.000\/h/);
    assert.match(run.stdout, /--budget EUR 12\.00 buys about 2 h of the pool; then the job stops between shards/);
  });

  test('score status of a running job shows the ledger so far; schedule create carries --budget', async () => {
    const name = uniqueName('sched-budget');
    const created = await inferctl([
      'schedule',
      'create',
      name,
      '--cron',
      '0 3 * * *',
      '--model',
      modelPath,
      '--input',
      path.join(scratch, 'in'),
      '--output',
      path.join(scratch, 'sched', '{date}'),
      '--task-queue',
      controlQueue,
      '--gpu-queue',
      gpuQueue,
      '--price-table',
      priced,
      '--budget',
      '7.5',
      '--json',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const client = await testClient();
    try {
      const described = await client.client.schedule.getHandle(name).describe();
      const [input] = (described.action.args ?? []) as readonly BatchScoreInput[];
      assert.equal(input?.cost?.budget, 7.5);
      assert.equal(input?.cost?.priceTable.localWorkerHourly, WORKER_HOURLY);
    } finally {
      await inferctl(['schedule', 'delete', name]);
      await client.close();
    }
    const refused = await inferctl([
      'schedule',
      'create',
      uniqueName('sched-refused'),
      '--cron',
      '0 3 * * *',
      '--model',
      modelPath,
      '--input',
      path.join(scratch, 'in'),
      '--output',
      path.join(scratch, 'sched2'),
      '--price-table',
      unpriced,
      '--budget',
      '7.5',
    ]);
    assert.equal(refused.code, 2, refused.stderr);

    // A running job's status: its progress carries the ledger summed as asked (a GPU queue no worker polls: it waits).
    const running = uniqueName('running');
    const idleQueue = uniqueName('no-gpu-worker');
    const args = job(
      running,
      path.join(scratch, 'out-running'),
      '--price-table',
      priced,
      '--budget',
      '1000',
      '--detach',
    );
    args[args.indexOf(gpuQueue)] = idleQueue;
    const started = await inferctl(args);
    assert.equal(started.code, 0, started.stderr);
    const view = await statusOf(running, 0);
    assert.equal(view.execution, 'RUNNING');
    assert.equal(view.progress?.cost?.currency, 'EUR');
    assert.equal(view.progress?.cost?.budgetState?.budget, 1000);
    assert.equal(view.progress?.cost?.budgetState?.state, 'ok');
    const c = await testClient();
    try {
      await c.client.workflow.getHandle(`score-${running}`).terminate('test over');
    } finally {
      await c.close();
    }
  });
});
