/**
 * Checks, before anything bills, that the VM sizes are offered in the region and that the regional and
 * per-family vCPU quotas leave room for the node pools. Both failures are the user's to fix (a quota
 * request or another size), so they are AzureRefusedErrors that say which.
 */
import type { ComputeManagementClient } from '@azure/arm-compute';

import { assertNotRetired } from './gpu-sizes';
import { AzureRefusedError, azureFailure } from './azure-errors';
import { FailureType } from '../../shared/failure-types';

export interface PoolRequest {
  vmSize: string;
  count: number;
}

export interface PreflightReport {
  /** vCPUs the pools need, per quota name ('cores' is the regional total). */
  needed: Record<string, number>;
  /** What is free under each quota before we create anything. */
  available: Record<string, number>;
}

export async function preflightQuota(
  compute: ComputeManagementClient,
  location: string,
  pools: PoolRequest[],
  signal?: AbortSignal,
): Promise<PreflightReport> {
  for (const pool of pools) assertNotRetired(pool.vmSize);
  const sizes = new Map<string, { family: string; vCPUs: number }>();
  try {
    for await (const sku of compute.resourceSkus.list({ filter: `location eq '${location}'`, abortSignal: signal })) {
      if (sku.resourceType !== 'virtualMachines' || !sku.name) continue;
      if (!pools.some((p) => p.vmSize.toLowerCase() === sku.name!.toLowerCase())) continue;
      const offered = (sku.locations ?? []).some((l) => l.toLowerCase() === location.toLowerCase());
      const restricted = (sku.restrictions ?? []).find(
        (r) => r.type === 'Location' && (r.values ?? []).some((v) => v.toLowerCase() === location.toLowerCase()),
      );
      if (!offered || restricted) {
        throw new AzureRefusedError(
          `VM size ${sku.name} is not available to this subscription in ${location}` +
            `${restricted?.reasonCode ? ` (${restricted.reasonCode})` : ''}. Pick another --gpu-vm-size or region ` +
            '(`az vm list-skus --location <region> --size Standard_NC --output table` lists what is offered).',
          FailureType.AzureSkuNotAvailable,
        );
      }
      const vCPUs = Number(sku.capabilities?.find((c) => c.name === 'vCPUs')?.value ?? NaN);
      sizes.set(sku.name.toLowerCase(), { family: sku.family ?? 'unknown', vCPUs });
    }
  } catch (err) {
    throw azureFailure(err, 'listing VM sizes');
  }

  const needed: Record<string, number> = { cores: 0 };
  for (const pool of pools) {
    const size = sizes.get(pool.vmSize.toLowerCase());
    if (!size) {
      throw new AzureRefusedError(
        `VM size ${pool.vmSize} is not offered in ${location}. Check the spelling (e.g. Standard_NC4as_T4_v3) or pick ` +
          'another region.',
        FailureType.AzureSkuNotAvailable,
      );
    }
    const cores = size.vCPUs * pool.count;
    needed[size.family] = (needed[size.family] ?? 0) + cores;
    needed.cores! += cores;
  }

  const available: Record<string, number> = {};
  try {
    for await (const usage of compute.usage.list(location, { abortSignal: signal })) {
      const name = usage.name?.value;
      if (name && name in needed) available[name] = usage.limit - usage.currentValue;
    }
  } catch (err) {
    throw azureFailure(err, `reading vCPU quota in ${location}`);
  }
  for (const [quota, cores] of Object.entries(needed)) {
    const free = available[quota];
    if (free !== undefined && free < cores) {
      throw new AzureRefusedError(
        `Not enough vCPU quota in ${location}: the node pools need ${cores} vCPUs of "${quota}" but only ${free} ` +
          `are free. Request an increase for "${quota}" in the portal (Subscriptions → Usage + quotas), ` +
          'or use fewer GPU nodes.',
        FailureType.AzureQuotaExceeded,
      );
    }
  }
  return { needed, available };
}

/** GPUs one VM of `vmSize` has, from the SKU's `GPUs` capability (0 when it lists none). */
export async function gpusPerVm(
  compute: ComputeManagementClient,
  location: string,
  vmSize: string,
  signal?: AbortSignal,
): Promise<number> {
  try {
    for await (const sku of compute.resourceSkus.list({ filter: `location eq '${location}'`, abortSignal: signal })) {
      if (sku.resourceType === 'virtualMachines' && sku.name?.toLowerCase() === vmSize.toLowerCase()) {
        return Number(sku.capabilities?.find((c) => c.name === 'GPUs')?.value ?? 0);
      }
    }
  } catch (err) {
    throw azureFailure(err, `looking up VM size ${vmSize}`);
  }
  return 0;
}
