/**
 * The Azure SDK clients the aks target uses, all sharing the process's one credential (src/azure/credential.ts,
 * shared with Blob Storage: it caches tokens; making one per call would fetch a token per call). The ARM
 * endpoint is Azure's unless the settings name another (a sovereign cloud, or the local endpoint the tests
 * run against).
 */
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ComputeManagementClient } from '@azure/arm-compute';
import { ContainerRegistryManagementClient } from '@azure/arm-containerregistry';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { ResourceManagementClient } from '@azure/arm-resources';
import type { TokenCredential } from '@azure/identity';
import type { HttpClient } from '@azure/core-rest-pipeline';

import { azureCredential } from '../../azure/credential';
import type { AksSettings } from './aks-config';

export interface AzureClients {
  containerService: ContainerServiceClient;
  compute: ComputeManagementClient;
  resources: ResourceManagementClient;
  registry: ContainerRegistryManagementClient;
  authorization: AuthorizationManagementClient;
}

/**
 * The clients, signed in with the process-wide credential; `via` replaces the credential and the HTTP
 * client (the dry run records the requests the same calls would send instead of sending them).
 */
export function createAzureClients(
  settings: Pick<AksSettings, 'subscriptionId' | 'armEndpoint'>,
  via?: { credential: TokenCredential; httpClient: HttpClient },
): AzureClients {
  const cred = via?.credential ?? azureCredential();
  const endpoint = {
    ...(settings.armEndpoint ? { endpoint: settings.armEndpoint } : {}),
    ...(via ? { httpClient: via.httpClient } : {}),
  };
  // The older registry client derives its token scope from the endpoint; ARM's scope is the same everywhere.
  const scopes = { credentialScopes: ['https://management.azure.com/.default'] };
  return {
    containerService: new ContainerServiceClient(cred, settings.subscriptionId, endpoint),
    compute: new ComputeManagementClient(cred, settings.subscriptionId, endpoint),
    resources: new ResourceManagementClient(cred, settings.subscriptionId, endpoint),
    registry: new ContainerRegistryManagementClient(cred, settings.subscriptionId, { ...endpoint, ...scopes }),
    authorization: new AuthorizationManagementClient(cred, settings.subscriptionId, { ...endpoint, ...scopes }),
  };
}
