/**
 * Costs and budgets on the local target, with real processes, every flag through `bin/inferctl.js` and a
 * test price table (a local replica priced so that a budget is spent in seconds): the ledger of a
 * deployment next to the hand computation from its step records; a budget that scales to zero (the
 * endpoint kept, a request answered after a wake); one that tears down; a bad price table refused.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { DEFAULT_PRICE_TABLE } from '../../src/shared/price-table';
import type { CostSummary } from '../../src/shared/cost-types';
import type { DeployOutcome, DeployStatus } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { statusQuery } from '../../workflows/deploy';
import { recordFigure } from '../helpers/reliability';
import { demoAssets, eventually, startControlWorker, testClient, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

const BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'inferctl.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function inferctl(args: string[], env?: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { timeout: 120_000, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** A local replica at 360 an hour: 0.1 a second. */
const REPLICA_HOURLY = 360;

describe('costs and budgets (local)', () => {
  const taskQueue = uniqueName('budget-tq');
  let worker: WorkerProcess;
  let assets: Awaited<ReturnType<typeof demoAssets>>;
  let client: Awaited<ReturnType<typeof testClient>>;
  let priceTable: string;
  const names: string[] = [];

  before(async () => {
    assets = await demoAssets();
    worker = await startControlWorker(taskQueue);
    client = await testClient();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'budget-test-'));
    priceTable = path.join(dir, 'prices.json');
    fs.writeFileSync(
      priceTable,
      JSON.stringify({
        ...DEFAULT_PRICE_TABLE,
        currency: 'EUR',
        asOf: '2026-12-06',
        source: 'test: a local replica priced to spend a budget in seconds',
        localReplicaHourly: REPLICA_HOURLY,
      }),
    );
  });
  after(async () => {
    for (const name of names) await inferctl(['teardown', name, '--json']);
    await worker?.stop();
    await client?.close();
  });

  async function deploy(name: string, flags: string[]): Promise<DeployStatus> {
    names.push(name);
    const green = assets.samples.find((s) => s.label === 'green')!;
    const run = await inferctl([
      'deploy',
      '--model',
      assets.modelPath,
      '--name',
      name,
      '--smoke-sample',
      green.path,
      '--json',
      '--task-queue',
      taskQueue,
      '--price-table',
      priceTable,
      ...flags,
    ]);
    assert.equal(run.code, 0, run.stderr);
    return (JSON.parse(run.stdout) as { status: DeployStatus }).status;
  }

  const status = (name: string) => client.client.workflow.getHandle(`deploy-${name}`).query(statusQuery);

  test('the ledger of a deployment scaled 1 → 2 and torn down, next to the hand computation', async () => {
    const name = uniqueName('ledger');
    const deployed = await deploy(name, ['--replicas', '1', '--ttl', 'none']);
    assert.equal(deployed.cost?.currency, 'EUR');
    assert.equal(deployed.cost?.priceTableAsOf, '2026-12-06');
    const scaled = await inferctl(['scale', name, '--replicas', '2']);
    assert.equal(scaled.code, 0, scaled.stderr);
    const shown = await inferctl(['status', name]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /cost: EUR [\d.]+ so far, EUR 720\.00\/h now \(price table of 2026-12-06\)/);
    assert.match(shown.stdout, /1 × local replica at EUR 360\.00\/h, from \S+ until \S+/);
    assert.match(shown.stdout, /2 × local replica at EUR 360\.00\/h, from \S+\n/);
    const json = JSON.parse((await inferctl(['status', name, '--json'])).stdout) as { cost: CostSummary };
    assert.equal(json.cost.hourly, 720);
    const listed = await inferctl(['list', '--json']);
    const row = (JSON.parse(listed.stdout) as Array<{ name: string; cost?: { total: number } }>).find(
      (r) => r.name === name,
    );
    assert.ok(row?.cost && row.cost.total > 0, 'list shows what it has spent');

    const down = await inferctl(['teardown', name, '--json']);
    assert.equal(down.code, 0, down.stderr);
    const outcome = (await client.client.workflow.getHandle(`deploy-${name}`).result()) as DeployOutcome;
    // By hand, from the step records: one replica from the deploy step's start to the scale's end, two
    // from there to the end of teardown.
    const step = (n: string) => outcome.steps.find((s) => s.step === n)!;
    const start = Date.parse(step('deploy').startedAt);
    const scaleEnd = Date.parse(step('scale').startedAt) + step('scale').durationMs!;
    const teardownEnd = Date.parse(step('teardown').startedAt) + step('teardown').durationMs!;
    const perMs = REPLICA_HOURLY / 3_600_000;
    const byHand = perMs * (1 * (scaleEnd - start) + 2 * (teardownEnd - scaleEnd));
    const ledger = outcome.cost!;
    assert.equal(ledger.hourly, 0, 'nothing bills once torn down');
    assert.ok(Math.abs(ledger.total - byHand) < 1e-4, `ledger ${ledger.total} vs by hand ${byHand}`);
    assert.deepEqual(
      outcome.ledger!.lines.map((l) => l.quantity),
      [1, 2],
    );
    const test = 'budget.test.ts';
    recordFigure({
      test,
      figure: 'ledger of a local deployment (1 → 2 replicas at EUR 360/h)',
      value: ledger.total,
      unit: 'EUR',
    });
    recordFigure({
      test,
      figure: 'the same, by hand from its step records',
      value: Math.round(byHand * 1e6) / 1e6,
      unit: 'EUR',
    });
    // An ended deployment's cost comes from its memo.
    const all = await inferctl(['list', '--all']);
    assert.match(all.stdout, new RegExp(`${name}\\s+completed\\s+done\\s+local\\s+EUR ${ledger.total.toFixed(2)}`));
  });

  test('--budget with --min-replicas 0: a warning at 80 %, then zero replicas, the endpoint kept and woken by a request', async () => {
    const name = uniqueName('budget-zero');
    const layout = new LocalLayout(name);
    // 0.1 a second: 80 % of 2.0 after 16 s, all of it after 20 s. (`status`'s warning line: budget-flags.test.ts.)
    const deployed = await deploy(name, [
      '--ttl',
      '1h',
      '--min-replicas',
      '0',
      '--scale-down-after',
      '1h',
      '--wake-timeout',
      '60s',
      '--budget',
      '2',
    ]);
    assert.equal(deployed.cost?.budget?.onBudget, 'scale-to-zero');
    const endpoint = deployed.endpoint!;
    const key = fs.readFileSync(layout.apiKeyFile, 'utf8').trim();
    const spent = await eventually(
      async () => {
        const s = await status(name);
        return s.cost?.budget?.state === 'reached' && s.replicas === 0 && s.scaleToZero?.state === 'cold'
          ? s
          : undefined;
      },
      'the budget enforced',
      60_000,
    );
    assert.match(
      spent.cost!.budget!.action!,
      /budget EUR 2\.00 spent \(EUR [\d.]+\): scaled to zero, the endpoint kept/,
    );
    assert.ok(spent.steps.some((s) => s.step === 'budget-scale-to-zero' && s.ok));
    // Warned at 80 % first, in the status and the worker's log.
    assert.ok(Date.parse(spent.cost!.budget!.warnedAt!) < Date.parse(spent.cost!.budget!.reachedAt!));
    assert.match(worker.output(), /Budget 80 % spent/);
    assert.equal(spent.endpoint, endpoint, 'the endpoint keeps its address');
    assert.equal((await findProcessesByMarker(layout.processMarker)).length, 1, 'only the gateway runs');
    const shown = await inferctl(['status', name]);
    assert.match(shown.stdout, /budget: EUR 2\.00, \d+ % spent; reached at \S+: budget EUR 2\.00 spent/);
    assert.match(worker.output(), /Budget spent/);

    // Still an endpoint: a request wakes it and is answered.
    const image = fs.readFileSync(assets.samples.find((s) => s.label === 'red')!.path);
    const res = await fetch(`${endpoint}/score`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg' },
      body: image,
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(((await res.json()) as { predictions: Array<{ label: string }> }).predictions[0]?.label, 'red');
  });

  test('--budget --on-budget teardown: torn down when spent, and says why', async () => {
    const name = uniqueName('budget-down');
    await deploy(name, ['--ttl', '1h', '--budget', '1', '--on-budget', 'teardown']);
    const outcome = (await client.client.workflow.getHandle(`deploy-${name}`).result()) as DeployOutcome;
    assert.equal(outcome.endedBy, 'budget');
    assert.equal(outcome.cost?.budget?.state, 'reached');
    assert.match(outcome.cost.budget.action!, /budget EUR 1\.00 spent \(EUR [\d.]+\): torn down/);
    assert.ok(outcome.cost.total >= 1, `${outcome.cost.total} spent`);
    assert.ok(outcome.cost.total < 1.5, `${outcome.cost.total}: not much past the budget (teardown takes a moment)`);
    assert.equal((await findProcessesByMarker(new LocalLayout(name).processMarker)).length, 0, 'nothing left running');
    const shown = await inferctl(['status', name]);
    assert.match(shown.stdout, /completed at \S+ \(budget spent\)/);
    assert.match(shown.stdout, /reached at \S+: budget EUR 1\.00 spent \(EUR [\d.]+\): torn down/);
  });

  test('the cost flags are checked before anything starts', async () => {
    const model = assets.modelPath;
    const toZero = await inferctl(['deploy', '--model', model, '--budget', '5', '--on-budget', 'scale-to-zero']);
    assert.equal(toZero.code, 2);
    assert.match(toZero.stderr, /--on-budget scale-to-zero needs --min-replicas 0/);
    const alone = await inferctl(['deploy', '--model', model, '--on-budget', 'teardown']);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--on-budget goes with --budget/);
    const negative = await inferctl(['deploy', '--model', model, '--budget', '-3']);
    assert.equal(negative.code, 2);
    assert.match(negative.stderr, /--budget must be a positive amount/);
    const bad = path.join(path.dirname(priceTable), 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ currency: 'euro', asOf: '2026-12-06', source: 'x' }));
    const refused = await inferctl(['deploy', '--model', model, '--budget', '5'], { INFERCTL_PRICE_TABLE: bad });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /The price table INFERCTL_PRICE_TABLE=\S+bad\.json is not usable/);
    assert.match(refused.stderr, /"currency" must be a three-letter ISO 4217 code/);
    assert.match(refused.stderr, /"vmHourly" must be an object/);
  });
});
