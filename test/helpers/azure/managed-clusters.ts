/**
 * Microsoft.ContainerService for the local ARM endpoint: managed clusters and their agent pools (PUT →
 * 201 + Azure-AsyncOperation, DELETE → 202 + Location and Azure-AsyncOperation, GET → 200/404, 409 while
 * another operation is in progress, a delete superseding a create), the subscription-wide cluster list,
 * and listClusterUserCredential. Lifecycle events go to hooks so a test can make Kubernetes nodes appear
 * and vanish with the cluster, as AKS does.
 *
 * Bodies are validated as AKS validates them (cluster-validation.ts: pool names, dnsPrefix, identity, VM
 * sizes the region offers). A cluster with a managed identity gets, as on AKS, its own identity
 * (`identity.principalId`) and a kubelet identity (`properties.identityProfile.kubeletidentity`: resourceId
 * in the node resource group, clientId, objectId); both become principals of the directory, so roles can be
 * assigned to them. The kubelet identity is what pulls images.
 */
import crypto from 'node:crypto';

import { armError, notFound } from './arm-protocol';
import type { ArmFaults, Operation, Operations, Send } from './arm-protocol';
import { validateClusterBody } from './cluster-validation';
import type { ArmRefusal } from './cluster-validation';
import { AgentPools } from './agent-pools';
import type { PoolStates } from './agent-pools';
import type { Quotas, VmSku } from './compute';
import type { ResourceGroups } from './resource-groups';
import { TEST_TENANT } from './role-assignments';

export interface ClusterEvent {
  name: string;
  resourceGroup: string;
  tags: Record<string, string>;
  pools: {
    name: string;
    vmSize: string;
    count: number;
    /** System or User: AKS labels each node `kubernetes.azure.com/mode` with it, lowercased. */
    mode: string;
    gpusPerNode: number;
    taints: string[];
    labels: Record<string, string>;
  }[];
}

export interface ManagedClustersOptions {
  subscriptionId: string;
  location: string;
  /** Kubeconfig (YAML) that listClusterUserCredential returns for every cluster. */
  kubeconfig: string;
  onClusterReady?: (event: ClusterEvent) => Promise<void>;
  onClusterDeleted?: (event: ClusterEvent) => Promise<void>;
}

interface ClusterState {
  resourceGroup: string;
  name: string;
  body: Record<string, unknown>;
  provisioningState: string;
  pools: Map<string, Record<string, unknown>>;
  operation?: Operation;
  /** The cluster's own managed identity (absent with a service principal). */
  principalId?: string;
  /** The identity the kubelets pull images with: a managed identity, or the service principal. */
  kubelet: { objectId: string; clientId: string; resourceId?: string };
}

export class ManagedClusters {
  private readonly clusters = new Map<string, ClusterState>();

  constructor(
    private readonly opts: ManagedClustersOptions,
    private readonly faults: ArmFaults,
    private readonly skus: VmSku[],
    private readonly operations: Operations,
    private readonly groups: ResourceGroups,
    /** Tells the directory about a new identity (role assignments check their principals there). */
    private readonly addPrincipal: (objectId: string) => void,
    /** The regional quota agent pools are created against (agent-pools.ts); unchecked when left out. */
    private readonly quotas?: Quotas,
  ) {}

  /** Each agent pool's own provisioning state and quota, kept across requests (agent-pools.ts). */
  private readonly poolStates: PoolStates = new Map();

  /** The object id of a cluster's kubelet identity (what pulls its images), or undefined for no such cluster. */
  kubeletObjectId(name: string): string | undefined {
    return [...this.clusters.values()].find((x) => x.name.toLowerCase() === name.toLowerCase())?.kubelet.objectId;
  }

  /** The cluster's managed identity and kubelet identity, made once when the cluster is created. */
  private identities(group: string, name: string, json: Record<string, unknown>) {
    const identity = (json.identity ?? {}) as Record<string, unknown>;
    const props = (json.properties ?? {}) as Record<string, unknown>;
    const sp = (props.servicePrincipalProfile ?? {}) as Record<string, unknown>;
    const managed = identity.type === 'SystemAssigned' || identity.type === 'UserAssigned';
    const principalId = managed ? crypto.randomUUID() : undefined;
    const kubelet = managed
      ? {
          objectId: crypto.randomUUID(),
          clientId: crypto.randomUUID(),
          resourceId:
            `/subscriptions/${this.opts.subscriptionId}/resourcegroups/${nodeResourceGroup(group, name, this.opts.location)}` +
            `/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}-agentpool`,
        }
      : { objectId: String(sp.clientId), clientId: String(sp.clientId) };
    if (principalId) this.addPrincipal(principalId);
    this.addPrincipal(kubelet.objectId);
    return { principalId, kubelet };
  }

  names(): string[] {
    return [...this.clusters.values()].map((c) => c.name);
  }

  /** The agent pools a cluster has (one being deleted included, until its delete completes). */
  poolNames(name: string): string[] | undefined {
    const c = [...this.clusters.values()].find((x) => x.name === name);
    return c ? [...c.pools.keys()] : undefined;
  }

  tags(name: string): Record<string, string> | undefined {
    const c = [...this.clusters.values()].find((x) => x.name === name);
    return c ? ((c.body.tags as Record<string, string>) ?? {}) : undefined;
  }

  /** The clusters in a resource group, as the group's resource list shows them. */
  inGroup(groupKey: string): Record<string, unknown>[] {
    return [...this.clusters.values()]
      .filter((c) => c.resourceGroup.toLowerCase() === groupKey)
      .map((c) => {
        const { id, name, type, location, tags } = this.json(c);
        return { id, name, type, location, tags };
      });
  }

  /**
   * Puts a cluster into a provisioning state as an operation someone else started would (`az aks upgrade`
   * shows Upgrading, a node-pool change Updating) until it is set back; its API server keeps answering.
   */
  setProvisioningState(name: string, state: string): void {
    const c = [...this.clusters.values()].find((x) => x.name === name);
    if (!c) throw new Error(`no cluster ${name}`);
    c.provisioningState = state;
  }

  /** Forgets every cluster in a resource group (ARM deletes them with the group). */
  deleteGroup(groupKey: string): void {
    for (const [k, c] of this.clusters) {
      if (c.resourceGroup.toLowerCase() !== groupKey) continue;
      this.clusters.delete(k);
      void this.opts.onClusterDeleted?.(this.event(c)); // its nodes go with it
    }
  }

  /** Makes a cluster exist at once, as if someone (or an earlier run) had created it; optionally with a GPU pool. */
  async seed(resourceGroup: string, name: string, tags: Record<string, string>, gpuNodes = 0): Promise<void> {
    this.groups.ensure(resourceGroup);
    const pools: Record<string, unknown>[] = [{ name: 'system', vmSize: 'Standard_D2s_v3', count: 1, mode: 'System' }];
    if (gpuNodes > 0) {
      pools.push({
        name: 'gpu',
        vmSize: 'Standard_NC4as_T4_v3',
        count: gpuNodes,
        mode: 'User',
        nodeTaints: ['sku=gpu:NoSchedule'],
        nodeLabels: { 'inferctl.dev/pool': 'gpu' },
      });
    }
    const body = {
      location: this.opts.location,
      tags,
      identity: { type: 'SystemAssigned' },
      properties: { dnsPrefix: name, agentPoolProfiles: pools },
    };
    const state: ClusterState = {
      resourceGroup,
      name,
      body,
      provisioningState: 'Succeeded',
      pools: new Map(pools.map((p) => [String(p.name), p])),
      ...this.identities(resourceGroup, name, body),
    };
    this.clusters.set(clusterKey(resourceGroup, name), state);
    await this.opts.onClusterReady?.(this.event(state));
  }

  /** Serves the subscription-wide cluster list; false when `rest` is not it. */
  routeSubscription(rest: string, send: Send): boolean {
    if (!/^\/providers\/Microsoft\.ContainerService\/managedClusters$/i.test(rest)) return false;
    send(200, { value: [...this.clusters.values()].map((c) => this.json(c)) });
    return true;
  }

  /** Serves the routes under a resource group; false when `tail` is not a managed cluster's. */
  route(method: string, group: string, tail: string, json: Record<string, unknown>, send: Send): boolean {
    let m: RegExpExecArray | null;
    if ((m = /^\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)$/i.exec(tail))) {
      this.managedCluster(method, group, m[1]!, json, send);
      return true;
    }
    if (
      (m = /^\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)\/listClusterUserCredential$/i.exec(
        tail,
      ))
    ) {
      const cluster = this.clusters.get(clusterKey(group, m[1]!));
      if (!cluster) {
        send(404, notFound('managedClusters', m[1]!));
        return true;
      }
      if (this.faults.credentialsDenied?.includes(cluster.name)) {
        send(
          403,
          armError(
            'AuthorizationFailed',
            `The client does not have authorization to perform action 'Microsoft.ContainerService/managedClusters/` +
              `listClusterUserCredential/action' over scope '${this.id(cluster)}' or the scope is invalid.`,
          ),
        );
        return true;
      }
      const value = Buffer.from(this.opts.kubeconfig).toString('base64');
      send(200, { kubeconfigs: [{ name: 'clusterUser', value }] });
      return true;
    }
    if ((m = /^\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)\/agentPools\/([^/]+)$/i.exec(tail))) {
      this.agentPool(method, group, m[1]!, m[2]!, json, send);
      return true;
    }
    return false;
  }

  private managedCluster(method: string, group: string, name: string, json: Record<string, unknown>, send: Send): void {
    const key = clusterKey(group, name);
    const cluster = this.clusters.get(key);
    if (method === 'GET') return cluster ? send(200, this.json(cluster)) : send(404, notFound('managedClusters', name));
    if (method === 'PUT') {
      if (cluster?.operation?.status === 'InProgress') return send(409, operationInProgress(name));
      const props = (json.properties ?? {}) as Record<string, unknown>;
      const profiles = (props.agentPoolProfiles ?? []) as Record<string, unknown>[];
      const problem = validateClusterBody(json, this.skus, this.opts.location);
      if (problem) return send(400, refusal(problem));
      const state: ClusterState = cluster ?? {
        resourceGroup: group,
        name,
        body: json,
        provisioningState: 'Creating',
        pools: new Map(),
        ...this.identities(group, name, json),
      };
      state.body = json;
      state.provisioningState = cluster ? 'Updating' : 'Creating';
      for (const p of profiles) state.pools.set(String(p.name), p);
      this.clusters.set(key, state);
      const stuck = Boolean(this.faults.stuckUpdating);
      if (stuck) state.provisioningState = 'Updating';
      state.operation = this.operations.start(
        async () => {
          state.provisioningState = 'Succeeded';
          await this.opts.onClusterReady?.(this.event(state));
        },
        stuck ? Number.POSITIVE_INFINITY : undefined,
      );
      return send(cluster ? 200 : 201, this.json(state), this.operations.headers(state.operation, false));
    }
    if (method === 'DELETE') {
      if (!cluster) return send(204);
      if (cluster.provisioningState === 'Deleting' && cluster.operation?.status === 'InProgress') {
        return send(202, undefined, this.operations.headers(cluster.operation));
      }
      if (cluster.operation?.status === 'InProgress') {
        // AKS lets a delete supersede a create or update in progress; that operation ends Canceled.
        cluster.operation.status = 'Failed';
        cluster.operation.error = { code: 'Canceled', message: 'The operation was superseded by a delete.' };
      }
      cluster.provisioningState = 'Deleting';
      const fail = Boolean(this.faults.failNextDelete);
      this.faults.failNextDelete = false;
      cluster.operation = this.operations.start(async () => {
        if (fail) {
          cluster.provisioningState = 'Failed';
          throw Object.assign(new Error('Deleting the node resource group failed: a VM scale set is still in use.'), {
            code: 'DeleteFailed',
          });
        }
        this.clusters.delete(key);
        this.agentPools(cluster).forget(Object.assign(cluster, { id: this.id(cluster) }));
        await this.opts.onClusterDeleted?.(this.event(cluster));
      });
      return send(202, undefined, this.operations.headers(cluster.operation));
    }
    send(405, armError('MethodNotAllowed', `${method} is not supported on managed clusters`));
  }

  private agentPool(
    method: string,
    group: string,
    clusterName: string,
    pool: string,
    json: Record<string, unknown>,
    send: Send,
  ): void {
    const cluster = this.clusters.get(clusterKey(group, clusterName));
    if (!cluster) return send(404, notFound('managedClusters', clusterName));
    const host = Object.assign(cluster, { id: this.id(cluster) });
    this.agentPools(cluster).route(method, host, pool, json, send);
  }

  /** The agent-pool routes of one cluster (agent-pools.ts), with its node hooks. */
  private agentPools(cluster: ClusterState): AgentPools {
    return new AgentPools(this.skus, this.quotas, this.opts.location, this.operations, this.poolStates, {
      ready: async () => this.opts.onClusterReady?.(this.event(cluster)),
      deleted: async (names) => {
        const event = this.event(cluster);
        await this.opts.onClusterDeleted?.({ ...event, pools: event.pools.filter((p) => names.includes(p.name)) });
      },
    });
  }

  private id(c: ClusterState): string {
    return `/subscriptions/${this.opts.subscriptionId}/resourcegroups/${c.resourceGroup}/providers/Microsoft.ContainerService/managedClusters/${c.name}`;
  }

  private json(c: ClusterState): Record<string, unknown> {
    const props = (c.body.properties ?? {}) as Record<string, unknown>;
    return {
      id: this.id(c),
      name: c.name,
      type: 'Microsoft.ContainerService/ManagedClusters',
      location: c.body.location ?? this.opts.location,
      tags: c.body.tags ?? {},
      ...(c.principalId
        ? { identity: { ...(c.body.identity as object), principalId: c.principalId, tenantId: TEST_TENANT } }
        : {}),
      properties: {
        ...props,
        ...(c.kubelet.resourceId ? { identityProfile: { kubeletidentity: c.kubelet } } : {}),
        agentPoolProfiles: [...c.pools.values()],
        provisioningState: c.provisioningState,
        powerState: { code: 'Running' },
        fqdn: `${c.name}-dns.hcp.${this.opts.location}.azmk8s.io`,
        nodeResourceGroup: nodeResourceGroup(c.resourceGroup, c.name, this.opts.location),
      },
    };
  }

  private event(c: ClusterState): ClusterEvent {
    return {
      name: c.name,
      resourceGroup: c.resourceGroup,
      tags: (c.body.tags as Record<string, string>) ?? {},
      pools: [...c.pools.values()].map((p) => ({
        name: String(p.name),
        vmSize: String(p.vmSize),
        count: Number(p.count ?? 1),
        mode: typeof p.mode === 'string' ? p.mode : 'User',
        gpusPerNode: this.skus.find((s) => s.name === p.vmSize)?.gpus ?? 0,
        taints: (p.nodeTaints as string[]) ?? [],
        labels: (p.nodeLabels as Record<string, string>) ?? {},
      })),
    };
  }
}

function clusterKey(group: string, name: string): string {
  return `${group}/${name}`.toLowerCase();
}

function operationInProgress(name: string) {
  return armError(
    'OperationNotAllowed',
    `Operation is not allowed because there's an in progress operation on managed cluster '${name}'.`,
  );
}

function nodeResourceGroup(group: string, name: string, location: string): string {
  return `MC_${group}_${name}_${location}`;
}

function refusal(problem: ArmRefusal) {
  return { error: problem };
}
