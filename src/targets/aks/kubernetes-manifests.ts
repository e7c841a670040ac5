/**
 * The Kubernetes objects of one AKS deployment, as plain data: a namespace, the endpoint key as a Secret,
 * the scoring Deployment (one GPU per replica, tolerating the GPU pool's taint; a startup probe that gives
 * the model time to load, then readiness on /readyz and liveness on /healthz; a read-only root filesystem
 * with an emptyDir at /tmp, the runtime's default seccomp profile) and a LoadBalancer Service (admitting
 * only the --allow-from ranges when given),
 * whose annotations, port and TLS come from the deployment's EndpointExposure (tls-exposure.ts; the TLS
 * Secret itself is made at provision; the Service selects the endpoint label, which a rollout's candidate pods
 * carry too). The pod runs as the image's non-root user; the key Secrets (the
 * endpoint key, the TLS key) are mounted 0440 with the pod's fsGroup set to the image's group, so the server
 * (and no other user) can read them: the server accepts exactly that. Also the NVIDIA device plugin, which makes
 * the nodes advertise `nvidia.com/gpu` when the cluster does not run it already.
 */
import type { KubernetesObject } from '@kubernetes/client-node';

import { IMAGE_FILES, IMAGE_GID, IMAGE_UID } from './build-context';
import { CLUSTER_ANNOTATION, ENVIRONMENT_ANNOTATION } from './environment-tag';
import { GPU_POOL_LABEL } from './managed-cluster';
import { OWNER_ANNOTATION } from './ownership';
import { serviceAnnotations } from './tls-exposure';
import type { EndpointExposure } from './tls-exposure';

export const SCORER_PORT = 5001;
export const FIELD_MANAGER = 'inferctl';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export { OWNER_ANNOTATION } from './ownership';
/**
 * The label every pod answering a deployment's endpoint carries, the serving Deployment's and a rollout's
 * candidate's alike (candidate-deployment.ts): the LoadBalancer Service selects it, so both share the traffic.
 */
export const ENDPOINT_LABEL = 'inferctl.dev/endpoint';
export const DEVICE_PLUGIN_NAME = 'nvidia-device-plugin-daemonset';
const DEVICE_PLUGIN_IMAGE = 'nvcr.io/nvidia/k8s-device-plugin:v0.17.1';
/** Where the key Secret is mounted, and the key file's mode there: owner and group read, nobody else. */
export const API_KEY_MOUNT = '/etc/inferctl';
export const API_KEY_FILE_MODE = 0o440;
/** How long a replica may take to load its model before the kubelet restarts it: 60 × 5 s. */
export const STARTUP_PROBE = { periodSeconds: 5, failureThreshold: 60 } as const;
/** How long a leaving replica keeps serving before SIGTERM, while the endpoints stop sending it connections. */
export const PRE_STOP_SECONDS = 5;

export interface ScoringManifestInput {
  namespace: string;
  name: string;
  ownerId: string;
  image: string;
  replicas: number;
  topK: number;
  /** The model's name on the Open Inference Protocol (/v2/models/{name}): the user's file name, not the image's. */
  modelName?: string;
  servicePort: number;
  /** The endpoint key; left out for printing (dry run), where the Secret shows no data. */
  apiKey?: string;
  /** The installation and the cluster, annotated on the namespace for the janitor (environment-tag.ts). */
  environment?: string;
  cluster?: string;
  /** Internal or public, HTTPS or HTTP; left out, a public plain-HTTP Service. */
  exposure?: EndpointExposure;
  /** The container's arguments when it is not the ONNX server (a scoring script's front: script-image.ts). */
  args?: string[];
}

export const TLS_MOUNT = '/etc/inferctl-tls';
/** One GPU per replica and none spare: a new pod starts only once an old one has gone. */
export const SCORING_ROLLING_UPDATE = { maxSurge: 0, maxUnavailable: 1 } as const;

export function secretName(name: string): string {
  return `${name}-api-key`;
}

/** The deployment's namespace, owned by it: applied at provision (for the TLS Secret) and again at deploy. */

/** The pod of a serving container (scorer or front): the image's non-root user, no extra privileges. */
export const SERVING_POD_SECURITY = {
  runAsNonRoot: true,
  runAsUser: IMAGE_UID,
  runAsGroup: IMAGE_GID,
  // The Secret's files get this group: the key is readable by the server's group, not others.
  fsGroup: IMAGE_GID,
  // The container runtime's default system-call filter.
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

/** Nothing in the image can be changed: the only writable place is /tmp, an emptyDir. */
export const SERVING_CONTAINER_SECURITY = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  readOnlyRootFilesystem: true,
} as const;

/** The deployment's namespace, annotated with its owner and, for the janitor, its installation and cluster. */
export function namespaceManifest(
  namespace: string,
  name: string,
  ownerId: string,
  tags: { environment?: string; cluster?: string } = {},
): KubernetesObject {
  const labels = { app: name, [MANAGED_BY_LABEL]: 'inferctl' };
  const annotations = {
    [OWNER_ANNOTATION]: ownerId,
    ...(tags.environment ? { [ENVIRONMENT_ANNOTATION]: tags.environment } : {}),
    ...(tags.cluster ? { [CLUSTER_ANNOTATION]: tags.cluster } : {}),
  };
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels, annotations } };
}

export function scoringManifests(input: ScoringManifestInput): KubernetesObject[] {
  const labels = { app: input.name, [MANAGED_BY_LABEL]: 'inferctl' };
  const annotations = { [OWNER_ANNOTATION]: input.ownerId };
  const meta = (name: string) => ({ name, namespace: input.namespace, labels, annotations });
  const tlsSecret = input.exposure?.tls?.secretName;
  const probe = (path: string, periodSeconds: number) => ({
    // The kubelet probes HTTPS without verifying the certificate, as Kubernetes does.
    httpGet: { path, port: SCORER_PORT, ...(tlsSecret ? { scheme: 'HTTPS' } : {}) },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold: 3,
  });
  return [
    namespaceManifest(input.namespace, input.name, input.ownerId, input),
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta(secretName(input.name)),
      type: 'Opaque',
      ...(input.apiKey ? { stringData: { 'api-key': input.apiKey } } : {}),
    } as KubernetesObject,
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(input.name),
      spec: {
        replicas: input.replicas,
        selector: { matchLabels: { app: input.name } },
        strategy: { type: 'RollingUpdate', rollingUpdate: { ...SCORING_ROLLING_UPDATE } },
        template: {
          metadata: { labels: { ...labels, [ENDPOINT_LABEL]: input.name } },
          spec: {
            nodeSelector: { [GPU_POOL_LABEL]: 'gpu' },
            tolerations: [{ key: 'sku', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
            // The scoring server never calls the Kubernetes API: no service account token in its pod.
            automountServiceAccountToken: false,
            securityContext: { ...SERVING_POD_SECURITY },
            containers: [
              {
                name: 'scorer',
                image: input.image,
                args: input.args ?? [
                  'dist/src/server/main.js',
                  '--model',
                  IMAGE_FILES.model,
                  '--preprocess',
                  IMAGE_FILES.preprocess,
                  '--labels',
                  IMAGE_FILES.labels,
                  '--api-key-file',
                  `${API_KEY_MOUNT}/api-key`,
                  '--host',
                  '0.0.0.0',
                  '--port',
                  String(SCORER_PORT),
                  '--top-k',
                  String(input.topK),
                  ...(input.modelName ? ['--model-name', input.modelName] : []),
                  // CUDA when the node's GPU works; otherwise CPU, and the log says so plainly.
                  '--gpu',
                  '--allow-cpu-fallback',
                  ...(tlsSecret ? ['--tls-cert', `${TLS_MOUNT}/tls.crt`, '--tls-key', `${TLS_MOUNT}/tls.key`] : []),
                ],
                ports: [{ name: tlsSecret ? 'https' : 'http', containerPort: SCORER_PORT }],
                resources: {
                  requests: { cpu: '1', memory: '2Gi' },
                  limits: { 'nvidia.com/gpu': '1', memory: '8Gi' },
                },
                securityContext: { ...SERVING_CONTAINER_SECURITY },
                // The server listens only once the model is loaded: until then only the startup probe runs.
                startupProbe: { ...probe('/healthz', STARTUP_PROBE.periodSeconds), ...STARTUP_PROBE },
                readinessProbe: probe('/readyz', 5),
                livenessProbe: probe('/healthz', 10),
                // A leaving pod first stops getting new connections (its endpoint turns not-ready; the load
                // balancer and kube-proxy follow within seconds), then gets SIGTERM and drains: no request is
                // sent to a closed listener during a rollout, a scale-down or a rolling update.
                lifecycle: { preStop: { sleep: { seconds: PRE_STOP_SECONDS } } },
                // A server that exits on start says why in its last lines: they become the termination message.
                terminationMessagePolicy: 'FallbackToLogsOnError',
                volumeMounts: [
                  { name: 'tmp', mountPath: '/tmp' },
                  { name: 'api-key', mountPath: API_KEY_MOUNT, readOnly: true },
                  ...(tlsSecret ? [{ name: 'tls', mountPath: TLS_MOUNT, readOnly: true }] : []),
                ],
              },
            ],
            volumes: [
              { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
              {
                name: 'api-key',
                secret: {
                  secretName: secretName(input.name),
                  defaultMode: API_KEY_FILE_MODE,
                  items: [{ key: 'api-key', path: 'api-key' }],
                },
              },
              ...(tlsSecret
                ? [
                    {
                      name: 'tls',
                      // The certificate and its key only: a per-deployment CA's key (ca.key, kept for
                      // renewals) stays in the Secret, out of the pod.
                      secret: {
                        secretName: tlsSecret,
                        defaultMode: API_KEY_FILE_MODE,
                        items: [
                          { key: 'tls.crt', path: 'tls.crt' },
                          { key: 'tls.key', path: 'tls.key' },
                        ],
                      },
                    },
                  ]
                : []),
            ],
          },
        },
      },
    } as KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        ...meta(input.name),
        annotations: { ...annotations, ...(input.exposure ? serviceAnnotations(input.exposure) : {}) },
      },
      spec: {
        type: 'LoadBalancer',
        selector: { [ENDPOINT_LABEL]: input.name },
        // Only these client ranges reach the load balancer (--allow-from); left out, any address.
        ...(input.exposure?.sourceRanges ? { loadBalancerSourceRanges: input.exposure.sourceRanges } : {}),
        // TCP at the load balancer (Azure's is L4): TLS passes through to the scoring server.
        ports: [
          { name: tlsSecret ? 'https' : 'http', protocol: 'TCP', port: input.servicePort, targetPort: SCORER_PORT },
        ],
      },
    } as KubernetesObject,
  ];
}

/** NVIDIA's device plugin DaemonSet as AKS documents it, scheduled onto the tainted GPU pool. */
export function devicePluginManifest(): KubernetesObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: DEVICE_PLUGIN_NAME, namespace: 'kube-system', labels: { [MANAGED_BY_LABEL]: 'inferctl' } },
    spec: {
      selector: { matchLabels: { name: DEVICE_PLUGIN_NAME } },
      updateStrategy: { type: 'RollingUpdate' },
      template: {
        metadata: { labels: { name: DEVICE_PLUGIN_NAME } },
        spec: {
          nodeSelector: { [GPU_POOL_LABEL]: 'gpu' },
          tolerations: [
            { key: 'sku', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' },
            { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
          ],
          priorityClassName: 'system-node-critical',
          containers: [
            {
              name: 'nvidia-device-plugin-ctr',
              image: DEVICE_PLUGIN_IMAGE,
              env: [{ name: 'FAIL_ON_INIT_ERROR', value: 'false' }],
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              volumeMounts: [{ name: 'device-plugin', mountPath: '/var/lib/kubelet/device-plugins' }],
            },
          ],
          volumes: [{ name: 'device-plugin', hostPath: { path: '/var/lib/kubelet/device-plugins' } }],
        },
      },
    },
  } as KubernetesObject;
}
