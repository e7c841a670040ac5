/**
 * What a deployment costs and what it may spend. The ledger (src/shared/cost-ledger.ts) is brought in line with
 * what bills each time the status is published (a step begins or ends, a scale, a wake, a rollout stage,
 * teardown), from workflow time: deterministic. `--budget N` runs a watch beside the serving wait: at
 * 80 % a warning (status, log), at 100 % the replicas go to zero (`--on-budget scale-to-zero`, the endpoint
 * kept) or the deployment is torn down (`--on-budget teardown`), and the status says why.
 * The total is also written to the workflow's memo (`cost`), which `list` reads for ended deployments.
 */
import { CancellationScope, condition, isCancellation, log, patched, upsertMemo } from '@temporalio/workflow';

import { deploymentBill, newLedger, reachesAt, reconcile, summarize } from '../../src/shared/cost-ledger';
import { DEFAULT_PRICE_TABLE, formatMoney } from '../../src/shared/price-table';
import { BUDGET_WARNING_SHARE } from '../../src/shared/cost-types';
import type { BudgetStatus, CostLedger, PriceTable } from '../../src/shared/cost-types';
import type { DeployStage } from '../../src/shared/deploy-types';
import { rootMessage } from '../../src/shared/failure-message';
import { scaleTo } from './scale';
import type { DeployState } from './state';

/** Stages in which the replicas (and, on aks, the endpoint's load balancer and IP) exist. */
const SERVING_STAGES: readonly DeployStage[] = ['deploying', 'waiting', 'smoke-testing', 'serving', 'tearing-down'];
/** Rollout stages before its candidate starts. */
const BEFORE_CANDIDATE = ['validating', 'building'];

function priceTable(d: DeployState): PriceTable {
  return d.input.cost?.priceTable ?? DEFAULT_PRICE_TABLE;
}

/** Brings the ledger in line with what bills now; publishes the total (status, memo) when it changed. */
export function keepLedger(d: DeployState): void {
  const { status } = d;
  const table = priceTable(d);
  const ledger = (status.ledger ??= newLedger(table));
  // Teardown has run (its report is in), or the workflow has ended: nothing bills any more.
  const stage = status.teardownRemoved !== undefined ? 'done' : status.stage;
  const rollout = status.rollout;
  const candidates = rollout && !BEFORE_CANDIDATE.includes(rollout.stage) ? d.spec.replicas : 0;
  const changed = reconcile(
    ledger,
    deploymentBill(table, {
      target: d.input.target,
      infrastructure: d.provisioningStarted && !['done', 'failed', 'cancelled'].includes(stage),
      serving: SERVING_STAGES.includes(stage),
      replicas: d.spec.replicas,
      candidates,
      ...(status.gpuNodes !== undefined ? { gpuNodes: status.gpuNodes } : {}),
      ...(d.input.cost?.aks ? { aks: d.input.cost.aks } : {}),
    }),
    Date.now(),
  );
  const budget = status.cost?.budget ?? initialBudget(d);
  status.cost = { ...summarize(ledger, Date.now()), ...(budget ? { budget } : {}) };
  if (changed) publishMemo(d);
}

function initialBudget(d: DeployState): BudgetStatus | undefined {
  const c = d.input.cost;
  if (c?.budget === undefined) return undefined;
  return { budget: c.budget, onBudget: c.onBudget ?? 'teardown', state: 'ok' };
}

/** The memo the Web UI shows and `list` reads: the total and rate when the ledger last changed. */
function publishMemo(d: DeployState): void {
  if (!patched('cost-ledger-memo')) return;
  const c = d.status.cost!;
  upsertMemo({
    cost: {
      currency: c.currency,
      total: c.total,
      hourly: c.hourly,
      at: c.at,
      priceTableAsOf: c.priceTableAsOf,
      ...(c.budget ? { budget: c.budget.budget, budgetState: c.budget.state } : {}),
    },
  });
}

/** Starts the budget watch beside the serving wait, for a deployment with --budget; cancel the scope to stop it. */
export function startBudgetWatch(d: DeployState, toZero: () => Promise<void>): CancellationScope {
  const scope = new CancellationScope();
  scope
    .run(() => budgetWatch(d, toZero))
    .catch((err: unknown) => {
      if (isCancellation(err)) return;
      d.status.lastError = `budget watch stopped: ${rootMessage(err)}`;
      log.error('Budget watch stopped', { error: rootMessage(err) });
      d.recorder.publish();
    });
  return scope;
}

/** Waits for 80 %, warns; waits for 100 %, enforces. Each wait is a timer at the rate now, redone when the ledger changes. */
async function budgetWatch(d: DeployState, toZero: () => Promise<void>): Promise<void> {
  keepLedger(d);
  const ledger = d.status.ledger!;
  const b = d.status.cost!.budget!;
  while (b.state !== 'reached') {
    const threshold = b.state === 'ok' ? b.budget * BUDGET_WARNING_SHARE : b.budget;
    const at = reachesAt(ledger, threshold, Date.now());
    if (at === undefined || at > Date.now()) {
      const seen = version(ledger);
      const changed = () => version(ledger) !== seen;
      if (at === undefined) await condition(changed);
      else await condition(changed, Math.max(1, at - Date.now()));
      continue;
    }
    keepLedger(d);
    const spent = formatMoney(d.status.cost!.total, ledger.currency);
    const of = formatMoney(b.budget, ledger.currency);
    if (b.state === 'ok') {
      b.state = 'warned';
      b.warnedAt = new Date().toISOString();
      log.warn('Budget 80 % spent', { spent, budget: of, onBudget: b.onBudget });
      publishMemo(d);
      d.recorder.publish();
      continue;
    }
    b.state = 'reached';
    b.reachedAt = new Date().toISOString();
    log.warn('Budget spent', { spent, budget: of, onBudget: b.onBudget });
    if (b.onBudget === 'teardown') {
      b.action = `budget ${of} spent (${spent}): torn down`;
      publishMemo(d);
      d.requestTeardown(b.action);
      return;
    }
    b.action = `budget ${of} spent (${spent}): scaled to zero, the endpoint kept; a request still wakes it`;
    await toZero();
    publishMemo(d);
    d.recorder.publish();
  }
}

/** Grows with every line opened or closed. */
function version(ledger: CostLedger): number {
  let closed = 0;
  for (const line of ledger.lines) if (line.until !== undefined) closed++;
  return ledger.lines.length * 2 + closed;
}

/**
 * Until no scale or rollout is in flight, and none that woke in the same activation (the scale-to-zero
 * loop waits on the same condition) has started: its continuation runs before ours re-checks.
 */
export async function untilNoChange(d: DeployState): Promise<void> {
  do {
    await condition(() => !d.changing);
    await Promise.resolve();
  } while (d.changing);
}

/** The budget's scale to zero: a change in flight finishes first; recorded as the step `budget-scale-to-zero`. */
export async function budgetScaleToZero(d: DeployState): Promise<void> {
  const from = d.spec.replicas;
  if (from === 0) return;
  d.changing = true;
  try {
    await d.step(
      'budget-scale-to-zero',
      'serving',
      () => scaleTo(d, 0),
      (r) => `${from} → ${r.replicas} (${d.status.cost?.budget?.action ?? 'budget spent'})`,
    );
  } finally {
    d.changing = false;
  }
  const z = d.status.scaleToZero;
  if (z) Object.assign(z, { state: 'cold', coldSince: new Date().toISOString() });
}
