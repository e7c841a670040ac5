/** The deploy command's aks flags, reduced to what differs from the worker's defaults. */
import { DEFAULT_GPU_VM_SIZE } from '../targets/aks/gpu-sizes';
import type { AksDeploymentOptions } from '../shared/target-types';
import { endpointOptions } from './endpoint-flags';
import type { EndpointFlags } from './endpoint-flags';

/** The deploy command's aks flags: where and on what (the endpoint's own flags: EndpointFlags). */
export interface AksFlags extends EndpointFlags {
  cluster?: string;
  resourceGroup?: string;
  createResourceGroup?: true;
  gpuVmSize: string;
  gpuNodes?: number;
}

/** The aks choices given on the command line; only what differs from the worker's defaults. */
export function aksOptions(o: AksFlags): AksDeploymentOptions {
  const aks: AksDeploymentOptions = {};
  if (o.cluster) aks.cluster = o.cluster;
  if (o.resourceGroup) aks.resourceGroup = o.resourceGroup;
  if (o.createResourceGroup) aks.createResourceGroup = true;
  if (o.gpuVmSize && o.gpuVmSize !== DEFAULT_GPU_VM_SIZE) aks.gpuVmSize = o.gpuVmSize;
  if (o.gpuNodes) aks.gpuNodeCount = o.gpuNodes;
  return { ...aks, ...endpointOptions(o) };
}
