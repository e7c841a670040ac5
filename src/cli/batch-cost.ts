/**
 * A batch job's cost in the CLI (docs/costs.md): `--price-table` and `--budget` made into the workflow's
 * `cost` input, and the lines `score` and `score status` print for the ledger and a budget stop.
 */
import type { BudgetStop } from '../shared/batch-types';
import type { BatchCost, BatchCostInput } from '../shared/cost-types';
import { formatMoney } from '../shared/price-table';
import { priceTableFrom } from './budget-flags';
import { CliError } from './cli-error';
import { ExitCode } from './exit-codes';

/** The batch job input's `cost`; a budget that could never be reached is a usage error (exit 2). */
export function batchCostInput(
  flags: { priceTable?: string; budget?: number },
  target: 'local' | 'aks',
): BatchCostInput {
  const priceTable = priceTableFrom(flags.priceTable);
  if (flags.budget !== undefined && target === 'local' && priceTable.localWorkerHourly === undefined) {
    throw new CliError(
      '--budget on local GPU workers needs their price: a price table with "localWorkerHourly" (--price-table or ' +
        'INFERCTL_PRICE_TABLE, docs/costs.md). Without it a local job costs 0 and its budget would never be reached.',
      ExitCode.BadInput,
    );
  }
  return { priceTable, ...(flags.budget !== undefined ? { budget: flags.budget } : {}) };
}

/** "cost: USD 1.23 (price table of 2025-06); budget USD 10.00, 12 %", with the reason for a 0 and the warning. */
export function batchCostLines(c: BatchCost | undefined): string[] {
  if (!c) return [];
  const money = (n: number) => formatMoney(n, c.currency);
  const lines = [`cost: ${money(c.total)} (price table of ${c.priceTableAsOf})${c.note ? `: ${c.note}` : ''}`];
  const b = c.budgetState;
  if (b) {
    const share = Math.round((100 * c.total) / b.budget);
    const state =
      b.state === 'reached'
        ? `spent at ${b.reachedAt}${b.warnedAt ? ` (80 % at ${b.warnedAt})` : ''}: no more shards were started`
        : b.state === 'warned'
          ? `WARNING: over 80 % spent (since ${b.warnedAt}); at 100 % the job stops between shards`
          : 'at 100 % the job stops between shards';
    lines.push(`budget: ${money(b.budget)}, ${share} % spent; ${state}`);
  }
  if (c.unpriced.length) lines.push(`(unpriced, not in the total: ${c.unpriced.join(', ')})`);
  return lines;
}

/** The outcome of a job its budget stopped, in one sentence, with the command that resumes it. */
export function budgetStopMessage(name: string, stopped: BudgetStop): string {
  const money = (n: number) => formatMoney(n, stopped.currency);
  return (
    `Batch job "${name}" stopped by budget: spent ${money(stopped.spent)} of ${money(stopped.budget)}; ` +
    `${stopped.shardsLeft} shard(s) not scored, everything scored is kept. ` +
    `Resume with: inferctl score resume ${name} --budget <more than ${stopped.spent.toFixed(2)}>`
  );
}

/** Thrown (by `score`, `score status`, `score resume`) for a job its budget stopped: exit 3. */
export function budgetStopError(name: string, stopped: BudgetStop): CliError {
  return new CliError(budgetStopMessage(name, stopped), ExitCode.StoppedByBudget);
}
