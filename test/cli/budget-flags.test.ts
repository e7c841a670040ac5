/**
 * What `status` prints for a deployment's cost in each budget state (the lines themselves: the budget
 * test through bin/inferctl.js cannot stop a running budget between 80 % and 100 % on a loaded machine).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { costLines } from '../../src/cli/budget-flags';
import { newLedger, reconcile } from '../../src/shared/cost-ledger';
import type { BudgetStatus } from '../../src/shared/cost-types';
import type { DeployStatus } from '../../src/shared/deploy-types';
import { DEFAULT_PRICE_TABLE } from '../../src/shared/price-table';

function status(budget: BudgetStatus, lines: number): DeployStatus {
  const ledger = newLedger(DEFAULT_PRICE_TABLE);
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 0; i < lines; i++) {
    reconcile(ledger, [{ item: 'local replica', quantity: 1 + (i % 2), unitHourly: 36 }], t0 + i * 100_000);
  }
  reconcile(ledger, [], t0 + lines * 100_000);
  return {
    name: 'x',
    target: 'local',
    stage: 'done',
    replicas: 0,
    steps: [],
    ledger,
    cost: {
      currency: 'USD',
      total: 0,
      hourly: 0,
      at: new Date(t0 + lines * 100_000).toISOString(),
      unpriced: [],
      priceTableAsOf: '2025-06',
      budget,
    },
  };
}

test('status prints the warning past 80 %, the action once reached, and the latest ledger lines', () => {
  const warned = costLines(status({ budget: 5, onBudget: 'teardown', state: 'warned', warnedAt: 'T' }, 1), false);
  // One replica for 100 s at 36/h: 1.00 of 5.
  assert.equal(warned[0], '  cost: USD 1.00 so far (price table of 2025-06)');
  assert.equal(
    warned[1],
    '  budget: USD 5.00, 20 % spent; WARNING: over 80 % spent (since T); at 100 % it will tear down',
  );
  const reached = costLines(
    status({ budget: 5, onBudget: 'scale-to-zero', state: 'reached', reachedAt: 'R', action: 'scaled' }, 30),
    false,
  );
  assert.equal(reached[1], '  budget: USD 5.00, 900 % spent; reached at R: scaled');
  assert.equal(reached[2], '    (20 earlier line(s); --json has the ledger)');
  assert.equal(reached.length, 3 + 10);
  assert.match(
    reached.at(-1)!,
    /^ {4}2 × local replica at USD 36\.00\/h, from 2026-01-01T00:48:20\.000Z until 2026-01-01T00:50:00\.000Z$/,
  );
});
