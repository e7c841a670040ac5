/**
 * `inferctl deploy --target aks --dry-run`: what a deployment would create, and what its node pools cost
 * per hour and for the TTL, computed locally from the same plan, manifests and build context the target
 * uses. `--json` carries the full ARM requests (dry-run-requests.ts: the real SDK calls, recorded instead
 * of sent) and the full Kubernetes objects. Creates nothing and needs no Azure sign-in (the registry,
 * subscription and region come from the environment when set, placeholders otherwise).
 */
import type { KubernetesObject } from '@kubernetes/client-node';

import { connectionSettings } from '../../temporal/connection';
import { v2ModelName } from '../../shared/deploy-types';
import { AKS_DEFAULTS, aksPlan } from './aks-config';
import { armRequests } from './dry-run-requests';
import type { ArmRequest } from './dry-run-requests';
import { environmentOf } from './environment-tag';
import type { AksDeploymentOptions } from '../../shared/target-types';
import type { PreprocessConfig } from '../../shared/preprocess-types';
import { formatDuration } from '../../shared/duration';
import { buildContext, servedWith } from './build-context';
import { assertNotRetired } from './gpu-sizes';
import { devicePluginManifest, scoringManifests } from './kubernetes-manifests';
import { scaleToZeroManifests } from './front-manifests';
import { GPU_TAINT, OWNER_TAG } from './managed-cluster';
import { estimateHourlyCost, moneySymbol } from './price-table';
import { endpointExposure } from './tls-exposure';
import type { CostEstimate } from './price-table';
import type { PriceTable } from '../../shared/cost-types';

export interface DryRunInput {
  name: string;
  modelPath: string;
  replicas: number;
  /** How long it would serve; the estimate prices it (when left out, the hour alone). */
  ttlSeconds?: number;
  topK: number;
  /** The deployment's own spec and labels (--preprocess, --labels); the model's when left out. */
  preprocess?: PreprocessConfig;
  labelsPath?: string;
  aks?: AksDeploymentOptions;
  env?: NodeJS.ProcessEnv;
  /** Scale to zero: the front on the system pool and the scorers' ClusterIP Service (front-manifests.ts). */
  wakeTimeoutSeconds?: number;
  /** --price-table (or INFERCTL_PRICE_TABLE): the user's prices; left out, the shipped table. */
  priceTable?: PriceTable;
  /** --budget: how long it lasts at the estimate's rate. */
  budget?: number;
}

export interface DryRunReport {
  subscription: string;
  location: string;
  resources: { kind: string; name: string; detail: string; createdByInferctl: boolean }[];
  kubernetes: { kind: string; name: string }[];
  /** The requests to ARM, in order, as they would be sent (method, path with api-version, JSON body). */
  armRequests: ArmRequest[];
  /** The Kubernetes objects, in the order applied: the device plugin (only if missing), then the deployment's. */
  kubernetesObjects: KubernetesObject[];
  image: string;
  cost: CostEstimate;
  /** The cost of serving the whole TTL at that rate (provisioning and teardown time not included). */
  ttlCost?: { ttlSeconds: number; total: number };
  /** --budget: how many hours it lasts at the estimate's rate. */
  budget?: { amount: number; hours: number | null };
}

export async function aksDryRun(input: DryRunInput): Promise<DryRunReport> {
  const env = input.env ?? process.env;
  const location = env.INFERCTL_AKS_LOCATION ?? 'eastus';
  const resourceGroup = env.INFERCTL_AKS_RESOURCE_GROUP ?? '<INFERCTL_AKS_RESOURCE_GROUP>';
  const registry = env.INFERCTL_ACR_NAME?.toLowerCase() ?? '<INFERCTL_ACR_NAME>';
  const plan = aksPlan(input.name, input.replicas, { resourceGroup }, input.aks);
  if (!plan.existingCluster) assertNotRetired(plan.gpuVmSize);
  const owner = `deploy-${input.name}`;
  const context = await buildContext(input.modelPath, await servedWith(input));
  const image = `${registry}.azurecr.io/${plan.imageRepository}:${context.digest}`;
  const settings = {
    subscriptionId: env.AZURE_SUBSCRIPTION_ID ?? '<AZURE_SUBSCRIPTION_ID>',
    location,
    environment: environmentOf(connectionSettings()),
    registryName: env.INFERCTL_ACR_NAME ?? '<INFERCTL_ACR_NAME>',
    registryResourceGroup: env.INFERCTL_ACR_RESOURCE_GROUP ?? resourceGroup,
    pollIntervalMs: 0,
  };

  const resources: DryRunReport['resources'] = [];
  if (plan.createResourceGroup) {
    resources.push({
      kind: 'resource group',
      name: plan.resourceGroup,
      detail: `created if missing, tagged ${OWNER_TAG}=${owner}, deleted at teardown`,
      createdByInferctl: true,
    });
  }
  resources.push(
    plan.existingCluster
      ? {
          kind: 'AKS cluster',
          name: plan.clusterName,
          detail: 'existing: used, never deleted; must already have a GPU node pool',
          createdByInferctl: false,
        }
      : {
          kind: 'AKS cluster',
          name: plan.clusterName,
          detail:
            `in ${plan.resourceGroup}, tagged ${OWNER_TAG}=${owner}; pools: system ${plan.systemNodeCount} × ` +
            `${plan.systemVmSize}, gpu ${plan.gpuNodeCount} × ${plan.gpuVmSize} (taint ${GPU_TAINT}); deleted at teardown`,
          createdByInferctl: true,
        },
    {
      kind: 'image build (ACR Tasks)',
      name: image,
      detail: `${context.files.length} files, ${(context.archive.length / 1024).toFixed(0)} KiB context; skipped if the tag exists`,
      createdByInferctl: true,
    },
  );
  const exposure = endpointExposure(
    { name: input.name, subscriptionId: env.AZURE_SUBSCRIPTION_ID ?? '', resourceGroup, location },
    input.aks,
  );
  const tlsObjects = exposure.tls
    ? [
        {
          kind: 'Secret',
          name:
            `${plan.namespace}/${exposure.tls.secretName} (kubernetes.io/tls, ` +
            (exposure.tls.source === 'deployment-ca'
              ? `made at provision for ${exposure.fqdn})`
              : exposure.tls.source === 'user-files'
                ? 'from --tls-cert/--tls-key)'
                : 'yours, must exist)'),
        },
      ]
    : [];
  const objects = {
    namespace: plan.namespace,
    name: input.name,
    ownerId: owner,
    image,
    replicas: input.replicas,
    topK: input.topK,
    modelName: v2ModelName(input.modelPath),
    servicePort: exposure.port,
    exposure,
    environment: settings.environment,
    cluster: plan.clusterName,
  };
  const manifests = input.wakeTimeoutSeconds
    ? scaleToZeroManifests(objects, input.wakeTimeoutSeconds)
    : scoringManifests(objects);
  // The TLS Secret's data is made at provision (a new CA and key each deployment): shown without it.
  const tlsManifests: KubernetesObject[] =
    exposure.tls && exposure.tls.source !== 'user-secret'
      ? [
          {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: exposure.tls.secretName, namespace: plan.namespace },
            type: 'kubernetes.io/tls',
          } as KubernetesObject,
        ]
      : [];
  const kubernetes = [
    { kind: 'DaemonSet', name: 'kube-system/nvidia-device-plugin-daemonset (only if missing)' },
    ...manifests.map((o) => ({
      kind: o.kind ?? '?',
      name: `${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`,
    })),
  ];
  kubernetes.splice(2, 0, ...tlsObjects); // after the namespace: made at provision, before the rest
  const cost = estimateHourlyCost(
    plan.existingCluster
      ? []
      : [
          { vmSize: plan.systemVmSize, count: plan.systemNodeCount },
          { vmSize: plan.gpuVmSize, count: plan.gpuNodeCount },
        ],
    location,
    { table: input.priceTable, registry: true },
  );
  return {
    subscription: settings.subscriptionId,
    location,
    resources,
    kubernetes,
    armRequests: await armRequests(settings, plan, owner, input.name, context.digest),
    kubernetesObjects: [devicePluginManifest(), manifests[0]!, ...tlsManifests, ...manifests.slice(1)],
    image,
    cost,
    ...(input.ttlSeconds
      ? { ttlCost: { ttlSeconds: input.ttlSeconds, total: (cost.hourly * input.ttlSeconds) / 3600 } }
      : {}),
    ...(input.budget !== undefined
      ? { budget: { amount: input.budget, hours: cost.hourly > 0 ? input.budget / cost.hourly : null } }
      : {}),
  };
}

export function formatDryRun(report: DryRunReport): string {
  const $ = moneySymbol(report.cost.currency);
  const lines = [
    `Dry run: nothing is created. Subscription ${report.subscription}, region ${report.location}.`,
    '',
    'Azure resources:',
    ...report.resources.map((r) => `  ${r.kind}: ${r.name}\n      ${r.detail}`),
    '',
    `ARM requests (${report.armRequests.length}; --json prints them in full):`,
    ...report.armRequests.map((r) => `  ${r.method} ${r.path.split('?')[0]}\n      ${r.purpose}`),
    '',
    'Kubernetes objects (server-side apply, field manager inferctl; --json prints the manifests):',
    ...report.kubernetes.map((k) => `  ${k.kind} ${k.name}`),
    '',
    `Estimated cost while it exists (${report.cost.lines.length} items):`,
    ...report.cost.lines.map(
      (l) =>
        `  ${l.item.padEnd(36)} ×${String(l.quantity).padStart(3)}  ` +
        (l.hourly === undefined ? 'no price in the table' : `${$}${l.hourly.toFixed(3)}/h`),
    ),
    `  ${'total'.padEnd(41)} ${$}${report.cost.hourly.toFixed(3)}/h  (≈ ${$}${(report.cost.hourly * 24).toFixed(2)} a day)`,
    ...(report.ttlCost
      ? [
          `  ${`for the TTL (${formatDuration(report.ttlCost.ttlSeconds * 1000)})`.padEnd(41)} ${$}${report.ttlCost.total.toFixed(2)}` +
            (report.cost.unknown.length ? '  (plus the unpriced items)' : ''),
        ]
      : []),
    ...(report.budget
      ? [
          `  ${`budget ${report.budget.amount}`.padEnd(41)} ` +
            (report.budget.hours === null
              ? 'never spent at this rate'
              : `spent after ${formatDuration(report.budget.hours * 3_600_000)} at this rate`),
        ]
      : []),
    ...(report.cost.unknown.length ? [`  (unpriced: ${report.cost.unknown.join(', ')})`] : []),
    `  ${report.cost.note}`,
    '',
    `The cluster bills every hour it exists: inferctl deletes it at the end of the TTL, on failure and on cancel;`,
    `\`inferctl janitor\` removes anything left by a terminated workflow. Default GPU size: ${AKS_DEFAULTS.gpuVmSize}.`,
  ];
  return lines.join('\n');
}
