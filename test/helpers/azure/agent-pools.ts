/**
 * The agent pools of a managed cluster on the local ARM endpoint (Microsoft.ContainerService
 * /managedClusters/{cluster}/agentPools/{pool}), what `az aks nodepool add/delete` and the SDK's
 * agentPools.createOrUpdate / get / delete talk to. What AKS enforces here, enforced here too:
 *   - the body as AKS validates it (cluster-validation.ts validatePool): the name lowercase letters and
 *     digits, starting with a letter, at most 12 characters for Linux (6 for Windows), unique in the cluster;
 *     count 0–1000 (user) or 1–1000 (system), the autoscaler's minCount/maxCount; a vmSize the region offers this subscription (a retired size is
 *     not listed, so it is refused the same way): 400 InvalidParameter / BadRequest;
 *   - quota: a new pool needs count × the size's vCPUs free in its family and in the regional total, else
 *     400 InsufficientVCPUQuota (AKS's own preflight); a larger count on an existing pool is refused as the
 *     compute provider refuses the scale set's growth, 400 QuotaExceeded with its "Current Limit, Current
 *     Usage, Additional Required" sentence; the pool keeps its count; a pool holds its vCPUs until it is deleted;
 *   - the cluster keeps a System pool: its last one can neither turn User nor be deleted (400
 *     OperationNotAllowed), so a system pool never scales to 0 nodes and never goes;
 *   - one operation at a time per cluster: a PUT or DELETE while the cluster or another pool is busy is 409
 *     OperationNotAllowed; a pool still Creating, Updating or Scaling refuses a second update (409
 *     OperationNotAllowed, naming the operation in progress); a pool being deleted cannot be updated (409), and a second
 *     DELETE of it answers 202 with the operation in progress;
 *   - long-running operations: PUT → 201 (200 for an update) + Azure-AsyncOperation, provisioningState
 *     Creating/Updating then Succeeded; DELETE → 202 + Location and Azure-AsyncOperation, Deleting, then gone;
 *     DELETE of a pool that does not exist → 204 (the SDK's poller takes it as done), GET → 404;
 *   - the nodes: once a pool's create operation succeeds its VMs exist (the onClusterReady hook makes them
 *     Kubernetes nodes); once its delete succeeds they are gone (onClusterDeleted with just that pool).
 */
import type { Operation, Operations, Send } from './arm-protocol';
import { armError, notFound } from './arm-protocol';
import { validatePool } from './cluster-validation';
import type { ArmRefusal } from './cluster-validation';
import type { Quotas, VmSku } from './compute';

/** The part of a cluster's state the pools live in (managed-clusters.ts owns the rest). */
export interface PoolHost {
  id: string;
  name: string;
  pools: Map<string, Record<string, unknown>>;
  operation?: Operation;
}

interface PoolState {
  provisioningState: string;
  /** vCPUs this pool holds against the quota, by family. */
  held?: { family: string; vCPUs: number };
}

/** Every pool's state, by cluster id and pool name: kept by the endpoint across requests. */
export type PoolStates = Map<string, PoolState>;

export class AgentPools {
  constructor(
    private readonly skus: VmSku[],
    private readonly quotas: Quotas | undefined,
    private readonly location: string,
    private readonly operations: Operations,
    private readonly states: PoolStates,
    private readonly hooks: {
      /** The pool's VMs exist: make its nodes. */
      ready: () => Promise<void>;
      /** These pools' VMs are gone. */
      deleted: (pools: string[]) => Promise<void>;
    },
  ) {}

  /** The provisioning state a pool of `host` shows (Succeeded for pools created with the cluster). */
  provisioningState(host: PoolHost, pool: string): string {
    return this.states.get(key(host, pool))?.provisioningState ?? 'Succeeded';
  }

  route(method: string, host: PoolHost, pool: string, json: Record<string, unknown>, send: Send): void {
    const existing = host.pools.get(pool);
    const state = this.states.get(key(host, pool));
    if (method === 'GET') {
      return existing ? send(200, this.view(host, pool, existing)) : send(404, notFound('agentPools', pool));
    }
    if (method === 'PUT') {
      if (state?.provisioningState === 'Deleting') return send(409, poolBusy(pool, 'is being deleted'));
      if (state && ['Creating', 'Updating', 'Scaling'].includes(state.provisioningState)) {
        return send(409, poolInProgress(host.name, pool, state.provisioningState));
      }
      if (host.operation?.status === 'InProgress') return send(409, clusterBusy(host.name));
      const props: Record<string, unknown> = { ...((json.properties as Record<string, unknown>) ?? {}), name: pool };
      const others = new Set([...host.pools.keys()].filter((n) => n !== pool));
      const problem =
        validatePool(props, others, this.skus, this.location) ??
        this.lastSystemPool(host, pool, props.mode !== 'System') ??
        this.quotaProblem(props, state, Boolean(existing));
      if (problem) return send(400, { error: problem });
      const held = this.hold(props, state);
      const next: PoolState = { provisioningState: existing ? 'Updating' : 'Creating', ...(held ? { held } : {}) };
      this.states.set(key(host, pool), next);
      host.pools.set(pool, props);
      host.operation = this.operations.start(async () => {
        next.provisioningState = 'Succeeded';
        await this.hooks.ready();
      });
      return send(existing ? 200 : 201, this.view(host, pool, props), this.operations.headers(host.operation, false));
    }
    if (method === 'DELETE') {
      if (!existing) return send(204);
      if (state?.provisioningState === 'Deleting' && host.operation?.status === 'InProgress') {
        return send(202, undefined, this.operations.headers(host.operation));
      }
      if (host.operation?.status === 'InProgress') return send(409, clusterBusy(host.name));
      const lastSystem = this.lastSystemPool(host, pool, true);
      if (lastSystem) return send(400, { error: lastSystem });
      const deleting: PoolState = { ...(state ?? {}), provisioningState: 'Deleting' };
      this.states.set(key(host, pool), deleting);
      host.operation = this.operations.start(async () => {
        await this.hooks.deleted([pool]);
        host.pools.delete(pool);
        this.release(deleting);
        this.states.delete(key(host, pool));
      });
      return send(202, undefined, this.operations.headers(host.operation));
    }
    send(405, armError('MethodNotAllowed', `${method} is not supported on agent pools`));
  }

  /** Refuses taking away (`leaving`) the cluster's last System pool: AKS needs one to run its system pods. */
  private lastSystemPool(host: PoolHost, pool: string, leaving: boolean): ArmRefusal | undefined {
    const wasSystem = host.pools.get(pool)?.mode === 'System';
    const others = [...host.pools.entries()].filter(([n, p]) => n !== pool && p.mode === 'System');
    if (!leaving || !wasSystem || others.length > 0) return undefined;
    return {
      code: 'OperationNotAllowed',
      message: `Agent pool '${pool}' is the last System mode pool of cluster '${host.name}'; a cluster needs at least one.`,
    };
  }

  /** Forgets a deleted cluster's pools, giving back their quota. */
  forget(host: PoolHost): void {
    for (const pool of host.pools.keys()) {
      const state = this.states.get(key(host, pool));
      if (state) this.release(state);
      this.states.delete(key(host, pool));
    }
  }

  private view(host: PoolHost, pool: string, props: Record<string, unknown>) {
    return {
      id: `${host.id}/agentPools/${pool}`,
      name: pool,
      type: 'Microsoft.ContainerService/managedClusters/agentPools',
      properties: { ...props, provisioningState: this.provisioningState(host, pool) },
    };
  }

  private sku(props: Record<string, unknown>): VmSku | undefined {
    return this.skus.find((s) => s.name.toLowerCase() === String(props.vmSize).toLowerCase());
  }

  /** AKS's quota check: what the pool adds (over what it already holds) must fit its family and the region. */
  private quotaProblem(
    props: Record<string, unknown>,
    state: PoolState | undefined,
    existing: boolean,
  ): ArmRefusal | undefined {
    const sku = this.sku(props);
    if (!this.quotas || !sku) return undefined;
    const want = sku.vCPUs * Number(props.count ?? 1) - (state?.held?.vCPUs ?? 0);
    for (const family of [sku.family, 'cores']) {
      const q = this.quotas[family];
      if (!q || q.used + want <= q.limit) continue;
      if (existing) return scaleQuotaExceeded(family, this.location, q, want);
      return {
        code: 'InsufficientVCPUQuota',
        message:
          `Insufficient vcpu quota requested ${want}, remaining ${q.limit - q.used} for family ${family} for region ` +
          `${this.location}. Please see https://aka.ms/aks/insufficientcores.`,
      };
    }
    return undefined;
  }

  private hold(props: Record<string, unknown>, state: PoolState | undefined): PoolState['held'] {
    const sku = this.sku(props);
    if (!this.quotas || !sku) return undefined;
    if (state) this.release(state);
    const vCPUs = sku.vCPUs * Number(props.count ?? 1);
    for (const family of [sku.family, 'cores']) if (this.quotas[family]) this.quotas[family].used += vCPUs;
    return { family: sku.family, vCPUs };
  }

  private release(state: PoolState): void {
    if (!state.held || !this.quotas) return;
    for (const family of [state.held.family, 'cores']) {
      if (this.quotas[family]) this.quotas[family].used -= state.held.vCPUs;
    }
    state.held = undefined;
  }
}

function key(host: PoolHost, pool: string): string {
  return `${host.id}/${pool}`.toLowerCase();
}

function clusterBusy(name: string) {
  return armError(
    'OperationNotAllowed',
    `Operation is not allowed because there's an in progress operation on managed cluster '${name}'.`,
  );
}

/** What the compute provider answers when a scale set's growth would pass a vCPU quota (AKS passes it on). */
function scaleQuotaExceeded(
  family: string,
  location: string,
  q: { limit: number; used: number },
  want: number,
): ArmRefusal {
  const name = family === 'cores' ? 'Total Regional Cores' : `${family} Cores`;
  return {
    code: 'QuotaExceeded',
    message:
      `Operation could not be completed as it results in exceeding approved ${name} quota. Additional details - ` +
      `Deployment Model: Resource Manager, Location: ${location}, Current Limit: ${q.limit}, Current Usage: ${q.used}, ` +
      `Additional Required: ${want}, (Minimum) New Limit Required: ${q.used + want}. Submit a request for Quota ` +
      'increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView by ' +
      "specifying parameters listed in the 'Details' section for deployment to succeed.",
  };
}

function poolInProgress(cluster: string, pool: string, state: string) {
  const operation = state === 'Creating' ? 'create' : state === 'Scaling' ? 'scale' : 'update';
  return armError(
    'OperationNotAllowed',
    `Operation is not allowed because there's an in progress ${operation} agent pool operation on agent pool '${pool}' ` +
      `of managed cluster '${cluster}'. Please wait for it to finish before starting a new operation.`,
  );
}

function poolBusy(pool: string, why: string) {
  return armError('OperationNotAllowed', `Operation is not allowed: agent pool '${pool}' ${why}.`);
}
