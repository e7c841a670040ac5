/**
 * A batch job's GPU node pool on the user's AKS cluster: added with agentPools.createOrUpdate (after the
 * size and quota preflight), tagged with the owning workflow id, and deleted with agentPools.delete when
 * the job ends. Idempotent like the cluster code (managed-cluster.ts): a retried add finds the pool an
 * earlier attempt started and waits for it; a delete of a pool already gone is done; a pool with another
 * owner is never touched.
 */
import crypto from 'node:crypto';

import type { AgentPool } from '@azure/arm-containerservice';

import { InvalidInputError } from '../../errors';
import { FailureType } from '../../shared/failure-types';
import type { GpuPoolSpec } from '../../shared/gpu-pool-types';
import type { StepProgress } from '../target';
import { AKS_DEFAULTS } from './aks-config';
import type { AksSettings } from './aks-config';
import type { AzureClients } from './azure-clients';
import { azureFailure, isNotFound } from './azure-errors';
import { ENVIRONMENT_TAG } from './environment-tag';
import { GPU_POOL_LABEL, GPU_TAINT, OWNER_TAG } from './managed-cluster';
import { preflightQuota } from './preflight';
import { ownerOfTags, tagsOwnedBy } from './ownership';

export const JOB_TAG = 'inferctl-job';

/** Where one job's pool lives and what it is called. */
export interface GpuPoolPlan {
  resourceGroup: string;
  clusterName: string;
  /** `g` + 11 hex digits of the owner id: lowercase letters and digits, ≤ 12 (AKS's Linux pool rule). */
  poolName: string;
  vmSize: string;
  nodes: number;
  /** The job's Kubernetes namespace (≤ 63 characters). */
  namespace: string;
}

export function gpuPoolPlan(spec: GpuPoolSpec, settings: Pick<AksSettings, 'resourceGroup'>): GpuPoolPlan {
  const hash = crypto.createHash('sha256').update(spec.ownerId).digest('hex');
  return {
    resourceGroup: spec.resourceGroup ?? settings.resourceGroup,
    clusterName: spec.cluster,
    poolName: `g${hash.slice(0, 11)}`,
    vmSize: spec.gpuVmSize ?? AKS_DEFAULTS.gpuVmSize,
    nodes: spec.gpuNodes,
    namespace: `${AKS_DEFAULTS.kubernetesNamespacePrefix}${spec.jobName}`.slice(0, 54) + `-${hash.slice(0, 8)}`,
  };
}

/** The pool's body: a tainted user pool whose nodes carry the pool label the worker pods select. */
export function gpuPoolBody(plan: GpuPoolPlan, spec: GpuPoolSpec, settings: Pick<AksSettings, 'environment'>) {
  const body: AgentPool = {
    mode: 'User',
    osType: 'Linux',
    vmSize: plan.vmSize,
    count: plan.nodes,
    nodeTaints: [GPU_TAINT],
    nodeLabels: { [GPU_POOL_LABEL]: plan.poolName },
    tags: { [OWNER_TAG]: spec.ownerId, [JOB_TAG]: spec.jobName, [ENVIRONMENT_TAG]: settings.environment },
  };
  return body;
}

export interface PoolScope {
  clients: AzureClients;
  settings: AksSettings;
  plan: GpuPoolPlan;
  spec: GpuPoolSpec;
  signal?: AbortSignal;
  progress: StepProgress;
}

async function getPool({ clients, plan, signal }: PoolScope): Promise<AgentPool | undefined> {
  try {
    return await clients.containerService.agentPools.get(plan.resourceGroup, plan.clusterName, plan.poolName, {
      abortSignal: signal,
    });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw azureFailure(err, `reading agent pool ${plan.poolName} of cluster ${plan.clusterName}`);
  }
}

/** Adds the pool (or adopts the one an earlier attempt of this job added) and waits until it has its nodes. */
export async function ensureGpuPool(scope: PoolScope): Promise<{ created: boolean }> {
  const { clients, settings, plan, spec, signal, progress } = scope;
  try {
    await clients.containerService.managedClusters.get(plan.resourceGroup, plan.clusterName, { abortSignal: signal });
  } catch (err) {
    if (!isNotFound(err)) throw azureFailure(err, `reading cluster ${plan.clusterName}`);
    throw new InvalidInputError(
      `Cluster ${plan.clusterName} was not found in resource group ${plan.resourceGroup}. Check --cluster and ` +
        '--resource-group (the GPU pool is added to an existing cluster).',
      FailureType.AksClusterNotFound,
    );
  }
  const existing = await getPool(scope);
  if (existing && !tagsOwnedBy(existing.tags, { id: spec.ownerId, environment: settings.environment })) {
    throw new InvalidInputError(
      `Cluster ${plan.clusterName} already has an agent pool ${plan.poolName} that belongs to ` +
        `${ownerOfTags(existing.tags)}. Pick another job name.`,
      FailureType.AksClusterNameInUse,
    );
  }
  if (existing?.provisioningState === 'Succeeded') return { created: false };
  if (existing?.provisioningState === 'Deleting') {
    throw new Error(`Agent pool ${plan.poolName} is still being deleted; retrying once it is gone.`);
  }
  if (!existing) {
    progress(`checking that ${settings.location} offers ${plan.vmSize} and the quota covers ${plan.nodes} of them`);
    await preflightQuota(clients.compute, settings.location, [{ vmSize: plan.vmSize, count: plan.nodes }], signal);
  }
  progress(`adding agent pool ${plan.poolName} (${plan.nodes}× ${plan.vmSize}) to cluster ${plan.clusterName}`);
  try {
    const poller = clients.containerService.agentPools.createOrUpdate(
      plan.resourceGroup,
      plan.clusterName,
      plan.poolName,
      gpuPoolBody(plan, spec, settings),
      { abortSignal: signal, updateIntervalInMs: settings.pollIntervalMs },
    );
    poller.onProgress((state) => progress(`adding agent pool ${plan.poolName}: ${state.status}`));
    await poller;
  } catch (err) {
    throw azureFailure(err, `adding agent pool ${plan.poolName} to cluster ${plan.clusterName}`);
  }
  return { created: !existing };
}

/** Deletes the pool when this job owns it and waits until it is gone; a pool (or cluster) already gone is done. */
export async function deleteGpuPool(scope: PoolScope): Promise<string[]> {
  const { clients, settings, plan, spec, signal, progress } = scope;
  const pool = await getPool(scope);
  if (!pool) return [];
  // Never delete what we did not create: the job's workflow, of this installation.
  if (!tagsOwnedBy(pool.tags, { id: spec.ownerId, environment: settings.environment })) return [];
  progress(`deleting agent pool ${plan.poolName} of cluster ${plan.clusterName} (${pool.provisioningState})`);
  try {
    await clients.containerService.agentPools.delete(plan.resourceGroup, plan.clusterName, plan.poolName, {
      abortSignal: signal,
      updateIntervalInMs: settings.pollIntervalMs,
    });
  } catch (err) {
    if (!isNotFound(err)) throw azureFailure(err, `deleting agent pool ${plan.poolName}`);
  }
  return [`agent pool ${plan.poolName}`];
}
