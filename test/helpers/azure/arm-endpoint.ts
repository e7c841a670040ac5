/**
 * A local HTTPS endpoint that speaks Azure Resource Manager's wire protocol for the operations the `aks`
 * target uses, so the real Azure SDK clients (and DefaultAzureCredential) can be exercised without Azure:
 *
 * - identity: the App Service managed-identity token endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER);
 *   every ARM call must carry a bearer token it issued, or gets 401 like ARM does;
 * - api-version is required on every ARM call (400 MissingApiVersionParameter otherwise);
 * - resource groups, managed clusters and agent pools: PUT → 201 + Azure-AsyncOperation, DELETE → 202 +
 *   Location and Azure-AsyncOperation, GET → 200/404, 409 for a conflicting operation, credentials;
 * - compute resource SKUs and regional usage (quota);
 * - container registry tasks: source upload URL (a SAS blob URL served here), scheduleRun, runs, run logs;
 * - injectable faults: 429 storms with Retry-After, 500s, a cluster stuck in Updating, a failed delete,
 *   quota already used, a failing image build.
 *
 * Cluster lifecycle events are passed to hooks so a test can make Kubernetes nodes appear and vanish with
 * the cluster, as AKS does.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';

import * as tar from 'tar-stream';

import type { TestTls } from './test-tls';

export interface VmSku {
  name: string;
  family: string;
  vCPUs: number;
  gpus: number;
  /** Set when the size is not offered to this subscription in `location`. */
  restricted?: boolean;
}

export interface ArmFaults {
  /** The next `count` ARM calls whose path contains `pathIncludes` answer 429 with Retry-After. */
  throttle?: { count: number; retryAfterSeconds: number; pathIncludes?: string };
  /** The next `count` ARM calls whose path contains `pathIncludes` answer 500. */
  serverErrors?: { count: number; pathIncludes?: string };
  /** Clusters created from now on never leave provisioningState "Updating". */
  stuckUpdating?: boolean;
  /** The next cluster delete operation ends Failed; the one after succeeds. */
  failNextDelete?: boolean;
  /** Image builds fail with this line in their log. */
  failBuildsWith?: string;
}

export interface ClusterEvent {
  name: string;
  resourceGroup: string;
  tags: Record<string, string>;
  pools: {
    name: string;
    vmSize: string;
    count: number;
    gpusPerNode: number;
    taints: string[];
    labels: Record<string, string>;
  }[];
}

export interface ArmEndpointOptions {
  tls: TestTls;
  subscriptionId: string;
  location: string;
  /** Kubeconfig (YAML) that listClusterUserCredential returns for every cluster. */
  kubeconfig: string;
  /** Registries that exist: `${resourceGroup}/${name}`. */
  registries?: string[];
  skus?: VmSku[];
  /** Regional vCPU quota per family (and `cores` for the region total). */
  quotas?: Record<string, { limit: number; used: number }>;
  /** How long cluster/pool creation and deletion take. */
  operationMs?: number;
  onClusterReady?: (event: ClusterEvent) => Promise<void>;
  onClusterDeleted?: (event: ClusterEvent) => Promise<void>;
}

interface Operation {
  id: string;
  status: 'InProgress' | 'Succeeded' | 'Failed';
  doneAt: number;
  error?: { code: string; message: string };
  complete?: () => Promise<void>;
  completing?: Promise<void>;
}

interface ClusterState {
  resourceGroup: string;
  name: string;
  body: Record<string, unknown>;
  provisioningState: string;
  pools: Map<string, Record<string, unknown>>;
  operation?: Operation;
}

export interface RequestRecord {
  method: string;
  path: string;
  apiVersion?: string;
  status: number;
  /** When the answer was sent (ms since the epoch). */
  at: number;
}

export interface ImageRecord {
  repository: string;
  tag: string;
  digest: string;
  /** The build context (a gzipped tar) the image was built from. */
  context: Buffer;
}

const DEFAULT_SKUS: VmSku[] = [
  { name: 'Standard_D2s_v3', family: 'standardDSv3Family', vCPUs: 2, gpus: 0 },
  { name: 'Standard_NC6s_v3', family: 'standardNCSv3Family', vCPUs: 6, gpus: 1 },
  { name: 'Standard_NC4as_T4_v3', family: 'standardNCASv3_T4Family', vCPUs: 4, gpus: 1 },
];

export class ArmEndpoint {
  readonly faults: ArmFaults = {};
  readonly requests: RequestRecord[] = [];
  readonly images = new Map<string, ImageRecord>();
  readonly resourceGroups = new Map<string, { name: string; location: string; tags: Record<string, string> }>();
  readonly identityHeader = crypto.randomBytes(16).toString('hex');
  private readonly clusters = new Map<string, ClusterState>();
  private readonly operations = new Map<string, Operation>();
  private readonly tokens = new Set<string>();
  private readonly blobs = new Map<string, Buffer>();
  private readonly runs = new Map<string, Record<string, unknown>>();
  private readonly server: https.Server;
  /** What resourceSkus.list reports; tests may restrict a size. */
  readonly skus: VmSku[];
  /** What usage.list reports; tests may use quota up. */
  readonly quotas: Record<string, { limit: number; used: number }>;
  private runCounter = 0;
  private baseUrl = '';

  constructor(private readonly opts: ArmEndpointOptions) {
    this.skus = opts.skus ?? DEFAULT_SKUS;
    this.quotas = opts.quotas ?? {
      cores: { limit: 100, used: 4 },
      standardDSv3Family: { limit: 50, used: 0 },
      standardNCSv3Family: { limit: 48, used: 0 },
      standardNCASv3_T4Family: { limit: 16, used: 0 },
    };
    for (const r of opts.registries ?? []) {
      const [rg] = r.split('/');
      this.resourceGroups.set(rg!.toLowerCase(), { name: rg!, location: opts.location, tags: {} });
    }
    this.server = https.createServer(
      { key: fs.readFileSync(opts.tls.keyFile), cert: fs.readFileSync(opts.tls.certFile) },
      (req, res) => void this.handle(req, res),
    );
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get url(): string {
    return this.baseUrl;
  }

  /** The environment a worker needs to reach this endpoint through DefaultAzureCredential. */
  workerEnv(resourceGroup: string, registry: string): NodeJS.ProcessEnv {
    return {
      AZURE_SUBSCRIPTION_ID: this.opts.subscriptionId,
      INFERCTL_AKS_LOCATION: this.opts.location,
      INFERCTL_AKS_RESOURCE_GROUP: resourceGroup,
      INFERCTL_ACR_NAME: registry,
      INFERCTL_ARM_ENDPOINT: this.baseUrl,
      IDENTITY_ENDPOINT: `${this.baseUrl}/msi/token`,
      IDENTITY_HEADER: this.identityHeader,
    };
  }

  clusterNames(): string[] {
    return [...this.clusters.values()].map((c) => c.name);
  }

  clusterTags(name: string): Record<string, string> | undefined {
    const c = [...this.clusters.values()].find((x) => x.name === name);
    return c ? ((c.body.tags as Record<string, string>) ?? {}) : undefined;
  }

  /** Makes a cluster exist at once, as if someone (or an earlier run) had created it; optionally with a GPU pool. */
  async seedCluster(resourceGroup: string, name: string, tags: Record<string, string>, gpuNodes = 0): Promise<void> {
    this.resourceGroups.set(resourceGroup.toLowerCase(), {
      name: resourceGroup,
      location: this.opts.location,
      tags: {},
    });
    const pools: Record<string, unknown>[] = [{ name: 'system', vmSize: 'Standard_D2s_v3', count: 1, mode: 'System' }];
    if (gpuNodes > 0) {
      pools.push({
        name: 'gpu',
        vmSize: 'Standard_NC6s_v3',
        count: gpuNodes,
        mode: 'User',
        nodeTaints: ['sku=gpu:NoSchedule'],
        nodeLabels: { 'inferctl.dev/pool': 'gpu' },
      });
    }
    const state: ClusterState = {
      resourceGroup,
      name,
      body: { location: this.opts.location, tags, properties: { dnsPrefix: name, agentPoolProfiles: pools } },
      provisioningState: 'Succeeded',
      pools: new Map(pools.map((p) => [String(p.name), p])),
    };
    this.clusters.set(clusterKey(resourceGroup, name), state);
    await this.opts.onClusterReady?.(this.clusterEvent(state));
  }

  // ---------------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const body = await readBody(req);
    const send = (status: number, json?: unknown, headers: Record<string, string> = {}) => {
      this.requests.push({
        method: req.method ?? '',
        path: url.pathname,
        apiVersion: url.searchParams.get('api-version') ?? undefined,
        status,
        at: Date.now(),
      });
      const payload = json === undefined ? '' : JSON.stringify(json);
      res.writeHead(status, {
        ...(payload ? { 'content-type': 'application/json' } : {}),
        'x-ms-request-id': crypto.randomUUID(),
        ...headers,
      });
      res.end(payload);
    };
    try {
      if (url.pathname === '/msi/token') return this.issueToken(req, url, send);
      if (url.pathname.startsWith('/_blob/')) return this.blob(req, url, body, res);

      if (!url.searchParams.get('api-version')) {
        return send(400, armError('MissingApiVersionParameter', 'The api-version query parameter is required.'));
      }
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!token || !this.tokens.has(token)) {
        return send(401, armError('AuthenticationFailed', 'Authentication failed: missing or unknown token.'), {
          'www-authenticate': 'Bearer authorization_uri="https://login.microsoftonline.com/common"',
        });
      }
      const fault = this.takeFault(url.pathname);
      if (fault === 429) {
        const after = String(this.faults.throttle?.retryAfterSeconds ?? 1);
        return send(429, armError('TooManyRequests', 'Rate limit exceeded; retry later.'), { 'retry-after': after });
      }
      if (fault === 500) return send(500, armError('InternalServerError', 'An internal error occurred.'));

      const json = body.length > 0 ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
      await this.route(req.method ?? 'GET', url, json, send);
    } catch (err) {
      send(500, armError('InternalServerError', err instanceof Error ? err.message : String(err)));
    }
  }

  private takeFault(pathname: string): number | undefined {
    const t = this.faults.throttle;
    if (t && t.count > 0 && (!t.pathIncludes || pathname.includes(t.pathIncludes))) {
      t.count--;
      return 429;
    }
    const e = this.faults.serverErrors;
    if (e && e.count > 0 && (!e.pathIncludes || pathname.includes(e.pathIncludes))) {
      e.count--;
      return 500;
    }
    return undefined;
  }

  private issueToken(req: IncomingMessage, url: URL, send: Send): void {
    if (req.headers['x-identity-header'] !== this.identityHeader) {
      return send(401, { error: 'invalid_request', error_description: 'X-IDENTITY-HEADER is missing or wrong' });
    }
    const resource = url.searchParams.get('resource');
    if (!resource) return send(400, { error: 'invalid_request', error_description: 'resource is required' });
    const accessToken = crypto.randomBytes(24).toString('base64url');
    this.tokens.add(accessToken);
    const expiresOn = Math.floor(Date.now() / 1000) + 3600;
    send(200, {
      access_token: accessToken,
      expires_on: String(expiresOn),
      resource,
      token_type: 'Bearer',
      client_id: '00000000-0000-0000-0000-000000000001',
    });
  }

  private blob(req: IncomingMessage, url: URL, body: Buffer, res: ServerResponse): void {
    const key = url.pathname.slice('/_blob/'.length);
    const finish = (status: number, payload?: Buffer | string) => {
      this.requests.push({ method: req.method ?? '', path: url.pathname, status, at: Date.now() });
      res.writeHead(status);
      res.end(payload);
    };
    if (!url.searchParams.get('sig')) return finish(403, 'AuthenticationFailed: no SAS signature');
    if (req.method === 'PUT') {
      if (req.headers['x-ms-blob-type'] !== 'BlockBlob') return finish(400, 'x-ms-blob-type: BlockBlob is required');
      this.blobs.set(key, body);
      return finish(201);
    }
    const blob = this.blobs.get(key);
    return blob ? finish(200, blob) : finish(404, 'BlobNotFound');
  }

  private async route(method: string, url: URL, json: Record<string, unknown>, send: Send): Promise<void> {
    // Operations progress on Azure's clock, whether or not anyone polls them.
    await Promise.all([...this.operations.values()].map((op) => this.settle(op)));
    const p = url.pathname;
    const sub = `/subscriptions/${this.opts.subscriptionId}`;
    if (!p.toLowerCase().startsWith(sub.toLowerCase())) {
      return send(404, armError('SubscriptionNotFound', `The subscription in ${p} could not be found.`));
    }
    const rest = p.slice(sub.length);
    let m: RegExpExecArray | null;

    if ((m = /^\/providers\/Microsoft\.Compute\/skus$/i.exec(rest))) return send(200, { value: this.skuList() });
    if ((m = /^\/providers\/Microsoft\.Compute\/locations\/([^/]+)\/usages$/i.exec(rest))) {
      return send(200, { value: this.usageList() });
    }
    if ((m = /^\/providers\/Microsoft\.ContainerService\/locations\/[^/]+\/operations\/([^/]+)$/i.exec(rest))) {
      return this.operationStatus(m[1]!, send);
    }
    if ((m = /^\/providers\/Microsoft\.ContainerService\/locations\/[^/]+\/operationresults\/([^/]+)$/i.exec(rest))) {
      return this.operationResult(m[1]!, send);
    }
    if ((m = /^\/providers\/Microsoft\.ContainerService\/managedClusters$/i.exec(rest))) {
      return send(200, { value: [...this.clusters.values()].map((c) => this.clusterJson(c)) });
    }
    if (/^\/resourcegroups$/i.test(rest) && method === 'GET') {
      const tag = /tagName eq '([^']+)'/i.exec(url.searchParams.get('$filter') ?? '')?.[1];
      const groups = [...this.resourceGroups.values()].filter((g) => !tag || tag in g.tags);
      return send(200, { value: groups.map((g) => this.groupJson(g)) });
    }
    if ((m = /^\/resourcegroups\/([^/]+)$/i.exec(rest))) return this.resourceGroup(method, m[1]!, json, send);

    const rg = /^\/resourceGroups\/([^/]+)(\/.*)$/i.exec(rest);
    if (!rg) return send(404, armError('NotFound', `No route for ${method} ${p}`));
    const [, group, tail] = rg as unknown as [string, string, string];
    if (!this.resourceGroups.has(group.toLowerCase())) {
      return send(404, armError('ResourceGroupNotFound', `Resource group '${group}' could not be found.`));
    }
    if ((m = /^\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)$/i.exec(tail))) {
      return this.managedCluster(method, group, m[1]!, json, send);
    }
    if (
      (m = /^\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)\/listClusterUserCredential$/i.exec(
        tail,
      ))
    ) {
      const cluster = this.clusters.get(clusterKey(group, m[1]!));
      if (!cluster) return send(404, notFound('managedClusters', m[1]!));
      const value = Buffer.from(this.opts.kubeconfig).toString('base64');
      return send(200, { kubeconfigs: [{ name: 'clusterUser', value }] });
    }
    if ((m = /^\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)\/agentPools\/([^/]+)$/i.exec(tail))) {
      return this.agentPool(method, group, m[1]!, m[2]!, json, send);
    }
    if ((m = /^\/providers\/Microsoft\.ContainerRegistry\/registries\/([^/]+)(\/.*)?$/i.exec(tail))) {
      const registry = m[1]!;
      if (!(this.opts.registries ?? []).some((r) => r.toLowerCase() === `${group}/${registry}`.toLowerCase())) {
        return send(404, notFound('registries', registry));
      }
      return this.registry(method, group, registry, m[2] ?? '', url, json, send);
    }
    return send(404, armError('NotFound', `No route for ${method} ${p}`));
  }

  private skuList(): unknown[] {
    const loc = this.opts.location;
    return this.skus.map((s) => ({
      resourceType: 'virtualMachines',
      name: s.name,
      tier: 'Standard',
      size: s.name.replace(/^Standard_/, ''),
      family: s.family,
      locations: [loc],
      locationInfo: [{ location: loc, zones: ['1', '2', '3'] }],
      capabilities: [
        { name: 'vCPUs', value: String(s.vCPUs) },
        { name: 'GPUs', value: String(s.gpus) },
      ],
      restrictions: s.restricted
        ? [
            {
              type: 'Location',
              values: [loc],
              restrictionInfo: { locations: [loc] },
              reasonCode: 'NotAvailableForSubscription',
            },
          ]
        : [],
    }));
  }

  private usageList(): unknown[] {
    return Object.entries(this.quotas).map(([family, q]) => ({
      unit: 'Count',
      currentValue: q.used,
      limit: q.limit,
      name: { value: family, localizedValue: family === 'cores' ? 'Total Regional vCPUs' : `${family} vCPUs` },
    }));
  }

  private resourceGroup(method: string, name: string, json: Record<string, unknown>, send: Send): void {
    const key = name.toLowerCase();
    const existing = this.resourceGroups.get(key);
    const view = (g: { name: string; location: string; tags: Record<string, string> }) => this.groupJson(g);
    if (method === 'HEAD') return send(existing ? 204 : 404);
    if (method === 'GET') return existing ? send(200, view(existing)) : send(404, notFound('resourceGroups', name));
    if (method === 'PUT') {
      const group = {
        name,
        location: (json.location as string | undefined) ?? this.opts.location,
        tags: (json.tags as Record<string, string>) ?? {},
      };
      this.resourceGroups.set(key, group);
      return send(existing ? 200 : 201, view(group));
    }
    if (method === 'DELETE') {
      if (!existing) return send(204);
      if ([...this.clusters.values()].some((c) => c.resourceGroup.toLowerCase() === key)) {
        // ARM deletes contained resources too; the target always deletes its cluster first.
        for (const [k, c] of this.clusters) if (c.resourceGroup.toLowerCase() === key) this.clusters.delete(k);
      }
      this.resourceGroups.delete(key);
      const op = this.newOperation(() => Promise.resolve());
      return send(202, undefined, this.lroHeaders(op));
    }
    send(405, armError('MethodNotAllowed', `${method} is not supported on resource groups`));
  }

  private managedCluster(method: string, group: string, name: string, json: Record<string, unknown>, send: Send): void {
    const key = clusterKey(group, name);
    const cluster = this.clusters.get(key);
    if (method === 'GET')
      return cluster ? send(200, this.clusterJson(cluster)) : send(404, notFound('managedClusters', name));
    if (method === 'PUT') {
      if (cluster?.operation?.status === 'InProgress') return send(409, operationInProgress(name));
      const props = (json.properties ?? {}) as Record<string, unknown>;
      const profiles = (props.agentPoolProfiles ?? []) as Record<string, unknown>[];
      const problems = validateCluster(json, profiles, this.skus);
      if (problems) return send(400, armError('InvalidParameter', problems));
      const state: ClusterState = cluster ?? {
        resourceGroup: group,
        name,
        body: json,
        provisioningState: 'Creating',
        pools: new Map(),
      };
      state.body = json;
      state.provisioningState = cluster ? 'Updating' : 'Creating';
      for (const p of profiles) state.pools.set(String(p.name), p);
      this.clusters.set(key, state);
      const stuck = Boolean(this.faults.stuckUpdating);
      if (stuck) state.provisioningState = 'Updating';
      state.operation = this.newOperation(
        async () => {
          state.provisioningState = 'Succeeded';
          await this.opts.onClusterReady?.(this.clusterEvent(state));
        },
        stuck ? Number.POSITIVE_INFINITY : undefined,
      );
      return send(cluster ? 200 : 201, this.clusterJson(state), this.lroHeaders(state.operation, false));
    }
    if (method === 'DELETE') {
      if (!cluster) return send(204);
      if (cluster.provisioningState === 'Deleting' && cluster.operation?.status === 'InProgress') {
        return send(202, undefined, this.lroHeaders(cluster.operation));
      }
      if (cluster.operation?.status === 'InProgress') {
        // AKS lets a delete supersede a create or update in progress; that operation ends Canceled.
        cluster.operation.status = 'Failed';
        cluster.operation.error = { code: 'Canceled', message: 'The operation was superseded by a delete.' };
      }
      cluster.provisioningState = 'Deleting';
      const fail = Boolean(this.faults.failNextDelete);
      this.faults.failNextDelete = false;
      cluster.operation = this.newOperation(async () => {
        if (fail) {
          cluster.provisioningState = 'Failed';
          throw Object.assign(new Error('Deleting the node resource group failed: a VM scale set is still in use.'), {
            code: 'DeleteFailed',
          });
        }
        this.clusters.delete(key);
        await this.opts.onClusterDeleted?.(this.clusterEvent(cluster));
      });
      return send(202, undefined, this.lroHeaders(cluster.operation));
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
    const view = (p: Record<string, unknown>, state: string) => ({
      id: `${this.clusterId(cluster)}/agentPools/${pool}`,
      name: pool,
      type: 'Microsoft.ContainerService/managedClusters/agentPools',
      properties: { ...((p.properties as object) ?? p), provisioningState: state },
    });
    const existing = cluster.pools.get(pool);
    if (method === 'GET')
      return existing ? send(200, view(existing, 'Succeeded')) : send(404, notFound('agentPools', pool));
    if (method === 'PUT') {
      if (cluster.operation?.status === 'InProgress') return send(409, operationInProgress(clusterName));
      const props = { name: pool, ...((json.properties as Record<string, unknown>) ?? {}) };
      const problems = validateCluster({ location: this.opts.location }, [props], this.skus);
      if (problems) return send(400, armError('InvalidParameter', problems));
      cluster.pools.set(pool, props);
      cluster.operation = this.newOperation(async () => {
        await this.opts.onClusterReady?.(this.clusterEvent(cluster));
      });
      return send(existing ? 200 : 201, view(props, 'Creating'), this.lroHeaders(cluster.operation, false));
    }
    if (method === 'DELETE') {
      if (!existing) return send(204);
      const before = this.clusterEvent(cluster);
      cluster.pools.delete(pool);
      cluster.operation = this.newOperation(async () => {
        const gone = before.pools.filter((p) => p.name === pool);
        await this.opts.onClusterDeleted?.({ ...before, pools: gone });
      });
      return send(202, undefined, this.lroHeaders(cluster.operation));
    }
    send(405, armError('MethodNotAllowed', `${method} is not supported on agent pools`));
  }

  private registry(
    method: string,
    group: string,
    registry: string,
    tail: string,
    url: URL,
    json: Record<string, unknown>,
    send: Send,
  ): void {
    const base = `/subscriptions/${this.opts.subscriptionId}/resourceGroups/${group}/providers/Microsoft.ContainerRegistry/registries/${registry}`;
    if (method === 'POST' && tail === '/listBuildSourceUploadUrl') {
      const relativePath = `source/${new Date().toISOString().slice(0, 10)}/${crypto.randomUUID()}.tar.gz`;
      return send(200, { uploadUrl: `${this.baseUrl}/_blob/${relativePath}?sv=2024-01-01&sig=local`, relativePath });
    }
    if (method === 'POST' && tail === '/scheduleRun') {
      const runId = `ca${++this.runCounter}`;
      const run: Record<string, unknown> = {
        id: `${base}/runs/${runId}`,
        name: runId,
        type: 'Microsoft.ContainerRegistry/registries/runs',
        properties: { runId, status: 'Queued', runType: 'QuickRun', createTime: new Date().toISOString() },
      };
      this.runs.set(runId, run);
      // The build itself: the uploaded context must hold the Dockerfile; the image gets the context's digest.
      setTimeout(() => void this.build(registry, runId, json), 300);
      return send(200, run);
    }
    let m: RegExpExecArray | null;
    if (method === 'GET' && tail === '/runs') {
      const filter = url.searchParams.get('$filter') ?? '';
      const values = [...this.runs.values()].filter((r) => runMatches(r, filter));
      return send(200, { value: values });
    }
    if ((m = /^\/runs\/([^/]+)$/.exec(tail)) && method === 'GET') {
      const run = this.runs.get(m[1]!);
      return run ? send(200, run) : send(404, notFound('runs', m[1]!));
    }
    if ((m = /^\/runs\/([^/]+)\/listLogSasUrl$/.exec(tail)) && method === 'POST') {
      if (!this.runs.has(m[1]!)) return send(404, notFound('runs', m[1]!));
      return send(200, { logLink: `${this.baseUrl}/_blob/logs/${m[1]}.log?sv=2024-01-01&sig=local` });
    }
    send(404, armError('NotFound', `No route for ${method} ${tail} on registry ${registry}`));
  }

  private async build(registry: string, runId: string, request: Record<string, unknown>): Promise<void> {
    const run = this.runs.get(runId)!;
    const props = run.properties as Record<string, unknown>;
    const log: string[] = [`2026/01/01 00:00:00 Downloading source code...`];
    const finish = (status: string, outputImages: unknown[] = []) => {
      props.status = status;
      props.finishTime = new Date().toISOString();
      props.outputImages = outputImages;
      this.blobs.set(`logs/${runId}.log`, Buffer.from(log.join('\n') + '\n'));
    };
    const source = this.blobs.get(String(request.sourceLocation));
    if (!source) {
      log.push(`failed to download context: ${String(request.sourceLocation)} not found`);
      return finish('Failed');
    }
    let files: Map<string, Buffer>;
    try {
      files = await readTar(zlib.gunzipSync(source));
    } catch (err) {
      log.push(`failed to read the build context: ${err instanceof Error ? err.message : String(err)}`);
      return finish('Failed');
    }
    const dockerfile = (request.dockerFilePath as string | undefined) ?? 'Dockerfile';
    log.push(`Sending build context (${source.length} bytes) to the builder`);
    if (!files.has(dockerfile)) {
      log.push(`unable to prepare context: ${dockerfile} not found in the build context`);
      return finish('Failed');
    }
    for (const line of files.get(dockerfile)!.toString('utf8').split('\n')) {
      const copy = /^COPY\s+(?!--from)(\S+)\s+/.exec(line);
      if (copy && copy[1] !== '.' && ![...files.keys()].some((f) => f === copy[1] || f.startsWith(`${copy[1]}/`))) {
        log.push(`COPY failed: file not found in build context: ${copy[1]}`);
        return finish('Failed');
      }
      if (line.trim()) log.push(`Step: ${line.trim()}`);
    }
    if (this.faults.failBuildsWith) {
      log.push(this.faults.failBuildsWith);
      return finish('Failed');
    }
    const digest = `sha256:${crypto.createHash('sha256').update(source).digest('hex')}`;
    const images = ((request.imageNames as string[]) ?? []).map((ref) => {
      const [repository, tag] = ref.split(':') as [string, string];
      this.images.set(`${registry.toLowerCase()}/${ref}`, { repository, tag, digest, context: source });
      return { registry: `${registry.toLowerCase()}.azurecr.io`, repository, tag, digest };
    });
    log.push(`Successfully pushed ${images.length} image(s)`);
    finish('Succeeded', images);
  }

  // LRO plumbing ----------------------------------------------------------------------------------------

  private newOperation(complete: () => Promise<void>, after?: number): Operation {
    const op: Operation = {
      id: crypto.randomUUID(),
      status: 'InProgress',
      doneAt: Date.now() + (after ?? this.opts.operationMs ?? 1000),
      complete,
    };
    this.operations.set(op.id, op);
    return op;
  }

  private lroHeaders(op: Operation, withLocation = true): Record<string, string> {
    const base = `${this.baseUrl}/subscriptions/${this.opts.subscriptionId}/providers/Microsoft.ContainerService/locations/${this.opts.location}`;
    return {
      'azure-asyncoperation': `${base}/operations/${op.id}?api-version=2017-08-31`,
      ...(withLocation ? { location: `${base}/operationresults/${op.id}?api-version=2017-08-31` } : {}),
    };
  }

  private async settle(op: Operation): Promise<void> {
    if (op.status !== 'InProgress' || Date.now() < op.doneAt) return;
    op.completing ??= (async () => {
      try {
        await op.complete?.();
        op.status = 'Succeeded';
      } catch (err) {
        op.status = 'Failed';
        op.error = {
          code: (err as { code?: string }).code ?? 'InternalOperationError',
          message: err instanceof Error ? err.message : String(err),
        };
      }
    })();
    await op.completing;
  }

  private async operationStatus(id: string, send: Send): Promise<void> {
    const op = this.operations.get(id);
    if (!op) return send(404, armError('OperationNotFound', `Operation ${id} not found.`));
    await this.settle(op);
    send(200, { id, name: id, status: op.status, ...(op.error ? { error: op.error } : {}) });
  }

  private async operationResult(id: string, send: Send): Promise<void> {
    const op = this.operations.get(id);
    if (!op) return send(404, armError('OperationNotFound', `Operation ${id} not found.`));
    await this.settle(op);
    if (op.status === 'InProgress') return send(202, undefined, { location: this.lroHeaders(op).location! });
    if (op.status === 'Failed') return send(500, { error: op.error });
    send(204);
  }

  private groupJson(g: { name: string; location: string; tags: Record<string, string> }) {
    return {
      id: `/subscriptions/${this.opts.subscriptionId}/resourceGroups/${g.name}`,
      name: g.name,
      type: 'Microsoft.Resources/resourceGroups',
      location: g.location,
      tags: g.tags,
      properties: { provisioningState: 'Succeeded' },
    };
  }

  private clusterId(c: ClusterState): string {
    return `/subscriptions/${this.opts.subscriptionId}/resourcegroups/${c.resourceGroup}/providers/Microsoft.ContainerService/managedClusters/${c.name}`;
  }

  private clusterJson(c: ClusterState): Record<string, unknown> {
    const props = (c.body.properties ?? {}) as Record<string, unknown>;
    return {
      id: this.clusterId(c),
      name: c.name,
      type: 'Microsoft.ContainerService/ManagedClusters',
      location: c.body.location ?? this.opts.location,
      tags: c.body.tags ?? {},
      properties: {
        ...props,
        agentPoolProfiles: [...c.pools.values()],
        provisioningState: c.provisioningState,
        powerState: { code: 'Running' },
        fqdn: `${c.name}-dns.hcp.${this.opts.location}.azmk8s.io`,
        nodeResourceGroup: `MC_${c.resourceGroup}_${c.name}_${this.opts.location}`,
      },
    };
  }

  private clusterEvent(c: ClusterState): ClusterEvent {
    return {
      name: c.name,
      resourceGroup: c.resourceGroup,
      tags: (c.body.tags as Record<string, string>) ?? {},
      pools: [...c.pools.values()].map((p) => ({
        name: String(p.name),
        vmSize: String(p.vmSize),
        count: Number(p.count ?? 1),
        gpusPerNode: this.skus.find((s) => s.name === p.vmSize)?.gpus ?? 0,
        taints: (p.nodeTaints as string[]) ?? [],
        labels: (p.nodeLabels as Record<string, string>) ?? {},
      })),
    };
  }
}

type Send = (status: number, json?: unknown, headers?: Record<string, string>) => void;

function clusterKey(group: string, name: string): string {
  return `${group}/${name}`.toLowerCase();
}

function armError(code: string, message: string) {
  return { error: { code, message } };
}

function notFound(type: string, name: string) {
  return armError('ResourceNotFound', `The Resource '${type}/${name}' was not found.`);
}

function operationInProgress(name: string) {
  return armError(
    'OperationNotAllowed',
    `Operation is not allowed because there's an in progress operation on managed cluster '${name}'.`,
  );
}

function validateCluster(json: Record<string, unknown>, profiles: Record<string, unknown>[], skus: VmSku[]) {
  if (!json.location) return 'location is required';
  if (profiles.length === 0) return 'at least one agent pool profile is required';
  for (const p of profiles) {
    if (!/^[a-z][a-z0-9]{0,11}$/.test(String(p.name))) return `agent pool name '${String(p.name)}' is invalid`;
    if (!skus.some((s) => s.name === p.vmSize)) return `VM size '${String(p.vmSize)}' is not supported`;
  }
  return undefined;
}

/** The two clauses of ACR's run filter that the target uses: Status and OutputImageManifests. */
function runMatches(run: Record<string, unknown>, filter: string): boolean {
  const props = run.properties as Record<string, unknown>;
  const status = /status eq '([^']+)'/i.exec(filter)?.[1];
  const image = /OutputImageManifests eq '([^']+)'/i.exec(filter)?.[1];
  const images = ((props.outputImages as { repository: string; tag: string }[]) ?? []).map(
    (i) => `${i.repository}:${i.tag}`,
  );
  return (!status || status === props.status) && (!image || images.includes(image));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** One entry of a tar archive, as tar-stream's extract reads it. */
export interface TarEntry {
  header: tar.Header;
  data: Buffer;
}

/** Every entry of a tar archive, in order. */
export async function tarEntries(archive: Buffer): Promise<TarEntry[]> {
  const extract = tar.extract();
  const entries: TarEntry[] = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push({ header: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  extract.end(archive);
  await reading;
  return entries;
}

/** The regular files of a tar archive (what the registry's builder sees); refuses an empty or unreadable one. */
export async function readTar(archive: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const { header, data } of await tarEntries(archive)) {
    if (header.type === 'file') files.set(header.name.replace(/^\.\//, ''), data);
  }
  if (files.size === 0) throw new Error('empty or unreadable tar archive');
  return files;
}
