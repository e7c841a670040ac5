/**
 * `inferctl score --target aks --gpu-nodes N --dry-run`: what a batch job on an AKS GPU pool would send and
 * create, and what its GPUs cost. The ARM requests are recorded from the real SDK calls the job makes
 * (dry-run-requests.ts's recording HTTP client: nothing is sent, no sign-in is needed); the Kubernetes
 * objects are the ones applied, the Temporal Secret showing its keys only; the cost is the pool's VMs
 * from the dated price table (price-table.ts), an hour and for the hours the user expects the job to run.
 * A script job's dry run also prints its worker image's Dockerfile (gpu-worker-image.ts); with an az:// model
 * nothing is read from storage, so the image's tag is a placeholder until the control worker has copied it.
 */
import type { KubernetesObject } from '@kubernetes/client-node';

import { connectionSettings } from '../../temporal/connection';
import { planScript } from '../../script/script-plan';
import { isBlobLocation } from '../../storage/blob-location';
import type { BatchScriptSpec } from '../../shared/batch-types';
import type { GpuPoolOptions, GpuPoolSpec } from '../../shared/gpu-pool-types';
import { gpuPoolTaskQueue } from '../../shared/gpu-pool-types';
import type { PreprocessConfig } from '../../shared/preprocess-types';
import type { AksSettings } from './aks-config';
import { createAzureClients } from './azure-clients';
import { servedWith } from './build-context';
import { RecordingHttpClient, credential } from './dry-run-requests';
import type { ArmRequest } from './dry-run-requests';
import { environmentOf } from './environment-tag';
import { gpuPoolBody, gpuPoolPlan } from './gpu-node-pool';
import type { GpuPoolPlan } from './gpu-node-pool';
import { assertNotRetired } from './gpu-sizes';
import { GPU_WORKER_REPOSITORY, gpuWorkerContext, scriptWorkerContext, scriptWorkerImage } from './gpu-worker-image';
import type { ScriptWorkerImage } from './gpu-worker-image';
import { gpuWorkerManifests } from './gpu-worker-pods';
import { gpuWorkerSecretNames } from './gpu-worker-secrets';
import { devicePluginManifest } from './kubernetes-manifests';
import { dockerBuildRequest } from './registry-build';
import type { PriceTable } from '../../shared/cost-types';
import { estimateHourlyCost, moneySymbol } from './price-table';
import type { CostEstimate } from './price-table';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ZERO_GUID = '00000000-0000-0000-0000-000000000000';
/** The worker image's tag in a dry run whose script model is an az:// prefix (nothing is read from storage). */
export const BLOB_MODEL_TAG = 'digest-once-the-model-is-copied';

export interface GpuPoolDryRunInput {
  jobName: string;
  modelPath: string;
  preprocess?: PreprocessConfig;
  labelsPath?: string;
  /** A script job's script: the worker image is then the script's (its Dockerfile is in the report). */
  script?: BatchScriptSpec;
  pool: GpuPoolOptions;
  /** Hours the job is expected to run, pool creation and removal included (default 1). */
  hours?: number;
  /** --price-table (default: the shipped table). */
  table?: PriceTable;
  /** --budget: the report says how long it lasts at the pool's rate. */
  budget?: number;
  env?: NodeJS.ProcessEnv;
}

export interface GpuPoolDryRunReport {
  subscription: string;
  location: string;
  plan: GpuPoolPlan;
  taskQueue: string;
  image: string;
  /** A script job's worker image: its Dockerfile, base, requirements and notes. */
  scriptImage?: ScriptWorkerImage;
  armRequests: ArmRequest[];
  kubernetesObjects: KubernetesObject[];
  cost: CostEstimate;
  /** What the pool costs for the expected hours at that rate. */
  jobCost: { hours: number; total: number };
  /** With --budget: the budget, and the hours of pool it buys at that rate (the job stops between shards then). */
  budget?: { amount: number; hours: number };
}

export async function gpuPoolDryRun(input: GpuPoolDryRunInput): Promise<GpuPoolDryRunReport> {
  const env = input.env ?? process.env;
  const location = env.INFERCTL_AKS_LOCATION ?? 'eastus';
  const resourceGroup = env.INFERCTL_AKS_RESOURCE_GROUP ?? '<INFERCTL_AKS_RESOURCE_GROUP>';
  const registryName = env.INFERCTL_ACR_NAME ?? '<INFERCTL_ACR_NAME>';
  const subscription = env.AZURE_SUBSCRIPTION_ID ?? '<AZURE_SUBSCRIPTION_ID>';
  const ownerId = `score-${input.jobName}`;
  const spec: GpuPoolSpec = {
    ...input.pool,
    jobName: input.jobName,
    ownerId,
    taskQueue: gpuPoolTaskQueue(ownerId),
    modelPath: input.modelPath,
    ...(input.labelsPath ? { labelsPath: input.labelsPath } : {}),
    ...(input.preprocess ? { preprocess: input.preprocess } : {}),
  };
  const plan = gpuPoolPlan(spec, { resourceGroup });
  assertNotRetired(plan.vmSize);
  const environment = environmentOf(connectionSettings());
  let scriptImage: ScriptWorkerImage | undefined;
  let tag: string;
  if (input.script) {
    const script = await planScript(input.modelPath, input.script);
    scriptImage = scriptWorkerImage(script, plan.vmSize);
    // An az:// model is copied by the control worker at the image step: the tag (the context's digest) waits for it.
    tag = isBlobLocation(input.modelPath)
      ? BLOB_MODEL_TAG
      : (await scriptWorkerContext(script, input.modelPath, scriptImage)).digest;
  } else {
    tag = (await gpuWorkerContext(input.modelPath, await servedWith(spec))).digest;
  }
  const image = `${registryName.toLowerCase()}.azurecr.io/${GPU_WORKER_REPOSITORY}:${tag}`;

  // The SDK insists on a GUID: a placeholder subscription is sent as the zero GUID and named again below.
  const http = new RecordingHttpClient();
  const clients = createAzureClients(
    { subscriptionId: GUID.test(subscription) ? subscription : ZERO_GUID },
    { credential, httpClient: http },
  );
  const purposes: string[] = [];
  const step = async (purpose: string, call: () => Promise<unknown>) => {
    const before = http.requests.length;
    await call();
    for (let i = before; i < http.requests.length; i++) purposes.push(purpose);
  };
  const settings = { location, environment } as AksSettings;
  await step(`add agent pool ${plan.poolName} (${plan.nodes}× ${plan.vmSize}) to cluster ${plan.clusterName}`, () =>
    clients.containerService.agentPools.createOrUpdate(
      plan.resourceGroup,
      plan.clusterName,
      plan.poolName,
      gpuPoolBody(plan, spec, settings),
      { updateIntervalInMs: 0 },
    ),
  );
  const registryGroup = env.INFERCTL_ACR_RESOURCE_GROUP ?? resourceGroup;
  await step(`build and push ${GPU_WORKER_REPOSITORY}:${tag.slice(0, 12)}… with ACR Tasks (skipped if built)`, () =>
    clients.registry.registries
      .beginScheduleRun(
        registryGroup,
        registryName,
        dockerBuildRequest('<relativePath returned by listBuildSourceUploadUrl>', GPU_WORKER_REPOSITORY, tag),
        { updateIntervalInMs: 0 },
      )
      .then((poller) => poller.pollUntilDone()),
  );
  await step(`delete agent pool ${plan.poolName} when the job ends (success, failure, cancel, crash)`, () =>
    clients.containerService.agentPools.delete(plan.resourceGroup, plan.clusterName, plan.poolName, {
      updateIntervalInMs: 0,
    }),
  );
  let armRequests = http.requests.map((r, i) => ({ ...r, purpose: purposes[i] ?? '' }));
  if (!GUID.test(subscription)) {
    armRequests = JSON.parse(JSON.stringify(armRequests).replaceAll(ZERO_GUID, subscription)) as ArmRequest[];
  }

  const connectionKeys = gpuWorkerSecretNames(env);
  const manifests = gpuWorkerManifests({
    namespace: plan.namespace,
    jobName: input.jobName,
    ownerId,
    poolName: plan.poolName,
    image,
    replicas: plan.nodes,
    taskQueue: spec.taskQueue,
    shardsPerWorker: spec.shardsPerWorker ?? 1,
    ...(input.script ? { script: true } : {}),
    connectionKeys,
    environment,
    cluster: plan.clusterName,
  });
  const cost = estimateHourlyCost([{ vmSize: plan.vmSize, count: plan.nodes }], location, {
    loadBalancer: false,
    ...(input.table ? { table: input.table } : {}),
  });
  // The cluster exists already: its control plane is not this job's cost.
  cost.lines = cost.lines.filter((l) => !l.item.startsWith('AKS control plane'));
  const hours = input.hours ?? 1;
  return {
    subscription,
    location,
    plan,
    taskQueue: spec.taskQueue,
    image,
    ...(scriptImage ? { scriptImage } : {}),
    armRequests,
    kubernetesObjects: [devicePluginManifest(), ...manifests],
    cost,
    jobCost: { hours, total: Math.round(cost.hourly * hours * 100) / 100 },
    ...(input.budget !== undefined && cost.hourly > 0
      ? { budget: { amount: input.budget, hours: Math.round((input.budget / cost.hourly) * 100) / 100 } }
      : {}),
  };
}

export function formatGpuPoolDryRun(report: GpuPoolDryRunReport): string {
  const { plan } = report;
  const symbol = moneySymbol(report.cost.currency);
  const money = (n: number) => `${symbol}${n.toFixed(3)}`;
  return [
    `Dry run: nothing is created. Subscription ${report.subscription}, region ${report.location}.`,
    '',
    `GPU pool: ${plan.poolName} on cluster ${plan.clusterName} (${plan.resourceGroup}): ${plan.nodes}× ${plan.vmSize},`,
    `  tainted sku=gpu:NoSchedule, one GPU-worker pod per node polling ${report.taskQueue}.`,
    `Worker image: ${report.image}`,
    ...(report.scriptImage ? scriptImageLines(report.scriptImage) : []),
    '',
    `ARM requests (${report.armRequests.length}; --json prints them in full):`,
    ...report.armRequests.map((r) => `  ${r.method} ${r.path.split('?')[0]}\n      ${r.purpose}`),
    '',
    'Kubernetes objects (server-side apply; the Secret holds the Temporal connection, shown by key only):',
    ...report.kubernetesObjects.map(
      (o) => `  ${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`,
    ),
    '',
    'Estimated GPU cost while the pool exists:',
    ...report.cost.lines.map(
      (l) =>
        `  ${l.item.padEnd(36)} ×${String(l.quantity).padStart(3)}  ` +
        (l.hourly === undefined ? 'no price in the table' : `${money(l.hourly)}/h`),
    ),
    `  ${'total'.padEnd(41)} ${money(report.cost.hourly)}/h`,
    `  ${`for ${report.jobCost.hours} h of job`.padEnd(41)} ${symbol}${report.jobCost.total.toFixed(2)}` +
      (report.cost.unknown.length ? `  (plus the unpriced ${report.cost.unknown.join(', ')})` : ''),
    ...(report.budget
      ? [
          `  --budget ${symbol}${report.budget.amount.toFixed(2)} buys about ${report.budget.hours} h of the pool; ` +
            'then the job stops between shards (docs/costs.md)',
        ]
      : []),
    `  ${report.cost.note}`,
    '',
    'The pool bills from its creation to its deletion: inferctl deletes it (and the pods) when the job ends,',
    'on success, failure and cancel, and after a worker crash; `inferctl janitor` removes one left behind.',
  ].join('\n');
}

function scriptImageLines(image: ScriptWorkerImage): string[] {
  return [
    `  the scoring script's worker image on ${image.base}; requirements: ${image.requirements.join(', ')}`,
    ...image.warnings.map((w) => `  note: ${w}`),
    '  Dockerfile:',
    ...image.dockerfile
      .trimEnd()
      .split('\n')
      .map((l) => `    ${l}`),
  ];
}
