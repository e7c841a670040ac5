/**
 * Applies, watches and removes one deployment's Kubernetes objects with @kubernetes/client-node.
 * Apply is server-side (field manager `inferctl`, forced), so a retried activity converges to the same
 * objects. Readiness reads the rollout (observedGeneration, updated and available replicas), the
 * LoadBalancer address, and pod state and events, turning a pod that cannot start (image pull, crash
 * loop, no GPU to schedule on) into a fatal report after a bounded grace period.
 */
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
} from '@kubernetes/client-node';
import type { CoreV1Event, KubernetesObject, V1Pod } from '@kubernetes/client-node';

import { InvalidInputError } from '../../errors';
import { FailureType } from '../../shared/failure-types';
import { DEVICE_PLUGIN_NAME, FIELD_MANAGER, devicePluginManifest, secretName } from './kubernetes-manifests';
import { type Owner, annotationsOwnedBy, ownerOfAnnotations } from './ownership';

export function kubeConfigFromYaml(yaml: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(yaml);
  return kc;
}

export function isKubeNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

export async function applyObjects(kc: KubeConfig, objects: KubernetesObject[]): Promise<string[]> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const applied: string[] = [];
  for (const object of objects) {
    await api.patch(object, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    applied.push(`${object.kind}/${object.metadata?.name}`);
  }
  return applied;
}

/**
 * The endpoint key kept in the deployment's Secret: created once with a fresh key, then only read, so a
 * retried deploy keeps the key the first attempt generated.
 */
export async function ensureApiKeySecret(kc: KubeConfig, secret: KubernetesObject, create: () => string) {
  const namespace = secret.metadata!.namespace!;
  const name = secret.metadata!.name!;
  const core = kc.makeApiClient(CoreV1Api);
  try {
    const existing = await core.readNamespacedSecret({ name, namespace });
    const value = existing.data?.['api-key'];
    if (value) return Buffer.from(value, 'base64').toString('utf8');
  } catch (err) {
    if (!isKubeNotFound(err)) throw err;
  }
  const apiKey = create();
  await applyObjects(kc, [{ ...secret, stringData: { 'api-key': apiKey } } as KubernetesObject]);
  return apiKey;
}

export async function readApiKey(kc: KubeConfig, namespace: string, name: string): Promise<string | undefined> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    const secret = await core.readNamespacedSecret({ name: secretName(name), namespace });
    const value = secret.data?.['api-key'];
    return value ? Buffer.from(value, 'base64').toString('utf8') : undefined;
  } catch (err) {
    if (isKubeNotFound(err)) return undefined;
    throw err;
  }
}

/** Installs the NVIDIA device plugin unless the cluster runs it already (AKS's GPU node image may). */
export async function ensureDevicePlugin(kc: KubeConfig): Promise<boolean> {
  const apps = kc.makeApiClient(AppsV1Api);
  try {
    await apps.readNamespacedDaemonSet({ name: DEVICE_PLUGIN_NAME, namespace: 'kube-system' });
    return false;
  } catch (err) {
    if (!isKubeNotFound(err)) throw err;
  }
  await applyObjects(kc, [devicePluginManifest()]);
  return true;
}

export interface RolloutReport {
  ready: boolean;
  readyReplicas: number;
  desiredReplicas: number;
  /** The LoadBalancer's address (its ingress IP or host name) and the Service port, once it has one. */
  loadBalancer?: { address: string; port: number };
  reason?: string;
  fatal?: boolean;
}

/** Waiting reasons that do not fix themselves. */
const STUCK_REASONS = [
  'ImagePullBackOff',
  'ErrImagePull',
  'InvalidImageName',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'CreateContainerError',
];

export async function rolloutStatus(
  kc: KubeConfig,
  namespace: string,
  name: string,
  replicas: number,
  failureGraceMs: number,
): Promise<RolloutReport> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const report: RolloutReport = { ready: false, readyReplicas: 0, desiredReplicas: replicas };
  let deployment;
  try {
    deployment = await apps.readNamespacedDeployment({ name, namespace });
  } catch (err) {
    if (isKubeNotFound(err)) return { ...report, reason: `Deployment ${namespace}/${name} does not exist yet` };
    throw err;
  }
  const status = deployment.status ?? {};
  const generationSeen = (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 1);
  report.readyReplicas = status.availableReplicas ?? 0;
  const waiting: string[] = [];
  if (!generationSeen) waiting.push('the deployment controller has not seen the latest spec');
  if ((status.updatedReplicas ?? 0) < replicas)
    waiting.push(`${status.updatedReplicas ?? 0}/${replicas} replicas updated`);
  // As `kubectl rollout status`: old replicas still counted (a lagging old ReplicaSet) mean not done yet.
  if ((status.replicas ?? 0) > (status.updatedReplicas ?? 0))
    waiting.push(`${(status.replicas ?? 0) - (status.updatedReplicas ?? 0)} old replica(s) pending termination`);
  if (report.readyReplicas < replicas) waiting.push(`${report.readyReplicas}/${replicas} replicas available`);

  const service = await core.readNamespacedService({ name, namespace }).catch((err: unknown) => {
    if (isKubeNotFound(err)) return undefined;
    throw err;
  });
  const ingress = service?.status?.loadBalancer?.ingress?.[0];
  const port = service?.spec?.ports?.[0]?.port;
  const address = ingress?.ip ?? ingress?.hostname;
  if (address && port) report.loadBalancer = { address, port };
  else waiting.push('the LoadBalancer has no external address yet');

  if (waiting.length === 0) return { ...report, ready: true };
  const problem = await podProblem(kc, namespace, name, failureGraceMs);
  if (problem) return { ...report, fatal: problem.fatal, reason: problem.reason };
  return { ...report, reason: waiting.join('; ') };
}

/** The first pod problem worth telling the user, fatal once it has lasted longer than the grace period. */
async function podProblem(
  kc: KubeConfig,
  namespace: string,
  name: string,
  graceMs: number,
): Promise<{ reason: string; fatal: boolean } | undefined> {
  const core = kc.makeApiClient(CoreV1Api);
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: `app=${name}` })).items;
  const events = (await core.listNamespacedEvent({ namespace })).items.filter((e) => e.type === 'Warning');
  for (const pod of pods) {
    const podName = pod.metadata?.name ?? '?';
    for (const cs of pod.status?.containerStatuses ?? []) {
      const reason = cs.state?.waiting?.reason;
      if (!reason || !STUCK_REASONS.includes(reason)) continue;
      const since = podAgeMs(pod);
      // The last exit's own words (its termination message: the log's tail, FallbackToLogsOnError), else the log.
      const tail =
        reason === 'CrashLoopBackOff'
          ? cs.lastState?.terminated?.message?.trim() || (await logTail(core, namespace, podName))
          : '';
      return {
        fatal: since > graceMs,
        reason:
          `pod ${podName}: ${reason}: ${cs.state?.waiting?.message ?? ''}`.trim() +
          (tail ? `\n--- log tail ---\n${tail}` : '') +
          hint(reason),
      };
    }
  }
  // Only a pod that is still Pending: an earlier pod's scheduling wait (a rolling update's) is over.
  const pending = new Set(pods.filter((p) => p.status?.phase === 'Pending').map((p) => p.metadata?.uid));
  const scheduling = events.filter(
    (e) => e.reason === 'FailedScheduling' && e.involvedObject?.kind === 'Pod' && pending.has(e.involvedObject.uid),
  );
  const latest = scheduling.sort((a, b) => eventTime(b) - eventTime(a))[0];
  if (latest) {
    const since = Date.now() - eventFirstTime(latest);
    const gpu = /nvidia\.com\/gpu/.test(latest.message ?? '');
    return {
      fatal: since > graceMs,
      reason:
        `pod ${latest.involvedObject?.name}: FailedScheduling: ${latest.message ?? ''}` +
        (gpu
          ? ' Each replica needs one GPU: use fewer --replicas, more --gpu-nodes, or check that the NVIDIA ' +
            'device plugin runs on the GPU nodes.'
          : ''),
    };
  }
  return undefined;
}

function hint(reason: string): string {
  if (reason.includes('Image'))
    return ' Check that the cluster can pull from the registry (az aks update --attach-acr).';
  if (reason === 'CrashLoopBackOff') return ' The scoring server exits on start; see the log tail above.';
  return '';
}

async function logTail(core: CoreV1Api, namespace: string, pod: string): Promise<string> {
  try {
    return (await core.readNamespacedPodLog({ name: pod, namespace, tailLines: 20 })).trim();
  } catch {
    return '';
  }
}

function podAgeMs(pod: V1Pod): number {
  const created = pod.metadata?.creationTimestamp;
  return created ? Date.now() - new Date(created).getTime() : 0;
}

function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  return t ? new Date(t).getTime() : 0;
}

function eventFirstTime(e: CoreV1Event): number {
  const t = e.firstTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp;
  return t ? new Date(t).getTime() : Date.now();
}

/**
 * Whether `namespace` exists and its annotations name `owner` (workflow and installation): teardown deletes
 * only a namespace its own workflow of its own installation created, never one that happens to share the name.
 */
export async function namespaceOwnedBy(kc: KubeConfig, namespace: string, owner: Owner): Promise<boolean> {
  try {
    const ns = await kc.makeApiClient(CoreV1Api).readNamespace({ name: namespace });
    return annotationsOwnedBy(ns.metadata?.annotations, owner);
  } catch (err) {
    if (isKubeNotFound(err)) return false;
    throw err;
  }
}

/**
 * Refuses a namespace that exists and is not `owner`'s, before anything is applied to it: a forced
 * server-side apply would re-annotate someone else's namespace as ours and reuse its Secrets.
 */
export async function assertNamespaceClaimable(kc: KubeConfig, namespace: string, owner: Owner): Promise<void> {
  let annotations: Record<string, string> | undefined;
  try {
    annotations = (await kc.makeApiClient(CoreV1Api).readNamespace({ name: namespace })).metadata?.annotations ?? {};
  } catch (err) {
    if (isKubeNotFound(err)) return;
    throw err;
  }
  if (annotationsOwnedBy(annotations, owner)) return;
  throw new InvalidInputError(
    `Namespace ${namespace} already exists in the cluster and belongs to ${ownerOfAnnotations(annotations)}, ` +
      `not to ${owner.id} of ${owner.environment}. Pick another name, or remove that namespace if nobody uses it.`,
    FailureType.AksNamespaceInUse,
  );
}

/** Deletes the namespace (and so everything in it) and waits until it is gone; 404 means done. */
export async function deleteNamespace(kc: KubeConfig, namespace: string, signal?: AbortSignal): Promise<boolean> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    await core.deleteNamespace({ name: namespace, propagationPolicy: 'Foreground' });
  } catch (err) {
    if (isKubeNotFound(err)) return false;
    throw err;
  }
  for (;;) {
    try {
      await core.readNamespace({ name: namespace });
    } catch (err) {
      if (isKubeNotFound(err)) return true;
      throw err;
    }
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    await new Promise((r) => setTimeout(r, 1000));
  }
}
