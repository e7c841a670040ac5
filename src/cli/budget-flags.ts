/**
 * The cost flags of `deploy` (and `score`): `--price-table FILE` (else INFERCTL_PRICE_TABLE, else the shipped
 * table), `--budget N` in the table's currency, `--on-budget scale-to-zero|teardown`; checked here and made
 * into the workflow's `cost` input. And how `status` and `list` print a ledger (docs/costs.md).
 */
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import type { Command, OptionValues } from '@commander-js/extra-typings';

import { summarize } from '../shared/cost-ledger';
import { PriceTableError, formatMoney } from '../shared/price-table';
import { PRICE_TABLE_ENV, loadPriceTable } from '../cost/price-table-file';
import type { AksBillShape, CostInput, CostSummary, OnBudget, PriceTable } from '../shared/cost-types';
import type { DeployStatus } from '../shared/deploy-types';
import type { AksDeploymentOptions, TargetKind } from '../shared/target-types';
import { AKS_DEFAULTS } from '../targets/aks/aks-config';
import { CliError } from './cli-error';

/** The ledger lines `status` prints, the latest. */
const SHOWN_LINES = 10;

export interface BudgetFlags {
  priceTable?: string;
  budget?: number;
  onBudget?: OnBudget;
}

/** A budget: a positive amount. */
export function amount(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError(`${flag} must be a positive amount in the price table's currency (e.g. 200).`);
    }
    return n;
  };
}

export function addPriceTableOption<Args extends unknown[], Opts extends OptionValues>(cmd: Command<Args, Opts>) {
  return cmd.option(
    '--price-table <file>',
    `prices (JSON, docs/costs.md) for the cost ledger, the budget and the dry run (default: $${PRICE_TABLE_ENV}, else the shipped table)`,
  );
}

/** Adds --price-table, --budget and --on-budget to `deploy`. */
export function addBudgetOptions<Args extends unknown[], Opts extends OptionValues>(cmd: Command<Args, Opts>) {
  return addPriceTableOption(cmd)
    .option(
      '--budget <amount>',
      "stop billing past this much (the price table's currency): a warning at 80 %, --on-budget at 100 %",
      amount('--budget'),
    )
    .addOption(
      new Option(
        '--on-budget <action>',
        'with --budget: scale-to-zero (needs --min-replicas 0; the endpoint is kept) or teardown (default: scale-to-zero with --min-replicas 0, else teardown)',
      ).choices(['scale-to-zero', 'teardown'] as const),
    );
}

/** The price table the flags name, or the CLI error that says what is wrong with it (exit 2). */
export function priceTableFrom(file: string | undefined): PriceTable {
  try {
    return loadPriceTable(file);
  } catch (err) {
    if (err instanceof PriceTableError) throw new CliError(err.message, 2);
    throw err;
  }
}

/** The dry run's price table and budget. */
export function dryRunCost(flags: BudgetFlags): { priceTable: PriceTable; budget?: number } {
  return {
    priceTable: priceTableFrom(flags.priceTable),
    ...(flags.budget !== undefined ? { budget: flags.budget } : {}),
  };
}

/** The deploy input's `cost`; a flag without what it needs is exit 2. */
export function costInput(
  flags: BudgetFlags,
  target: TargetKind,
  scalesToZero: boolean,
  aks?: AksDeploymentOptions,
): CostInput {
  if (flags.onBudget !== undefined && flags.budget === undefined)
    throw new CliError('--on-budget goes with --budget.', 2);
  const onBudget = flags.onBudget ?? (scalesToZero ? 'scale-to-zero' : 'teardown');
  if (flags.budget !== undefined && onBudget === 'scale-to-zero' && !scalesToZero) {
    throw new CliError(
      '--on-budget scale-to-zero needs --min-replicas 0 (the endpoint stays and wakes on a request); or use --on-budget teardown.',
      2,
    );
  }
  return {
    priceTable: priceTableFrom(flags.priceTable),
    ...(flags.budget !== undefined ? { budget: flags.budget, onBudget } : {}),
    ...(target === 'aks' ? { aks: aksBillShape(aks ?? {}) } : {}),
  };
}

function aksBillShape(aks: AksDeploymentOptions): AksBillShape {
  return {
    gpuVmSize: aks.gpuVmSize ?? AKS_DEFAULTS.gpuVmSize,
    ...(aks.gpuNodeCount !== undefined ? { gpuNodeCount: aks.gpuNodeCount } : {}),
    systemVmSize: AKS_DEFAULTS.systemVmSize,
    systemNodeCount: AKS_DEFAULTS.systemNodeCount,
    existingCluster: aks.cluster !== undefined,
  };
}

/** The ledger summed now (a running deployment's open lines run to this moment), with its budget. */
export function costNow(status: DeployStatus, running: boolean): CostSummary | undefined {
  if (!status.ledger) return status.cost;
  const at = running ? Date.now() : Date.parse(status.cost?.at ?? new Date().toISOString());
  return { ...summarize(status.ledger, at), ...(status.cost?.budget ? { budget: status.cost.budget } : {}) };
}

/** `status`'s lines for the cost: the total, the rate, the budget, the resources billed. */
export function costLines(status: DeployStatus, running: boolean): string[] {
  const c = costNow(status, running);
  if (!c) return [];
  const money = (n: number) => formatMoney(n, c.currency);
  const lines = [
    `  cost: ${money(c.total)} so far${running ? `, ${money(c.hourly)}/h now` : ''} (price table of ${c.priceTableAsOf})`,
  ];
  const b = c.budget;
  if (b) {
    const share = Math.round((c.total / b.budget) * 100);
    const state =
      b.state === 'reached'
        ? `reached at ${b.reachedAt}: ${b.action}`
        : b.state === 'warned'
          ? `WARNING: over 80 % spent (since ${b.warnedAt}); at 100 % it will ${b.onBudget === 'teardown' ? 'tear down' : 'scale to zero'}`
          : `at 100 % it will ${b.onBudget === 'teardown' ? 'tear down' : 'scale to zero'}`;
    lines.push(`  budget: ${money(b.budget)}, ${share} % spent; ${state}`);
  }
  const all = status.ledger?.lines ?? [];
  const earlier = all.length - SHOWN_LINES + (status.ledger?.folded?.lines ?? 0);
  if (earlier > 0) lines.push(`    (${earlier} earlier line(s); --json has the ledger)`);
  for (const line of all.slice(-SHOWN_LINES)) {
    const price = line.unitHourly === null ? 'no price in the table' : `${money(line.unitHourly)}/h`;
    lines.push(
      `    ${line.quantity} × ${line.item} at ${price}, from ${line.from}${line.until ? ` until ${line.until}` : ''}`,
    );
  }
  if (c.unpriced.length) lines.push(`  (unpriced, not in the total: ${c.unpriced.join(', ')})`);
  return lines;
}

/** The cost the workflow last wrote to its memo (budget.ts): what `list` shows for an ended deployment. */
export function memoCost(memo: Record<string, unknown> | undefined): {
  cost?: { currency: string; total: number; budget?: number };
} {
  const c = memo?.cost as { currency?: unknown; total?: unknown; budget?: unknown } | undefined;
  if (!c || typeof c.currency !== 'string' || typeof c.total !== 'number') return {};
  return {
    cost: { currency: c.currency, total: c.total, ...(typeof c.budget === 'number' ? { budget: c.budget } : {}) },
  };
}
