/**
 * The price table: the shipped default (dated, sourced) and the check a user's own table passes before
 * anything uses it (every problem at once). Workflow-safe: no I/O (the file is read by price-table-file.ts).
 */
import type { PriceTable } from './cost-types';

/**
 * Hourly list prices. Prices change and vary by region; this table is not refreshed automatically (the
 * machine that wrote it had no internet access). Check https://azure.microsoft.com/pricing/calculator/, or
 * pass your own table with --price-table (docs/costs.md).
 */
export const DEFAULT_PRICE_TABLE: PriceTable = {
  currency: 'USD',
  asOf: '2025-06',
  source:
    'Azure retail price list (Azure Retail Prices API, https://prices.azure.com/api/retail/prices), ' +
    'Linux pay-as-you-go, East US; recorded by hand, not fetched',
  region: 'eastus',
  vmHourly: {
    Standard_D2s_v3: 0.096,
    Standard_D4s_v3: 0.192,
    Standard_DS2_v2: 0.146,
    Standard_NC4as_T4_v3: 0.526,
    Standard_NC8as_T4_v3: 0.752,
    // NCv3 (V100) is gone: retired 2025-09-30 (gpu-sizes.ts). NC H100 v5 has no recorded price: unpriced.
    Standard_NC24ads_A100_v4: 3.673,
  },
  aksControlPlaneHourly: { free: 0, standard: 0.1 },
  loadBalancerHourly: 0.025,
  publicIpHourly: 0.005,
  // Azure Container Registry, Basic tier.
  registryDaily: 0.167,
  localReplicaHourly: 0,
};

/** Thrown when a price table (a file given with --price-table or INFERCTL_PRICE_TABLE) is not usable. */
export class PriceTableError extends Error {
  readonly problems: readonly string[];
  constructor(
    readonly where: string,
    problems: string[],
  ) {
    super(
      `The price table ${where} is not usable:\n${problems.map((p) => `  - ${p}`).join('\n')}\n` +
        'Fix it (the format is in docs/costs.md), or leave out --price-table to use the shipped one.',
    );
    this.name = 'PriceTableError';
    this.problems = problems;
  }
}

const NUMBER_FIELDS = ['loadBalancerHourly', 'publicIpHourly', 'registryDaily', 'localReplicaHourly'] as const;
const KNOWN_FIELDS = new Set<string>([
  'currency',
  'asOf',
  'source',
  'region',
  'vmHourly',
  'aksControlPlaneHourly',
  ...NUMBER_FIELDS,
  'localWorkerHourly',
  '$comment',
]);

/** The table, checked: every problem is reported at once. `where` names it in the message. */
export function checkPriceTable(value: unknown, where: string): PriceTable {
  const problems: string[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PriceTableError(where, ['it must be a JSON object']);
  }
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) if (!KNOWN_FIELDS.has(key)) problems.push(`unknown field "${key}"`);
  if (typeof v.currency !== 'string' || !/^[A-Z]{3}$/.test(v.currency)) {
    problems.push(`"currency" must be a three-letter ISO 4217 code such as "USD" (got ${JSON.stringify(v.currency)})`);
  }
  if (typeof v.asOf !== 'string' || !/^\d{4}-\d{2}(-\d{2})?$/.test(v.asOf)) {
    problems.push(
      `"asOf" must be the date the prices were read, YYYY-MM or YYYY-MM-DD (got ${JSON.stringify(v.asOf)})`,
    );
  }
  if (typeof v.source !== 'string' || v.source.trim() === '') {
    problems.push('"source" must say where the prices come from (a price list, a contract)');
  }
  if (v.region !== undefined && typeof v.region !== 'string') problems.push('"region" must be a string');
  const price = (field: string, x: unknown) => {
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) {
      problems.push(`"${field}" must be a price: a number ≥ 0 (got ${JSON.stringify(x)})`);
    }
  };
  for (const field of NUMBER_FIELDS) price(field, v[field]);
  if (v.localWorkerHourly !== undefined) price('localWorkerHourly', v.localWorkerHourly);
  const vm = v.vmHourly;
  if (typeof vm !== 'object' || vm === null || Array.isArray(vm)) {
    problems.push('"vmHourly" must be an object of VM size → price per hour, e.g. {"Standard_NC4as_T4_v3": 0.526}');
  } else {
    for (const [size, x] of Object.entries(vm)) price(`vmHourly.${size}`, x);
  }
  const plane = v.aksControlPlaneHourly;
  if (typeof plane !== 'object' || plane === null) {
    problems.push('"aksControlPlaneHourly" must be {"free": …, "standard": …}');
  } else {
    const p = plane as Record<string, unknown>;
    price('aksControlPlaneHourly.free', p.free);
    price('aksControlPlaneHourly.standard', p.standard);
  }
  if (problems.length > 0) throw new PriceTableError(where, problems);
  const table = v as unknown as PriceTable & { $comment?: unknown };
  return {
    currency: table.currency,
    asOf: table.asOf,
    source: table.source,
    ...(table.region !== undefined ? { region: table.region } : {}),
    vmHourly: { ...table.vmHourly },
    aksControlPlaneHourly: { free: table.aksControlPlaneHourly.free, standard: table.aksControlPlaneHourly.standard },
    loadBalancerHourly: table.loadBalancerHourly,
    publicIpHourly: table.publicIpHourly,
    registryDaily: table.registryDaily,
    localReplicaHourly: table.localReplicaHourly,
    ...(table.localWorkerHourly !== undefined ? { localWorkerHourly: table.localWorkerHourly } : {}),
  };
}

/** "USD 12.34" */
export function formatMoney(amount: number, currency: string): string {
  return `${currency} ${amount.toFixed(amount !== 0 && Math.abs(amount) < 0.1 ? 4 : 2)}`;
}
