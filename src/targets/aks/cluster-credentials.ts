/**
 * The kubeconfig of an AKS cluster, from ARM's listClusterUserCredentials (what `az aks get-credentials`
 * fetches), for the Kubernetes clients of the deploy, GPU-pool and janitor steps.
 */
import type { KubeConfig } from '@kubernetes/client-node';

import type { AzureClients } from './azure-clients';
import { azureFailure } from './azure-errors';
import { kubeConfigFromYaml } from './kubernetes-deployment';

export async function clusterKubeConfig(
  clients: Pick<AzureClients, 'containerService'>,
  cluster: { name: string; resourceGroup: string },
  signal?: AbortSignal,
): Promise<KubeConfig> {
  try {
    const creds = await clients.containerService.managedClusters.listClusterUserCredentials(
      cluster.resourceGroup,
      cluster.name,
      { abortSignal: signal },
    );
    const value = creds.kubeconfigs?.[0]?.value;
    if (!value) throw new Error(`cluster ${cluster.name} returned no kubeconfig`);
    return kubeConfigFromYaml(Buffer.from(value).toString('utf8'));
  } catch (err) {
    throw azureFailure(err, `fetching credentials of cluster ${cluster.name}`);
  }
}
