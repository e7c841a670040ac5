/**
 * The dry runs' cost estimate, an hour at a time, from a price table: the shipped one (dated and sourced,
 * src/shared/price-table.ts) or the user's (--price-table, INFERCTL_PRICE_TABLE). Check
 * https://azure.microsoft.com/pricing/calculator/ before relying on a figure from the shipped one.
 */
import { DEFAULT_PRICE_TABLE } from '../../shared/price-table';
import type { PriceTable } from '../../shared/cost-types';

export interface CostLine {
  item: string;
  quantity: number;
  unitHourly?: number;
  hourly?: number;
}

export interface CostEstimate {
  /** The price table's currency. */
  currency: string;
  lines: CostLine[];
  /** Sum of the lines with a known price. */
  hourly: number;
  /** Items the table has no price for. */
  unknown: string[];
  note: string;
}

export interface EstimateOptions {
  /** The endpoint's Standard Load Balancer and public IP (default true). */
  loadBalancer?: boolean;
  /** The container registry, its daily price by the hour (default false: a job's pool uses no new image). */
  registry?: boolean;
  table?: PriceTable;
}

export function estimateHourlyCost(
  pools: { vmSize: string; count: number }[],
  region: string,
  options: EstimateOptions = {},
): CostEstimate {
  const table = options.table ?? DEFAULT_PRICE_TABLE;
  const withLoadBalancer = options.loadBalancer ?? true;
  const lines: CostLine[] = [];
  const unknown: string[] = [];
  for (const pool of pools) {
    const unit = table.vmHourly[pool.vmSize];
    if (unit === undefined) unknown.push(pool.vmSize);
    lines.push({
      item: `${pool.vmSize} VM`,
      quantity: pool.count,
      unitHourly: unit,
      hourly: unit === undefined ? undefined : round(unit * pool.count),
    });
  }
  lines.push({ item: 'AKS control plane (Free tier)', quantity: 1, unitHourly: 0, hourly: 0 });
  if (withLoadBalancer) {
    lines.push({
      item: 'Standard Load Balancer + public IP',
      quantity: 1,
      unitHourly: table.loadBalancerHourly + table.publicIpHourly,
      hourly: round(table.loadBalancerHourly + table.publicIpHourly),
    });
  }
  if (options.registry) {
    const unit = table.registryDaily / 24;
    lines.push({
      item: 'Container registry (its daily price)',
      quantity: 1,
      unitHourly: round(unit),
      hourly: round(unit),
    });
  }
  const hourly = round(lines.reduce((sum, l) => sum + (l.hourly ?? 0), 0));
  const regionNote =
    table.region === undefined || region.toLowerCase() === table.region.toLowerCase()
      ? ''
      : ` Prices are for ${table.region}; ${region} differs.`;
  return {
    currency: table.currency,
    lines,
    hourly,
    unknown,
    note:
      `Estimate in ${table.currency} from a price table dated ${table.asOf} (${table.source}). ` +
      `Excludes disks and egress${options.registry ? '' : ' and the registry'}.${regionNote}`,
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** "$1.23" in US dollars, "EUR 1.23" otherwise. */
export function moneySymbol(currency: string): string {
  return currency === 'USD' ? '$' : `${currency} `;
}
