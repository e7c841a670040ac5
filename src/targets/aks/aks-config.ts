/**
 * Where the `aks` target works: the worker's Azure settings (environment) plus the per-deployment choices
 * the deploy command passes (`DeploymentSpec.aks`). Workflow-safe types live in ../target.ts; this file
 * reads the environment and so is only used by workers and the CLI.
 */
import { connectionSettings } from '../../temporal/connection';
import { environmentOf } from './environment-tag';
import { DEFAULT_GPU_VM_SIZE } from './gpu-sizes';
import { WorkerCapabilityError } from '../../errors';
import type { AksDeploymentOptions } from '../../shared/target-types';
import { FailureType } from '../../shared/failure-types';

/** The worker-level settings, read once from the environment. */
export interface AksSettings {
  subscriptionId: string;
  /** Azure region, e.g. eastus. */
  location: string;
  /** Resource group holding the clusters (and the registry unless INFERCTL_ACR_RESOURCE_GROUP says otherwise). */
  resourceGroup: string;
  /** Azure Container Registry name (without .azurecr.io) that builds and stores the scoring image. */
  registryName: string;
  registryResourceGroup: string;
  /** ARM endpoint; only set to reach a sovereign cloud or the local test endpoint. */
  armEndpoint?: string;
  /** The registry's login server URL (default https://<registry>.azurecr.io; the tests' is local). */
  registryEndpoint?: string;
  /** How old an unused scoring image must be before the janitor deletes it (a deployment may be between build and apply). */
  imageGraceMs: number;
  /** How often long-running operations are polled. */
  pollIntervalMs: number;
  /** How long cluster creation may take before it is declared stuck. */
  provisionTimeoutMs: number;
  /** Port the LoadBalancer Service exposes (INFERCTL_AKS_SERVICE_PORT); unset: 443 for HTTPS, 80 for HTTP. */
  servicePort?: number;
  /** How long a pod may sit in ImagePullBackOff, CrashLoopBackOff or unschedulable before that is fatal. */
  podFailureGraceMs: number;
  /**
   * The per-deployment server certificate's lifetime in days (INFERCTL_AKS_CERT_VALIDITY_SECONDS, for tests
   * that watch a renewal; unset: 365 days).
   */
  certificateValidityDays?: number;
  /** This installation (`<Temporal address>/<namespace>`), tagged on everything it creates. */
  environment: string;
}

export const AKS_DEFAULTS = {
  gpuVmSize: DEFAULT_GPU_VM_SIZE,
  systemVmSize: 'Standard_D2s_v3',
  systemNodeCount: 1,
  kubernetesNamespacePrefix: 'inferctl-',
  imageRepository: 'inferctl-scorer',
} as const;

export const AKS_ENVIRONMENT = [
  ['AZURE_SUBSCRIPTION_ID', 'subscription to create clusters in'],
  ['INFERCTL_AKS_LOCATION', 'Azure region, e.g. eastus'],
  ['INFERCTL_AKS_RESOURCE_GROUP', 'resource group for the clusters'],
  ['INFERCTL_ACR_NAME', 'Azure Container Registry that builds the image'],
  ['INFERCTL_ACR_RESOURCE_GROUP', "the registry's resource group (default: INFERCTL_AKS_RESOURCE_GROUP)"],
] as const;

/**
 * Reads the settings, naming every missing variable at once. `temporal` is where this process's workflows
 * run (default: the SDK's environment configuration, as the worker connects).
 */
export function aksSettingsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  temporal: { address: string; namespace: string } = connectionSettings(),
): AksSettings {
  const missing = AKS_ENVIRONMENT.filter(([name]) => name !== 'INFERCTL_ACR_RESOURCE_GROUP' && !env[name]);
  if (missing.length > 0) {
    throw new WorkerCapabilityError(
      `The aks target needs ${missing.map(([n]) => n).join(', ')} in the worker's environment:\n` +
        AKS_ENVIRONMENT.map(([n, what]) => `  ${n}  ${what}`).join('\n') +
        '\nSee "Deploy to AKS" in the README.',
      FailureType.AksNotConfigured,
    );
  }
  const resourceGroup = env.INFERCTL_AKS_RESOURCE_GROUP!;
  return {
    subscriptionId: env.AZURE_SUBSCRIPTION_ID!,
    location: env.INFERCTL_AKS_LOCATION!,
    resourceGroup,
    registryName: env.INFERCTL_ACR_NAME!,
    registryResourceGroup: env.INFERCTL_ACR_RESOURCE_GROUP ?? resourceGroup,
    armEndpoint: env.INFERCTL_ARM_ENDPOINT,
    registryEndpoint: env.INFERCTL_ACR_ENDPOINT,
    imageGraceMs: positive(env.INFERCTL_JANITOR_IMAGE_GRACE_MS, 24 * 3_600_000),
    pollIntervalMs: positive(env.INFERCTL_AKS_POLL_MS, 10_000),
    provisionTimeoutMs: positive(env.INFERCTL_AKS_PROVISION_TIMEOUT_MS, 45 * 60_000),
    ...(env.INFERCTL_AKS_SERVICE_PORT ? { servicePort: positive(env.INFERCTL_AKS_SERVICE_PORT, 443) } : {}),
    podFailureGraceMs: positive(env.INFERCTL_AKS_POD_FAILURE_GRACE_MS, 3 * 60_000),
    ...(env.INFERCTL_AKS_CERT_VALIDITY_SECONDS
      ? { certificateValidityDays: positive(env.INFERCTL_AKS_CERT_VALIDITY_SECONDS, 365 * 86400) / 86400 }
      : {}),
    environment: environmentOf(temporal),
  };
}

/** True when the environment names the aks settings, so a worker should offer the target. */
export function aksConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.AZURE_SUBSCRIPTION_ID && env.INFERCTL_AKS_RESOURCE_GROUP && env.INFERCTL_ACR_NAME);
}

/** Everything a deployment resolves to, names included: one place decides what is called what. */
export interface AksPlan {
  clusterName: string;
  /** True when the user named an existing cluster: it is never deleted. */
  existingCluster: boolean;
  resourceGroup: string;
  createResourceGroup: boolean;
  gpuPoolName: string;
  gpuVmSize: string;
  gpuNodeCount: number;
  systemVmSize: string;
  systemNodeCount: number;
  namespace: string;
  imageRepository: string;
}

export function aksPlan(
  name: string,
  replicas: number,
  settings: Pick<AksSettings, 'resourceGroup'>,
  opts: AksDeploymentOptions = {},
): AksPlan {
  const plan: AksPlan = {
    clusterName: opts.cluster ?? `inferctl-${name}`,
    existingCluster: Boolean(opts.cluster),
    resourceGroup: opts.resourceGroup ?? settings.resourceGroup,
    createResourceGroup: Boolean(opts.createResourceGroup),
    gpuPoolName: 'gpu',
    gpuVmSize: opts.gpuVmSize ?? AKS_DEFAULTS.gpuVmSize,
    gpuNodeCount: opts.gpuNodeCount ?? replicas,
    systemVmSize: AKS_DEFAULTS.systemVmSize,
    systemNodeCount: AKS_DEFAULTS.systemNodeCount,
    namespace: `${AKS_DEFAULTS.kubernetesNamespacePrefix}${name}`,
    imageRepository: AKS_DEFAULTS.imageRepository,
  };
  return plan;
}

function positive(value: string | undefined, fallback: number): number {
  const n = value === undefined ? NaN : Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}
