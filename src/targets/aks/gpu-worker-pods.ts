/**
 * The GPU-worker pods of a batch job on its AKS GPU pool: a namespace owned by the job, a Secret with what
 * the pods need and nothing more (gpu-worker-secrets.ts: the Temporal connection, the current payload key,
 * a SAS per container of the job), made from the control worker's environment, never from workflow
 * history; and a Deployment of one pod per
 * GPU node running the GPU worker (`node dist/worker/gpu.js`) on the job's own task queue. The pods select
 * the job's pool by its node label and tolerate its taint; each asks for one `nvidia.com/gpu`, so they can
 * only be scheduled on the pool's GPU nodes. Apply is server-side (kubernetes-deployment.ts), so a retried
 * activity converges; removal deletes the namespace and waits until it is gone.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject, V1Pod } from '@kubernetes/client-node';

import { IMAGE_GID, IMAGE_UID } from './build-context';
import { gpuWorkerArgs } from './gpu-worker-image';
import { MANAGED_BY_LABEL, OWNER_ANNOTATION, namespaceManifest } from './kubernetes-manifests';
import { GPU_POOL_LABEL } from './managed-cluster';

export const GPU_WORKER_NAME = 'gpu-worker';
export const TEMPORAL_SECRET = 'temporal-connection';

/** The control worker's connection settings the pods get, by environment variable name. */
export type WorkerConnection = Record<string, string>;

export interface GpuWorkerManifestInput {
  namespace: string;
  jobName: string;
  ownerId: string;
  poolName: string;
  image: string;
  replicas: number;
  taskQueue: string;
  shardsPerWorker: number;
  /** A script job's workers: they run the script built into the image. */
  script?: boolean;
  /** Left out for printing (dry run): the Secret then shows its keys with no values. */
  connection?: WorkerConnection;
  /** The Secret's keys (the dry run's, or those of `connection`). */
  connectionKeys: string[];
  environment?: string;
  cluster?: string;
}

export function gpuWorkerManifests(input: GpuWorkerManifestInput): KubernetesObject[] {
  const labels = { app: GPU_WORKER_NAME, 'inferctl.dev/job': input.jobName, [MANAGED_BY_LABEL]: 'inferctl' };
  const meta = (name: string) => ({
    name,
    namespace: input.namespace,
    labels,
    annotations: { [OWNER_ANNOTATION]: input.ownerId },
  });
  return [
    namespaceManifest(input.namespace, input.jobName, input.ownerId, input),
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta(TEMPORAL_SECRET),
      type: 'Opaque',
      ...(input.connection ? { stringData: input.connection } : {}),
    } as KubernetesObject,
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(GPU_WORKER_NAME),
      spec: {
        replicas: input.replicas,
        selector: { matchLabels: { app: GPU_WORKER_NAME } },
        template: {
          metadata: { labels, annotations: { [OWNER_ANNOTATION]: input.ownerId } },
          spec: {
            nodeSelector: { [GPU_POOL_LABEL]: input.poolName },
            tolerations: [{ key: 'sku', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
            automountServiceAccountToken: false,
            // A worker told to stop finishes or gives back its shards (their heartbeats resume elsewhere).
            terminationGracePeriodSeconds: 30,
            securityContext: { runAsNonRoot: true, runAsUser: IMAGE_UID, runAsGroup: IMAGE_GID },
            containers: [
              {
                name: GPU_WORKER_NAME,
                image: input.image,
                args: gpuWorkerArgs(input.taskQueue, input.shardsPerWorker, input.script),
                env: input.connectionKeys.map((key) => ({
                  name: key,
                  valueFrom: { secretKeyRef: { name: TEMPORAL_SECRET, key } },
                })),
                resources: {
                  requests: { cpu: '1', memory: '2Gi' },
                  limits: { 'nvidia.com/gpu': '1', memory: '8Gi' },
                },
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                terminationMessagePolicy: 'FallbackToLogsOnError',
              },
            ],
          },
        },
      },
    } as KubernetesObject,
  ];
}

/** Waiting reasons that do not fix themselves (as kubernetes-deployment.ts reads them). */
const STUCK = ['ImagePullBackOff', 'ErrImagePull', 'CrashLoopBackOff', 'CreateContainerConfigError'];

export interface WorkerPodsReport {
  running: number;
  wanted: number;
  /** Set when a pod cannot start; `fatal` once it has lasted past the grace period. */
  problem?: { reason: string; fatal: boolean };
}

/** How many of the job's worker pods run (Ready, on a node), and the first pod that cannot start. */
export async function workerPodsStatus(
  kc: KubeConfig,
  namespace: string,
  wanted: number,
  graceMs: number,
): Promise<WorkerPodsReport> {
  const pods = (
    await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, labelSelector: `app=${GPU_WORKER_NAME}` })
  ).items;
  const running = pods.filter((p) => p.status?.phase === 'Running' && isReady(p)).length;
  for (const pod of pods) {
    for (const cs of pod.status?.containerStatuses ?? []) {
      const reason = cs.state?.waiting?.reason;
      if (!reason || !STUCK.includes(reason)) continue;
      const created = pod.metadata?.creationTimestamp;
      const age = created ? Date.now() - new Date(created).getTime() : 0;
      const message = `pod ${pod.metadata?.name}: ${reason}: ${cs.state?.waiting?.message ?? ''}`.trim();
      return { running, wanted, problem: { reason: message, fatal: age > graceMs } };
    }
  }
  return { running, wanted };
}

function isReady(pod: V1Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}
