/**
 * The cost ledger and the price table, as pure functions: a line per stretch of one quantity, the total
 * and rate, when a budget is reached; a user's table checked with every problem reported at once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import {
  LEDGER_LINES_KEPT,
  batchBill,
  deploymentBill,
  localWorkersUnpriced,
  newLedger,
  reachesAt,
  reconcile,
  summarize,
} from '../../src/shared/cost-ledger';
import { DEFAULT_PRICE_TABLE, PriceTableError, checkPriceTable } from '../../src/shared/price-table';
import { loadPriceTable } from '../../src/cost/price-table-file';
import type { PriceTable } from '../../src/shared/cost-types';

const TABLE: PriceTable = { ...DEFAULT_PRICE_TABLE, localReplicaHourly: 3.6 };
const T0 = Date.parse('2026-01-01T00:00:00Z');
const S = 1000;

describe('cost ledger', () => {
  test('a line per stretch at one quantity; the total is lifetime × price', () => {
    const ledger = newLedger(TABLE);
    const local = (replicas: number, serving = true) =>
      deploymentBill(TABLE, { target: 'local', infrastructure: true, serving, replicas, candidates: 0 });
    assert.equal(reconcile(ledger, local(1), T0), true);
    assert.equal(reconcile(ledger, local(1), T0 + 5 * S), false, 'nothing changed');
    assert.equal(reconcile(ledger, local(3), T0 + 10 * S), true);
    assert.equal(reconcile(ledger, local(0), T0 + 20 * S), true);
    assert.equal(reconcile(ledger, local(1, false), T0 + 30 * S), false, 'not serving, nothing bills');
    assert.equal(ledger.lines.length, 2);
    assert.deepEqual(
      ledger.lines.map((l) => [l.quantity, l.from, l.until]),
      [
        [1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:10.000Z'],
        [3, '2026-01-01T00:00:10.000Z', '2026-01-01T00:00:20.000Z'],
      ],
    );
    // 3.6/h is 0.001/s: 1 × 10 s + 3 × 10 s = 0.04.
    const sum = summarize(ledger, T0 + 60 * S);
    assert.equal(sum.total, 0.04);
    assert.equal(sum.hourly, 0);
    assert.equal(sum.currency, 'USD');
  });

  test('when a budget is reached at the rate now, and never at zero rate', () => {
    const ledger = newLedger(TABLE);
    reconcile(ledger, [{ item: 'local replica', quantity: 2, unitHourly: 3.6 }], T0);
    // 0.002/s: 0.1 after 50 s.
    assert.equal(reachesAt(ledger, 0.1, T0), T0 + 50 * S);
    assert.equal(reachesAt(ledger, 0.1, T0 + 60 * S), T0 + 60 * S, 'already spent');
    reconcile(ledger, [], T0 + 10 * S);
    assert.equal(reachesAt(ledger, 0.1, T0 + 10 * S), undefined, 'nothing bills: never');
  });

  test('a batch job: locally each shard in flight at localWorkerHourly (none: 0, and why); on aks its pool', () => {
    const priced: PriceTable = { ...TABLE, localWorkerHourly: 36 };
    const ledger = newLedger(priced);
    reconcile(ledger, batchBill(priced, { shardsInFlight: 2 }), T0);
    reconcile(ledger, batchBill(priced, { shardsInFlight: 1 }), T0 + 10 * S);
    reconcile(ledger, batchBill(priced, { shardsInFlight: 0 }), T0 + 20 * S);
    // 2 × 10 s + 1 × 10 s at 36/h (0.01/s) = 0.3
    assert.equal(summarize(ledger, T0 + 60 * S).total, 0.3);
    assert.equal(localWorkersUnpriced(priced), undefined);
    assert.match(localWorkersUnpriced(TABLE) ?? '', /the price table has no localWorkerHourly/);
    const unpriced = newLedger(TABLE);
    reconcile(unpriced, batchBill(TABLE, { shardsInFlight: 3 }), T0);
    assert.equal(summarize(unpriced, T0 + 60 * S).total, 0);
    assert.deepEqual(summarize(unpriced, T0 + 60 * S).unpriced, [], 'priced at 0, not unpriced');
    // aks: the pool's nodes by VM size, whatever the shards do.
    const pool = { vmSize: 'Standard_NC4as_T4_v3', nodes: 2 };
    assert.deepEqual(batchBill(TABLE, { pool, shardsInFlight: 5 }), [
      { item: 'Standard_NC4as_T4_v3 VM (job GPU pool)', quantity: 2, unitHourly: 0.526 },
    ]);
    assert.equal(
      batchBill(TABLE, { pool: { vmSize: 'Standard_Nope', nodes: 1 }, shardsInFlight: 0 })[0]!.unitHourly,
      null,
    );
    // localWorkerHourly is optional; when given it is a price like the others.
    const { localWorkerHourly: _none, ...withoutWorker } = priced;
    assert.equal(checkPriceTable(withoutWorker, 't').localWorkerHourly, undefined);
    assert.equal(checkPriceTable(priced, 't').localWorkerHourly, 36);
    assert.throws(
      () => checkPriceTable({ ...priced, localWorkerHourly: -1 }, 't'),
      /"localWorkerHourly" must be a price/,
    );
  });

  test('aks: system and GPU pools by VM size, the endpoint, the registry; an unpriced size is listed, not summed', () => {
    const aks = {
      gpuVmSize: 'Standard_NC4as_T4_v3',
      systemVmSize: 'Standard_D2s_v3',
      systemNodeCount: 1,
      existingCluster: false,
    };
    const items = deploymentBill(TABLE, {
      target: 'aks',
      infrastructure: true,
      serving: true,
      replicas: 2,
      candidates: 1,
      aks,
    });
    const by = Object.fromEntries(items.map((i) => [i.item, i]));
    assert.equal(by['Standard_NC4as_T4_v3 VM (GPU pool)']?.quantity, 3, 'a node per replica and candidate');
    assert.equal(by['Standard_D2s_v3 VM (system pool)']?.unitHourly, 0.096);
    assert.equal(by['Standard public IP']?.unitHourly, TABLE.publicIpHourly);
    assert.ok(Math.abs(by['container registry (shared)']!.unitHourly! - TABLE.registryDaily / 24) < 1e-12);
    const atZero = deploymentBill(TABLE, {
      target: 'aks',
      infrastructure: true,
      serving: true,
      replicas: 0,
      candidates: 0,
      aks,
    });
    assert.equal(atZero.find((i) => i.item.includes('GPU pool'))?.quantity, 0, 'the GPU pool at 0 nodes');
    // Autoscaling: the pool's own node count once a scale set it (grown before the replicas, shrunk after).
    const gpuAt = (replicas: number, gpuNodes: number) =>
      deploymentBill(TABLE, {
        target: 'aks',
        infrastructure: true,
        serving: true,
        replicas,
        candidates: 0,
        gpuNodes,
        aks,
      }).find((i) => i.item.includes('GPU pool'))?.quantity;
    assert.equal(gpuAt(1, 3), 3, 'grown for 3 replicas, 1 running yet: 3 nodes billed');
    assert.equal(gpuAt(4, 2), 2, 'the pool says how many nodes (a size with 2 GPUs: 4 replicas on 2 nodes)');
    assert.equal(gpuAt(0, 2), 0, 'at zero replicas the pool is at 0 nodes');
    const ledger = newLedger(TABLE);
    reconcile(
      ledger,
      deploymentBill(TABLE, {
        target: 'aks',
        infrastructure: true,
        serving: false,
        replicas: 1,
        candidates: 0,
        aks: { ...aks, gpuVmSize: 'Standard_NC40ads_H100_v5' },
      }),
      T0,
    );
    const sum = summarize(ledger, T0 + 3600 * S);
    assert.deepEqual(sum.unpriced, ['Standard_NC40ads_H100_v5 VM (GPU pool)']);
    assert.ok(Math.abs(sum.total - (0.096 + TABLE.registryDaily / 24)) < 1e-6);
  });
});

describe('price table', () => {
  test('the shipped table says its date and source and passes its own check', () => {
    assert.match(DEFAULT_PRICE_TABLE.asOf, /^\d{4}-\d{2}/);
    assert.match(DEFAULT_PRICE_TABLE.source, /Azure retail price list/);
    assert.deepEqual(checkPriceTable(JSON.parse(JSON.stringify(DEFAULT_PRICE_TABLE)), 'shipped'), DEFAULT_PRICE_TABLE);
    assert.equal(DEFAULT_PRICE_TABLE.localReplicaHourly, 0);
  });

  test('every problem of a bad table at once, each saying what is expected', () => {
    const bad = {
      currency: 'dollars',
      asOf: 'last week',
      vmHourly: { Standard_D2s_v3: -1 },
      loadBalancerHourly: 'cheap',
      extra: 1,
    };
    const err = (() => {
      try {
        checkPriceTable(bad, '--price-table bad.json');
      } catch (e) {
        return e as PriceTableError;
      }
      return assert.fail('a bad table was accepted');
    })();
    assert.ok(err instanceof PriceTableError);
    for (const expected of [
      /unknown field "extra"/,
      /"currency" must be a three-letter ISO 4217 code/,
      /"asOf" must be the date the prices were read/,
      /"source" must say where the prices come from/,
      /"vmHourly.Standard_D2s_v3" must be a price/,
      /"loadBalancerHourly" must be a price/,
      /"publicIpHourly" must be a price/,
      /"aksControlPlaneHourly" must be/,
    ]) {
      assert.match(err.message, expected);
    }
    assert.match(err.message, /^The price table --price-table bad\.json is not usable/);
  });

  test('a file: --price-table over INFERCTL_PRICE_TABLE over the shipped one; unreadable or not JSON is said so', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'price-'));
    const mine = path.join(dir, 'mine.json');
    fs.writeFileSync(
      mine,
      JSON.stringify({ ...DEFAULT_PRICE_TABLE, currency: 'EUR', asOf: '2026-11-30', source: 'our contract' }),
    );
    assert.equal(loadPriceTable(mine, {}).currency, 'EUR');
    assert.equal(loadPriceTable(undefined, { INFERCTL_PRICE_TABLE: mine }).source, 'our contract');
    assert.equal(loadPriceTable(undefined, {}), DEFAULT_PRICE_TABLE);
    assert.throws(() => loadPriceTable(path.join(dir, 'none.json'), {}), /cannot be read \(ENOENT\)/);
    fs.writeFileSync(path.join(dir, 'broken.json'), '{ "currency": ');
    assert.throws(
      () => loadPriceTable(undefined, { INFERCTL_PRICE_TABLE: path.join(dir, 'broken.json') }),
      /INFERCTL_PRICE_TABLE=[^\n]*broken\.json is not usable:\n  - it is not JSON/,
    );
    fs.rmSync(dir, { recursive: true });
  });
});

test('a ledger that changes for weeks stays small: old closed lines are folded into their sum', () => {
  const ledger = newLedger(TABLE);
  const replicas = (n: number) => [{ item: 'local replica', quantity: n, unitHourly: 3.6 }];
  // 500 wakes of 10 s each, 0.001/s: 5.0 in all.
  for (let i = 0; i < 500; i++) {
    reconcile(ledger, replicas(1), T0 + i * 60 * S);
    reconcile(ledger, [], T0 + i * 60 * S + 10 * S);
  }
  assert.ok(ledger.lines.length <= LEDGER_LINES_KEPT, `${ledger.lines.length} lines kept`);
  assert.equal(ledger.folded!.lines + ledger.lines.length, 500);
  assert.ok(Math.abs(summarize(ledger, T0 + 10 ** 8).total - 5) < 1e-6);
});
