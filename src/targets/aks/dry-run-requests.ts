/**
 * The ARM requests a deployment would send, as they would be sent: the same body builders and the same
 * product functions (grantAcrPull, assertCanPull) drive the real SDK clients, whose HTTP client records
 * each request (method, path with api-version, JSON body) and answers it locally instead of sending it.
 * Nothing reaches Azure and no sign-in is needed. Values only Azure can know (the kubelet identity, the
 * upload URL) appear as `<…>` placeholders.
 */
import { createHttpHeaders } from '@azure/core-rest-pipeline';
import type { HttpClient, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
import type { TokenCredential } from '@azure/identity';

import { InvalidInputError } from '../../errors';
import { assertCanPull, grantAcrPull } from './acr-pull';
import type { AksPlan, AksSettings } from './aks-config';
import { createAzureClients } from './azure-clients';
import { managedClusterBody, resourceGroupBody } from './managed-cluster';
import { dockerBuildRequest } from './registry-build';

export interface ArmRequest {
  method: string;
  /** Path and query (api-version included), on https://management.azure.com. */
  path: string;
  body?: unknown;
  /** What the request is for. */
  purpose: string;
}

export const KUBELET_PLACEHOLDER = '<kubelet identity objectId, known once the cluster exists>';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ZERO_GUID = '00000000-0000-0000-0000-000000000000';
const UPLOAD_PATH = '<relativePath returned by listBuildSourceUploadUrl>';

export type DryRunSettings = Pick<
  AksSettings,
  'subscriptionId' | 'location' | 'environment' | 'registryName' | 'registryResourceGroup' | 'pollIntervalMs'
> &
  Partial<AksSettings>;

/** Records the requests without sending them; `answer` says what Azure would reply (also the GPU pool dry run). */
export class RecordingHttpClient implements HttpClient {
  readonly requests: Omit<ArmRequest, 'purpose'>[] = [];

  sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
    const url = new URL(request.url);
    const body = typeof request.body === 'string' && request.body ? (JSON.parse(request.body) as unknown) : undefined;
    this.requests.push({
      method: request.method,
      path: decodeURIComponent(url.pathname) + url.search,
      ...(body !== undefined ? { body } : {}),
    });
    return Promise.resolve({
      status: request.method === 'PUT' ? 201 : 200,
      headers: createHttpHeaders({ 'content-type': 'application/json' }),
      request,
      bodyAsText: JSON.stringify(answer(url.pathname, request.method, body)),
    });
  }
}

function answer(path: string, method: string, body: unknown): unknown {
  if (path.endsWith('/listBuildSourceUploadUrl'))
    return { uploadUrl: 'https://placeholder.invalid/', relativePath: UPLOAD_PATH };
  if (method === 'GET') return { value: [] };
  const b = (body ?? {}) as Record<string, unknown>;
  return { ...b, properties: { ...((b.properties as object) ?? {}), provisioningState: 'Succeeded' } };
}

export const credential: TokenCredential = {
  getToken: () => Promise.resolve({ token: 'dry-run', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

/** The writes (and the AcrPull check of an existing cluster) a deployment would send to ARM, in order. */
export async function armRequests(
  settings: DryRunSettings,
  plan: AksPlan,
  ownerId: string,
  name: string,
  imageTag: string,
): Promise<ArmRequest[]> {
  // The SDK insists on a GUID: a placeholder subscription is sent as the zero GUID and named again below.
  const placeholder = !GUID.test(settings.subscriptionId) ? settings.subscriptionId : undefined;
  if (placeholder) settings = { ...settings, subscriptionId: ZERO_GUID };
  const http = new RecordingHttpClient();
  const clients = createAzureClients({ subscriptionId: settings.subscriptionId }, { credential, httpClient: http });
  const purposes: string[] = [];
  const step = async (purpose: string, call: () => Promise<unknown>) => {
    const before = http.requests.length;
    await call();
    for (let i = before; i < http.requests.length; i++) purposes.push(purpose);
  };
  const aks = { ...settings, resourceGroup: plan.resourceGroup } as AksSettings;

  if (plan.createResourceGroup) {
    await step(`create resource group ${plan.resourceGroup} (deleted at teardown)`, () =>
      clients.resources.resourceGroups.createOrUpdate(plan.resourceGroup, resourceGroupBody(settings, ownerId)),
    );
  }
  if (plan.existingCluster) {
    await step(`check that cluster ${plan.clusterName}'s kubelet identity holds AcrPull on the registry`, () =>
      assertCanPull(clients, aks, plan, {
        name: plan.clusterName,
        location: settings.location,
        tags: managedClusterBody(plan, settings, ownerId, name).tags,
        identityProfile: { kubeletidentity: { objectId: KUBELET_PLACEHOLDER } },
      }).catch((err: unknown) => {
        // The recorder lists no assignments, so the check refuses; only the request matters here.
        if (!(err instanceof InvalidInputError)) throw err;
      }),
    );
  } else {
    await step(`create cluster ${plan.clusterName} (deleted at teardown)`, () =>
      clients.containerService.managedClusters.createOrUpdate(
        plan.resourceGroup,
        plan.clusterName,
        managedClusterBody(plan, settings, ownerId, name),
        { updateIntervalInMs: 0 },
      ),
    );
    const clusterId =
      `/subscriptions/${settings.subscriptionId}/resourcegroups/${plan.resourceGroup}` +
      `/providers/Microsoft.ContainerService/managedClusters/${plan.clusterName}`;
    await step(`grant the cluster's kubelet identity AcrPull on registry ${settings.registryName}`, () =>
      grantAcrPull(clients, aks, {
        id: clusterId,
        name: plan.clusterName,
        location: settings.location,
        tags: managedClusterBody(plan, settings, ownerId, name).tags,
        identityProfile: { kubeletidentity: { objectId: KUBELET_PLACEHOLDER } },
      }),
    );
  }
  await step('get a SAS URL to upload the build context to (then PUT there: blob storage, not ARM)', () =>
    clients.registry.registries.getBuildSourceUploadUrl(settings.registryResourceGroup, settings.registryName),
  );
  await step(`build and push ${plan.imageRepository}:${imageTag.slice(0, 12)}… with ACR Tasks (skipped if built)`, () =>
    clients.registry.registries
      .beginScheduleRun(
        settings.registryResourceGroup,
        settings.registryName,
        dockerBuildRequest(UPLOAD_PATH, plan.imageRepository, imageTag),
        { updateIntervalInMs: 0 },
      )
      .then((poller) => poller.pollUntilDone()),
  );
  const requests = http.requests.map((r, i) => ({ ...r, purpose: purposes[i] ?? '' }));
  return placeholder
    ? (JSON.parse(JSON.stringify(requests).replaceAll(ZERO_GUID, placeholder)) as ArmRequest[])
    : requests;
}
