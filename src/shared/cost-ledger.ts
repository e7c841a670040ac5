/**
 * The cost ledger: each billed resource's lifetime times its price. Pure functions over plain data, so
 * the workflows keep it from workflow time (deterministic) and the CLI sums it the same way. A change of
 * quantity closes the resource's open line and opens a new one; a resource gone closes its line.
 */
import type { AksBillShape, CostLedger, CostSummary, LedgerLine, PriceTable } from './cost-types';

/** One resource as billed now: what, how many, at what unit price per hour (null: the table has none). */
export interface BilledItem {
  item: string;
  quantity: number;
  unitHourly: number | null;
}

export function newLedger(table: PriceTable): CostLedger {
  return { currency: table.currency, priceTableAsOf: table.asOf, priceTableSource: table.source, lines: [] };
}

/**
 * Brings the open lines in line with `items` at `atMs`: a line whose item is gone or whose quantity or
 * price changed is closed, and a new one opened for what bills now. Returns whether anything changed.
 */
export function reconcile(ledger: CostLedger, items: BilledItem[], atMs: number): boolean {
  const at = new Date(atMs).toISOString();
  const wanted = new Map(items.filter((i) => i.quantity > 0).map((i) => [i.item, i]));
  let changed = false;
  for (const line of ledger.lines) {
    if (line.until !== undefined) continue;
    const now = wanted.get(line.item);
    if (now && now.quantity === line.quantity && now.unitHourly === line.unitHourly) {
      wanted.delete(line.item);
      continue;
    }
    line.until = at;
    changed = true;
  }
  for (const item of wanted.values()) {
    ledger.lines.push({ item: item.item, quantity: item.quantity, unitHourly: item.unitHourly, from: at });
    changed = true;
  }
  if (changed) fold(ledger);
  return changed;
}

/** Closed lines kept one by one; older ones are folded into `ledger.folded`. */
export const LEDGER_LINES_KEPT = 100;

/** Folds the oldest closed lines into one sum once there are more than LEDGER_LINES_KEPT lines. */
function fold(ledger: CostLedger): void {
  let excess = ledger.lines.length - LEDGER_LINES_KEPT;
  if (excess <= 0) return;
  const kept: LedgerLine[] = [];
  const folded = (ledger.folded ??= { total: 0, lines: 0 });
  for (const line of ledger.lines) {
    if (excess > 0 && line.until !== undefined) {
      folded.total += lineCost(line, 0);
      folded.lines++;
      excess--;
    } else kept.push(line);
  }
  ledger.lines = kept;
}

/** A line's cost up to `nowMs` (an open line runs until then). */
export function lineCost(line: LedgerLine, nowMs: number): number {
  if (line.unitHourly === null) return 0;
  const end = line.until !== undefined ? Date.parse(line.until) : nowMs;
  const hours = Math.max(0, end - Date.parse(line.from)) / 3_600_000;
  return hours * line.quantity * line.unitHourly;
}

/** The ledger summed at `nowMs`: spent so far, the rate now, and what has no price. */
export function summarize(ledger: CostLedger, nowMs: number): CostSummary {
  let total = ledger.folded?.total ?? 0;
  let hourly = 0;
  const unpriced = new Set<string>();
  for (const line of ledger.lines) {
    total += lineCost(line, nowMs);
    if (line.unitHourly === null) unpriced.add(line.item);
    else if (line.until === undefined) hourly += line.quantity * line.unitHourly;
  }
  return {
    currency: ledger.currency,
    total: round(total),
    hourly: round(hourly),
    at: new Date(nowMs).toISOString(),
    unpriced: [...unpriced],
    priceTableAsOf: ledger.priceTableAsOf,
  };
}

/**
 * When, at the rate now, the total reaches `amount` (ms, workflow time); undefined when it never will
 * (nothing bills). Already there: `nowMs`.
 */
export function reachesAt(ledger: CostLedger, amount: number, nowMs: number): number | undefined {
  const { total, hourly } = summarize(ledger, nowMs);
  if (total >= amount) return nowMs;
  if (hourly <= 0) return undefined;
  return nowMs + Math.ceil(((amount - total) / hourly) * 3_600_000);
}

/** What a deployment bills, by target, at a replica count (candidates: a rollout's extra replicas). */
export interface DeploymentBillState {
  target: 'local' | 'aks';
  /** The cluster and its nodes exist (aks: from provisioning until teardown has run). */
  infrastructure: boolean;
  /** The replicas and their endpoint exist (from deploying until teardown has run). */
  serving: boolean;
  replicas: number;
  candidates: number;
  /** aks: the GPU pool's node count as the workflow last set it (autoscaling, scale to zero); else from the shape. */
  gpuNodes?: number;
  aks?: AksBillShape;
}

export function deploymentBill(table: PriceTable, s: DeploymentBillState): BilledItem[] {
  if (s.target === 'local') {
    return s.serving
      ? [{ item: 'local replica', quantity: s.replicas + s.candidates, unitHourly: table.localReplicaHourly }]
      : [];
  }
  const items: BilledItem[] = [];
  const shape = s.aks;
  if (s.infrastructure && shape && !shape.existingCluster) {
    items.push(vm(table, shape.systemVmSize, 'system pool', shape.systemNodeCount));
    items.push({ item: 'AKS control plane (Free tier)', quantity: 1, unitHourly: table.aksControlPlaneHourly.free });
    const running = s.replicas + s.candidates;
    // What the pool has, once a scale set it (it grows before the replicas and shrinks after them); before
    // that, --gpu-nodes, or a node per replica. At zero replicas the pool is at 0 nodes.
    const gpuNodes = running === 0 ? 0 : (s.gpuNodes ?? shape.gpuNodeCount ?? running);
    items.push(vm(table, shape.gpuVmSize, 'GPU pool', gpuNodes));
  }
  if (s.infrastructure) {
    items.push({ item: 'container registry (shared)', quantity: 1, unitHourly: table.registryDaily / 24 });
  }
  if (s.serving) {
    items.push({ item: 'Standard Load Balancer', quantity: 1, unitHourly: table.loadBalancerHourly });
    items.push({ item: 'Standard public IP', quantity: 1, unitHourly: table.publicIpHourly });
  }
  return items;
}

/** What a batch job bills: on aks its own GPU pool's nodes; locally each shard in flight (a GPU worker busy). */
export interface BatchBillState {
  pool?: { vmSize: string; nodes: number };
  shardsInFlight: number;
}

/** The item a local batch job's GPU workers are billed as. */
export const LOCAL_WORKER_ITEM = 'local GPU worker (a shard in flight)';

export function batchBill(table: PriceTable, s: BatchBillState): BilledItem[] {
  if (s.pool) return [vm(table, s.pool.vmSize, 'job GPU pool', s.pool.nodes)];
  return [{ item: LOCAL_WORKER_ITEM, quantity: s.shardsInFlight, unitHourly: table.localWorkerHourly ?? 0 }];
}

/** Why a local batch job's ledger stays at 0, when its price table has no price for local GPU workers. */
export function localWorkersUnpriced(table: PriceTable): string | undefined {
  return table.localWorkerHourly === undefined
    ? 'local GPU workers are not priced: the price table has no localWorkerHourly (your own machines)'
    : undefined;
}

function vm(table: PriceTable, size: string, pool: string, count: number): BilledItem {
  return { item: `${size} VM (${pool})`, quantity: count, unitHourly: table.vmHourly[size] ?? null };
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
