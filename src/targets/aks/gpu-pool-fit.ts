/**
 * Autoscaling on aks, the GPU pool's part: room for the replicas the autoscaler wants. Growing comes before
 * the replicas (a pod without a GPU node would wait Pending), up to the pool's maximum (--max-gpu-nodes, or
 * what --max-replicas need); shrinking comes after them, once the scoring pods beyond the count are gone, so
 * no node with a serving pod is taken away; never below what --min-replicas need. A quota refusal is not a
 * failure: the pool is held at the nodes it has, the answer says why, and the replicas fit what there is.
 * Only a cluster this deployment created is scaled; an adopted cluster's pool is the user's.
 */
import type { KubeConfig } from '@kubernetes/client-node';

import { PermanentError } from '../../errors';
import { FailureType } from '../../shared/failure-types';
import type { DeploymentSpec, GpuPoolFit, GpuPoolWant } from '../../shared/target-types';
import { readGpuPool, scaleGpuPool, setPoolCount, waitForScorersGone } from './gpu-pool-scale';
import type { PoolScaleScope } from './gpu-pool-scale';

/** What a fit needs of the target beyond Azure: the cluster's GPUs, its Kubernetes access (cached credentials). */
export interface FitAccess {
  poolGpus: () => Promise<number>;
  onCluster: (fn: (kc: KubeConfig) => Promise<void>) => Promise<void>;
}

/** The deployment's pool scope, with its name and namespace (the scoring pods a shrink waits for). */
export type FitScope = PoolScaleScope & { name: string; namespace: string };

/** Before a deploy: a pool that follows its replicas (scale to zero, autoscaling) gets the nodes they need. */
export function growForDeploy(scope: PoolScaleScope, spec: DeploymentSpec): Promise<number | undefined> {
  if (!(spec.hold || spec.gpuPoolFollows) || spec.replicas === 0) return Promise.resolve(undefined);
  return scaleGpuPool(scope, spec.replicas, Boolean(spec.gpuPoolFollows)); // autoscaling: grown only
}

export async function fitGpuPool(scope: FitScope, want: GpuPoolWant, access: FitAccess): Promise<GpuPoolFit> {
  if (scope.plan.existingCluster) {
    const room = await access.poolGpus(); // the user's pool, never scaled
    return { previousNodes: 0, nodes: 0, gpusPerNode: 1, maxNodes: 0, room, managed: false };
  }
  const { pool, gpusPerNode, managed } = await readGpuPool(scope);
  const previousNodes = pool.count ?? 0;
  const nodesFor = (replicas: number) => Math.ceil(replicas / gpusPerNode);
  const maxNodes = want.maxNodes ?? nodesFor(want.maxReplicas);
  const fit = (nodes: number, held?: string): GpuPoolFit => ({
    previousNodes,
    nodes,
    gpusPerNode,
    maxNodes,
    room: nodes * gpusPerNode,
    managed,
    ...(held ? { held } : {}),
  });
  if (!managed) return fit(previousNodes);

  const need = nodesFor(want.replicas);
  const nodes = Math.min(maxNodes, Math.max(nodesFor(want.minReplicas), need));
  const atMost =
    need > maxNodes
      ? want.maxNodes !== undefined
        ? `--max-gpu-nodes ${maxNodes}`
        : `the pool's maximum of ${maxNodes} node(s) (what --max-replicas ${want.maxReplicas} needs)`
      : undefined;
  if (nodes === previousNodes && pool.provisioningState === 'Succeeded') return fit(nodes, atMost);
  if (nodes < previousNodes) {
    // The replicas went first; their pods must be gone before their nodes are.
    await access.onCluster((kc) =>
      waitForScorersGone(kc, scope.namespace, scope.name, scope.signal, scope.progress, want.replicas),
    );
  }
  try {
    await setPoolCount(scope, pool, nodes);
  } catch (err) {
    if (nodes > previousNodes && err instanceof PermanentError && err.type === FailureType.AzureQuotaExceeded) {
      return fit(previousNodes, `quota: ${quotaReason(err.message)}`);
    }
    throw err;
  }
  return fit(nodes, atMost);
}

/** Azure's own quota sentence, without the "Quota exceeded while …" preamble and the advice after it. */
function quotaReason(message: string): string {
  const azure = /(QuotaExceeded|InsufficientVCPUQuota)\s+(.*?)(\. Request more vCPU quota|$)/s.exec(message);
  return (azure ? `${azure[1]} ${azure[2]}` : message).slice(0, 300);
}
