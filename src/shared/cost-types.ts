/**
 * Costs: the price table (a file a user can replace with their negotiated prices), the ledger a deploy or
 * batch workflow keeps of what it bills, and the budget it enforces. Plain data: it travels in workflow
 * inputs and statuses. The functions are in cost-ledger.ts and price-table.ts beside it; the file is read by src/cost/.
 */

/** Hourly prices, in one currency, read on one date. The shipped default is price-table.ts. */
export interface PriceTable {
  /** ISO 4217 code, e.g. USD: every price and every budget is in it. */
  currency: string;
  /** When the prices were read: YYYY-MM or YYYY-MM-DD. */
  asOf: string;
  /** Where they came from (a price list, a contract). */
  source: string;
  /** The Azure region the prices are for, when they are region prices. */
  region?: string;
  /** Per VM per hour, by VM size: the GPU nodes and the cluster's system nodes. */
  vmHourly: Record<string, number>;
  /** AKS control plane per cluster per hour, by tier. */
  aksControlPlaneHourly: { free: number; standard: number };
  /** A Standard Load Balancer (its first rules), per hour. */
  loadBalancerHourly: number;
  /** A Standard public IP address, per hour. */
  publicIpHourly: number;
  /** The container registry, per day (Azure prices registries by the day). */
  registryDaily: number;
  /** One replica of the local target, per hour: 0 by default (your own machine); tests price it. */
  localReplicaHourly: number;
  /**
   * A local batch job's GPU worker, per shard in flight per hour. Optional: left out, local batch jobs are
   * not priced (your own machines) and their ledger says so.
   */
  localWorkerHourly?: number;
}

/** One billed resource over one stretch of time at one quantity (a change of quantity starts a new line). */
export interface LedgerLine {
  /** What is billed, e.g. "Standard_NC4as_T4_v3 VM (GPU pool)", "local replica". */
  item: string;
  quantity: number;
  /** Per unit per hour; null when the price table has no price for it (it is then listed as unpriced). */
  unitHourly: number | null;
  /** Workflow time, ISO 8601. */
  from: string;
  /** Workflow time, ISO 8601; open while left out. */
  until?: string;
}

/** What a deployment or batch job has billed so far, kept by its workflow as resources come and go. */
export interface CostLedger {
  currency: string;
  /** The price table's date and source, for anyone reading the figures later. */
  priceTableAsOf: string;
  priceTableSource: string;
  lines: LedgerLine[];
  /**
   * The cost of closed lines folded away to keep the ledger small (a deployment that scales to zero and
   * wakes for weeks): kept as their sum, and how many there were.
   */
  folded?: { total: number; lines: number };
}

/** The ledger summed at a moment: what `status`, `list` and the Web UI show. */
export interface CostSummary {
  currency: string;
  /** Spent so far. */
  total: number;
  /** The rate now: the open lines' sum per hour. */
  hourly: number;
  /** When the total was taken, workflow time, ISO 8601. */
  at: string;
  /** Items with no price in the table (not in the total). */
  unpriced: string[];
  priceTableAsOf: string;
  budget?: BudgetStatus;
}

/** What a deployment does when its budget is spent. */
export type OnBudget = 'scale-to-zero' | 'teardown';

/** `--budget N [--on-budget …] [--price-table FILE]`, as the workflow gets it. */
export interface CostInput {
  priceTable: PriceTable;
  /** In the price table's currency; none: the ledger is kept, nothing is enforced. */
  budget?: number;
  onBudget?: OnBudget;
  /** aks: the VM sizes and counts the plan bills (from the CLI's plan: the workflow knows no defaults). */
  aks?: AksBillShape;
}

/** What an aks deployment bills: GPU nodes (fixed with --gpu-nodes, else one per replica), system nodes. */
export interface AksBillShape {
  gpuVmSize: string;
  /** --gpu-nodes; left out, one node per replica (none at zero replicas). */
  gpuNodeCount?: number;
  systemVmSize: string;
  systemNodeCount: number;
  /** --cluster: the cluster's nodes are not this deployment's to bill. */
  existingCluster: boolean;
}

/** Where a budget stands. */
export interface BudgetStatus {
  budget: number;
  onBudget: OnBudget;
  /** ok, below 80 %; warned, past 80 %; reached, spent and enforced. */
  state: 'ok' | 'warned' | 'reached';
  warnedAt?: string;
  reachedAt?: string;
  /** What was done, in a sentence, once reached. */
  action?: string;
}

/** `score --budget N [--price-table FILE]`, as the batch workflow gets it. */
export interface BatchCostInput {
  priceTable: PriceTable;
  /** In the price table's currency; none: the ledger is kept, nothing is enforced. */
  budget?: number;
}

/** A batch job's cost as its progress, outcome and memo show it: the summed ledger, the ledger, the budget. */
export interface BatchCost extends CostSummary {
  ledger: CostLedger;
  /** Why the total is 0 when nothing was priced (a local job whose price table has no localWorkerHourly). */
  note?: string;
  /** Where the budget stands (batch jobs: `onBudget` is always 'stop'). */
  budgetState?: BatchBudgetStatus;
}

/** Where a batch job's budget stands: ok, past 80 % (warned), spent (the job stopped between shards). */
export interface BatchBudgetStatus {
  budget: number;
  state: 'ok' | 'warned' | 'reached';
  warnedAt?: string;
  reachedAt?: string;
}

/** The share of the budget that brings a warning. */
export const BUDGET_WARNING_SHARE = 0.8;
