/**
 * A local HTTPS endpoint that speaks Azure Resource Manager's wire protocol for the operations the `aks`
 * target uses, so the real Azure SDK clients (and DefaultAzureCredential) can be exercised without Azure.
 * This file is the server and router; each resource provider lives in its own module:
 *
 * - identity (here): the App Service managed-identity token endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER);
 *   every ARM call must carry a bearer token it issued, or gets 401 like ARM does;
 * - api-version is required on every ARM call (400 MissingApiVersionParameter otherwise);
 * - injectable faults (arm-protocol.ts): 429 storms with Retry-After, 500s, a cluster stuck in Updating, a
 *   failed delete, quota already used, a failing image build; long-running operations (arm-protocol.ts);
 * - Microsoft.Resources (resource-groups.ts), Microsoft.ContainerService (managed-clusters.ts),
 *   Microsoft.Compute (compute.ts), Microsoft.ContainerRegistry (container-registry.ts), and the blob
 *   storage behind the registry's SAS URLs (blob-storage.ts), Microsoft.Authorization role assignments
 *   (role-assignments.ts), and the registries' data plane (registry-data-plane.ts: token exchange, tag
 *   listing, manifest deletion) under /_acr/<registry>;
 * - image pulls (`canPull`): a cluster's kubelet identity pulls from a registry only when it holds AcrPull
 *   (or a role that includes it) on the registry, its resource group or the subscription; otherwise the
 *   registry answers 401, as ACR does, and the kubelet reports ImagePullBackOff.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { armError, Operations, readBody } from './arm-protocol';
import type { ArmFaults, Send } from './arm-protocol';
import { BlobStorage } from './blob-storage';
import { Compute, DEFAULT_SKUS, defaultQuotas } from './compute';
import type { Quotas, VmSku } from './compute';
import { ContainerRegistries } from './container-registry';
import type { ImageRecord } from './container-registry';
import { ManagedClusters } from './managed-clusters';
import type { ManagedClustersOptions } from './managed-clusters';
import { ResourceGroups } from './resource-groups';
import type { ResourceGroup } from './resource-groups';
import { RegistryDataPlane } from './registry-data-plane';
import { RoleAssignments } from './role-assignments';
import type { TestTls } from './test-tls';

export type { ArmFaults } from './arm-protocol';
export type { BlobStorage, BlobWriteRecord } from './blob-storage';
export type { VmSku } from './compute';
export type { ImageRecord, TarEntry } from './container-registry';
export { readTar, tarEntries } from './container-registry';
export type { ClusterEvent } from './managed-clusters';
export { BUILT_IN_ROLES } from './role-assignments';

/** AcrPull, the built-in role that lets an identity pull from a registry. */
export const ACR_PULL = '7f951dda-4ed3-4680-a7ca-43fe172d538d';

export type PullCheck = { ok: true } | { ok: false; reason: string };

export interface ArmEndpointOptions extends ManagedClustersOptions {
  tls: TestTls;
  /** Registries that exist: `${resourceGroup}/${name}`. */
  registries?: string[];
  skus?: VmSku[];
  /** Regional vCPU quota per family (and `cores` for the region total). */
  quotas?: Quotas;
  /** How long cluster/pool creation and deletion take. */
  operationMs?: number;
}

export interface RequestRecord {
  method: string;
  path: string;
  apiVersion?: string;
  status: number;
  /** When the answer was sent (ms since the epoch). */
  at: number;
}

export class ArmEndpoint {
  readonly faults: ArmFaults = {};
  readonly requests: RequestRecord[] = [];
  readonly images: Map<string, ImageRecord>;
  readonly resourceGroups: Map<string, ResourceGroup>;
  readonly identityHeader = crypto.randomBytes(16).toString('hex');
  /** The blob storage behind the registry's SAS URLs: its writes, and SAS URLs for tests to try. */
  readonly blobs: BlobStorage;
  /** What resourceSkus.list reports; tests may restrict a size. */
  readonly skus: VmSku[];
  /** What usage.list reports; tests may use quota up. */
  readonly quotas: Quotas;
  private readonly tokens = new Set<string>();
  private readonly server: https.Server;
  private readonly operations: Operations;
  private readonly compute: Compute;
  private readonly groups: ResourceGroups;
  private readonly clusters: ManagedClusters;
  private readonly registries: ContainerRegistries;
  /** Role assignments; `roles.callerMayAssignRoles = false` takes the worker's right to assign them. */
  readonly roles: RoleAssignments;
  private readonly dataPlane: RegistryDataPlane;
  private baseUrl = '';

  constructor(private readonly opts: ArmEndpointOptions) {
    this.skus = opts.skus ?? DEFAULT_SKUS;
    this.quotas = opts.quotas ?? defaultQuotas();
    this.operations = new Operations(opts, () => this.baseUrl);
    this.blobs = new BlobStorage(() => this.baseUrl);
    this.compute = new Compute(opts.location, this.skus, this.quotas);
    this.groups = new ResourceGroups(
      opts,
      this.operations,
      (key) => this.clusters.deleteGroup(key),
      (key) => [...this.clusters.inGroup(key), ...this.registriesIn(key)],
    );
    this.roles = new RoleAssignments(opts.subscriptionId, (scope) => this.scopeExists(scope));
    this.clusters = new ManagedClusters(
      opts,
      this.faults,
      this.skus,
      this.operations,
      this.groups,
      (id) => this.roles.principals.add(id),
      this.quotas,
    );
    this.registries = new ContainerRegistries(opts, this.faults, this.blobs);
    this.images = this.registries.images;
    this.dataPlane = new RegistryDataPlane(this.images, (token) => this.tokens.has(token));
    this.resourceGroups = this.groups.groups;
    for (const r of opts.registries ?? []) this.groups.ensure(r.split('/')[0]!);
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
      INFERCTL_ACR_ENDPOINT: `${this.baseUrl}/_acr/${registry.toLowerCase()}`,
      IDENTITY_ENDPOINT: `${this.baseUrl}/msi/token`,
      IDENTITY_HEADER: this.identityHeader,
    };
  }

  clusterNames(): string[] {
    return this.clusters.names();
  }

  /** The agent pools of a cluster, as ARM has them; undefined for no such cluster. */
  clusterPools(name: string): string[] | undefined {
    return this.clusters.poolNames(name);
  }

  /** An operation under way on a cluster, started by someone else (Upgrading, Updating), until set back. */
  setClusterProvisioningState(name: string, state: string): void {
    this.clusters.setProvisioningState(name, state);
  }

  clusterTags(name: string): Record<string, string> | undefined {
    return this.clusters.tags(name);
  }

  /**
   * Makes a cluster exist at once, as if someone (or an earlier run) had created it; optionally with a GPU pool,
   * and attached to registries (`${resourceGroup}/${name}`: its kubelet identity holds AcrPull on them).
   */
  async seedCluster(
    resourceGroup: string,
    name: string,
    tags: Record<string, string>,
    gpuNodes = 0,
    attachedRegistries: string[] = [],
  ): Promise<void> {
    await this.clusters.seed(resourceGroup, name, tags, gpuNodes);
    for (const r of attachedRegistries) this.attachRegistry(name, r);
  }

  /** Makes an image exist in a registry as if a deployment had pushed it `ageMs` ago. */
  seedImage(registry: string, repository: string, tag: string, ageMs: number): void {
    const digest = `sha256:${crypto.createHash('sha256').update(`${repository}:${tag}`).digest('hex')}`;
    const pushedAt = Date.now() - ageMs;
    this.images.set(`${registry.toLowerCase()}/${repository}:${tag}`, {
      repository,
      tag,
      digest,
      context: Buffer.alloc(0),
      pushedAt,
    });
  }

  /** What `az aks update --attach-acr` does: AcrPull for the cluster's kubelet identity on the registry. */
  attachRegistry(clusterName: string, registry: string): void {
    const [group, reg] = registry.split('/') as [string, string];
    this.roles.seed(this.registryId(group, reg), ACR_PULL, this.clusters.kubeletObjectId(clusterName)!);
  }

  /** The registries of a resource group, as its resource list shows them. */
  private registriesIn(groupKey: string): Record<string, unknown>[] {
    return (this.opts.registries ?? [])
      .map((r) => r.split('/') as [string, string])
      .filter(([group]) => group.toLowerCase() === groupKey)
      .map(([group, name]) => ({
        id: this.registryId(group, name),
        name,
        type: 'Microsoft.ContainerRegistry/registries',
        location: this.opts.location,
        tags: {},
      }));
  }

  /** The ARM id of a registry. */
  registryId(resourceGroup: string, name: string): string {
    return `/subscriptions/${this.opts.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerRegistry/registries/${name}`;
  }

  /**
   * Whether the kubelets of `clusterName` may pull `image` (`<registry>.azurecr.io/<repository>:<tag>`), as
   * ACR decides it: the image must exist, and the kubelet identity must hold a pull role on the registry.
   */
  canPull(clusterName: string, image: string): PullCheck {
    const m = /^([a-z0-9]+)\.azurecr\.io\/([^:]+):(.+)$/.exec(image);
    const registry = m && (this.opts.registries ?? []).find((r) => r.split('/')[1]!.toLowerCase() === m[1]);
    if (!m || !registry) return { ok: false, reason: `Failed to pull image "${image}": no such registry` };
    const [group, name] = registry.split('/') as [string, string];
    const kubelet = this.clusters.kubeletObjectId(clusterName);
    if (!kubelet || !this.roles.canPull(kubelet, this.registryId(group, name))) {
      return {
        ok: false,
        reason:
          `Failed to pull image "${image}": failed to authorize: failed to fetch anonymous token: unexpected status ` +
          `from GET request to https://${m[1]}.azurecr.io/oauth2/token?scope=repository%3A${m[2]}%3Apull&service=` +
          `${m[1]}.azurecr.io: 401 Unauthorized`,
      };
    }
    if (!this.images.has(`${m[1]}/${m[2]}:${m[3]}`)) {
      return { ok: false, reason: `Failed to pull image "${image}": ${image}: not found: manifest unknown` };
    }
    return { ok: true };
  }

  private scopeExists(scope: string): { ok: true } | { ok: false; status: number; body: unknown } {
    const m =
      /^\/subscriptions\/[^/]+\/resourceGroups\/([^/]+)(?:\/providers\/Microsoft\.ContainerRegistry\/registries\/([^/]+))?/i.exec(
        scope,
      );
    if (!m) return { ok: true };
    if (!this.groups.has(m[1]!)) {
      return {
        ok: false,
        status: 404,
        body: armError('ResourceGroupNotFound', `Resource group '${m[1]}' could not be found.`),
      };
    }
    const known = (this.opts.registries ?? []).some((r) => r.toLowerCase() === `${m[1]}/${m[2]}`.toLowerCase());
    if (m[2] && !known) {
      return {
        ok: false,
        status: 404,
        body: armError(
          'ResourceNotFound',
          `The Resource 'Microsoft.ContainerRegistry/registries/${m[2]}' under resource group '${m[1]}' was not found.`,
        ),
      };
    }
    return { ok: true };
  }

  // ---------------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const record = (status: number, apiVersion?: string) =>
      this.requests.push({ method: req.method ?? '', path: url.pathname, apiVersion, status, at: Date.now() });
    if (url.pathname.startsWith('/_blob/') && this.blobs.refuseOversized(req, url, res, (status) => record(status))) {
      return;
    }
    const body = await readBody(req);
    const send = (status: number, json?: unknown, headers: Record<string, string> = {}) => {
      record(status, url.searchParams.get('api-version') ?? undefined);
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
      if (url.pathname.startsWith('/_blob/')) return this.blobs.handle(req, url, body, res, (status) => record(status));
      if (url.pathname.startsWith('/_acr/')) {
        this.dataPlane.handle(req.method ?? 'GET', url, body, req.headers.authorization, res);
        record(res.statusCode);
        return;
      }

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

  /** Subscription-level routes first, then those under a resource group, provider by provider. */
  private async route(method: string, url: URL, json: Record<string, unknown>, send: Send): Promise<void> {
    // Operations progress on Azure's clock, whether or not anyone polls them.
    await this.operations.settleAll();
    const p = url.pathname;
    const sub = `/subscriptions/${this.opts.subscriptionId}`;
    if (!p.toLowerCase().startsWith(sub.toLowerCase())) {
      return send(404, armError('SubscriptionNotFound', `The subscription in ${p} could not be found.`));
    }
    const rest = p.slice(sub.length);
    if (this.roles.route(method, p, url, json, send)) return;
    if (this.compute.route(rest, send)) return;
    if (await this.operations.route(rest, send)) return;
    if (this.clusters.routeSubscription(rest, send)) return;
    if (this.groups.route(method, rest, url, json, send)) return;

    const rg = /^\/resourceGroups\/([^/]+)(\/.*)$/i.exec(rest);
    if (!rg) return send(404, armError('NotFound', `No route for ${method} ${p}`));
    const [, group, tail] = rg as unknown as [string, string, string];
    if (!this.groups.has(group)) {
      return send(404, armError('ResourceGroupNotFound', `Resource group '${group}' could not be found.`));
    }
    if (this.clusters.route(method, group, tail, json, send)) return;
    if (this.registries.route(method, group, tail, url, json, send)) return;
    return send(404, armError('NotFound', `No route for ${method} ${p}`));
  }
}
