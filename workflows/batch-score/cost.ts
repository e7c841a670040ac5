/**
 * A batch job's cost ledger and budget (docs/costs.md). The ledger is brought in line with what bills each
 * time a shard starts or settles, from workflow time (deterministic): on aks the job-owned GPU pool's
 * nodes from the pool's creation (the parent closes the line once the pool is removed); locally each shard
 * in flight, a GPU worker busy, at the price table's localWorkerHourly (none: 0, and the ledger says why).
 * The budget is checked between shards: past 80 % a warning (status, log), at 100 % no shard is started any
 * more (those in flight finish), and the job ends stopped by budget. A continue-as-new run and a resumed job
 * carry the ledger: the budget is for the whole job.
 */
import { log, patched, upsertMemo } from '@temporalio/workflow';

import type { BatchCarryOver, BatchScoreInput } from '../../src/shared/batch-types';
import { batchBill, localWorkersUnpriced, newLedger, reconcile, summarize } from '../../src/shared/cost-ledger';
import { BUDGET_WARNING_SHARE } from '../../src/shared/cost-types';
import type { BatchBudgetStatus, BatchCost, CostLedger, PriceTable } from '../../src/shared/cost-types';
import { DEFAULT_PRICE_TABLE, formatMoney } from '../../src/shared/price-table';

export class JobCost {
  readonly ledger: CostLedger;
  readonly budget?: BatchBudgetStatus;
  private readonly table: PriceTable;
  private readonly pool?: { vmSize: string; nodes: number };

  constructor(input: BatchScoreInput, carry: BatchCarryOver | undefined) {
    this.table = input.cost?.priceTable ?? DEFAULT_PRICE_TABLE;
    this.ledger = carry?.cost?.ledger ?? newLedger(this.table);
    const amount = input.cost?.budget;
    if (amount !== undefined) {
      // A continue-as-new run keeps its budget's state; a resume with a new budget starts it again (at once warned if past 80 %).
      const carried = carry?.cost?.budgetState;
      this.budget = carried?.budget === amount ? carried : { budget: amount, state: 'ok' };
    }
    if (input.gpuPool) {
      this.pool = { vmSize: input.gpuPool.vmSize, nodes: input.gpuPool.nodes };
      // The pool bills from its creation, before this workflow started; a carried ledger has the line open already.
      reconcile(this.ledger, this.bill(0), Date.parse(input.gpuPool.since));
    }
  }

  /** Brings the ledger in line with what bills now. */
  keep(shardsInFlight: number): void {
    reconcile(this.ledger, this.bill(shardsInFlight), Date.now());
  }

  /** The ledger summed now, with the budget. */
  summary(): BatchCost {
    const note = this.pool ? undefined : localWorkersUnpriced(this.table);
    return {
      ...summarize(this.ledger, Date.now()),
      ledger: this.ledger,
      ...(note ? { note } : {}),
      ...(this.budget ? { budgetState: { ...this.budget } } : {}),
    };
  }

  /** The budget is spent: no shard may start. */
  get reached(): boolean {
    return this.budget?.state === 'reached';
  }

  /** Checks the budget (a shard boundary): warns past 80 %, marks it reached at 100 %. */
  check(): void {
    const b = this.budget;
    if (!b || b.state === 'reached') return;
    const spent = summarize(this.ledger, Date.now()).total;
    const money = (n: number) => formatMoney(n, this.ledger.currency);
    if (b.state === 'ok' && spent >= b.budget * BUDGET_WARNING_SHARE) {
      b.state = 'warned';
      b.warnedAt = new Date().toISOString();
      log.warn('Budget 80 % spent', { spent: money(spent), budget: money(b.budget) });
      this.publish();
    }
    if (spent >= b.budget) {
      b.state = 'reached';
      b.reachedAt = new Date().toISOString();
      log.warn('Budget spent: no more shards are started', { spent: money(spent), budget: money(b.budget) });
      this.publish();
    }
  }

  /** What the next run (continue-as-new, or a resume) starts from. */
  carryOver(): NonNullable<BatchCarryOver['cost']> {
    return { ledger: this.ledger, ...(this.budget ? { budgetState: { ...this.budget } } : {}) };
  }

  /** Writes the total to the memo (the Web UI; `list`-like readers of ended workflows). */
  publish(): void {
    if (!patched('batch-cost-memo')) return;
    upsertMemo({ cost: costMemo(this.summary()) });
  }

  private bill(shardsInFlight: number) {
    return batchBill(this.table, { ...(this.pool ? { pool: this.pool } : {}), shardsInFlight });
  }
}

/** The memo's `cost`: the deployment's shape (src/cli/budget-flags.ts memoCost reads both). */
export function costMemo(c: BatchCost): Record<string, unknown> {
  return {
    currency: c.currency,
    total: c.total,
    hourly: c.hourly,
    at: c.at,
    priceTableAsOf: c.priceTableAsOf,
    ...(c.note ? { note: c.note } : {}),
    ...(c.budgetState ? { budget: c.budgetState.budget, budgetState: c.budgetState.state } : {}),
  };
}
