/**
 * The process's one Azure credential, shared by the AKS target (src/targets/aks/azure-clients.ts,
 * registry-images.ts) and Blob Storage (src/storage/blob-client.ts): a DefaultAzureCredential built on
 * first use and reused, so its token cache serves every client (one per call would fetch a token per
 * call). It tries, in order: the environment (a service principal), workload identity, managed identity,
 * the Azure CLI (`az login`)…
 */
import { DefaultAzureCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/identity';

let credential: TokenCredential | undefined;

/** The process-wide credential, built on the first call. */
export function azureCredential(): TokenCredential {
  credential ??= new DefaultAzureCredential();
  return credential;
}
