/**
 * Hourly list prices for the dry run's cost estimate. Dated and sourced: prices change, vary by region,
 * and this table is not refreshed automatically (the machine that wrote it had no internet access).
 * Check https://azure.microsoft.com/pricing/calculator/ before relying on a figure.
 */

export const PRICE_TABLE = {
  asOf: '2025-06',
  source:
    'Azure retail price list (Azure Retail Prices API, https://prices.azure.com/api/retail/prices), ' +
    'Linux pay-as-you-go, East US; recorded by hand, not fetched',
  currency: 'USD',
  region: 'eastus',
  /** Per VM per hour. */
  vmHourly: {
    Standard_D2s_v3: 0.096,
    Standard_D4s_v3: 0.192,
    Standard_DS2_v2: 0.146,
    Standard_NC4as_T4_v3: 0.526,
    Standard_NC8as_T4_v3: 0.752,
    // NCv3 (V100) is gone: retired 2025-09-30 (gpu-sizes.ts). NC H100 v5 has no recorded price: unpriced.
    Standard_NC24ads_A100_v4: 3.673,
  } as Record<string, number>,
  /** AKS control plane: the Free tier costs nothing; Standard is per cluster per hour. */
  aksControlPlaneHourly: { free: 0, standard: 0.1 },
  /** Standard Load Balancer (first 5 rules) plus one Standard public IP, per hour. */
  loadBalancerHourly: 0.025 + 0.005,
} as const;

export interface CostLine {
  item: string;
  quantity: number;
  unitHourly?: number;
  hourly?: number;
}

export interface CostEstimate {
  lines: CostLine[];
  /** Sum of the lines with a known price. */
  hourly: number;
  /** Items the table has no price for. */
  unknown: string[];
  note: string;
}

export function estimateHourlyCost(
  pools: { vmSize: string; count: number }[],
  region: string,
  withLoadBalancer = true,
): CostEstimate {
  const lines: CostLine[] = [];
  const unknown: string[] = [];
  for (const pool of pools) {
    const unit = PRICE_TABLE.vmHourly[pool.vmSize];
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
      unitHourly: PRICE_TABLE.loadBalancerHourly,
      hourly: PRICE_TABLE.loadBalancerHourly,
    });
  }
  const hourly = round(lines.reduce((sum, l) => sum + (l.hourly ?? 0), 0));
  const regionNote =
    region.toLowerCase() === PRICE_TABLE.region ? '' : ` Prices are for ${PRICE_TABLE.region}; ${region} differs.`;
  return {
    lines,
    hourly,
    unknown,
    note:
      `Estimate from a price table dated ${PRICE_TABLE.asOf} (${PRICE_TABLE.source}). Excludes disks, ` +
      `egress and the registry.${regionNote}`,
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
