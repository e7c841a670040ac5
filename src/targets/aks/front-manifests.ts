/**
 * The Kubernetes objects of an aks deployment that scales to zero (`--min-replicas 0`): the scoring
 * Deployment as always (scoringManifests) but serving plain HTTP behind a ClusterIP Service of its own,
 * `<name>-scorers`; the front (front.ts), a small CPU Deployment pinned to the system pool
 * (`kubernetes.azure.com/mode: system`, the label AKS gives every system-pool node), which holds the public
 * endpoint; and the public LoadBalancer Service `<name>`, now selecting the front. The front serves the
 * deployment's TLS certificate and checks its key (both Secrets mounted 0440, the image's group as fsGroup, as
 * the scorer mounts them). The endpoint (address, key, certificate, DNS label) stays while no scoring pod runs.
 */
import type { KubernetesObject } from '@kubernetes/client-node';

import { v2ModelName } from '../../shared/deploy-types';
import type { DeploymentSpec } from '../../shared/target-types';
import type { AksPlan } from './aks-config';
import { ENVIRONMENT_ANNOTATION } from './environment-tag';

import {
  API_KEY_FILE_MODE,
  API_KEY_MOUNT,
  MANAGED_BY_LABEL,
  SCORER_PORT,
  TLS_MOUNT,
  scoringManifests,
  secretName,
} from './kubernetes-manifests';
import type { ScoringManifestInput } from './kubernetes-manifests';
import { scriptContainerArgs } from './script-image';
import type { EndpointExposure } from './tls-exposure';
import {
  ENDPOINT_LABEL,
  OWNER_ANNOTATION,
  SERVING_CONTAINER_SECURITY,
  SERVING_POD_SECURITY,
} from './kubernetes-manifests';

/** A deployment's objects: the scoring ones, and with scale to zero (`spec.hold`) the front before them. */
export function deploymentObjects(
  spec: DeploymentSpec,
  imageRef: string,
  plan: Pick<AksPlan, 'namespace' | 'clusterName'>,
  exposure: EndpointExposure,
  environment: string,
): KubernetesObject[] {
  const objects = {
    namespace: plan.namespace,
    name: spec.name,
    ownerId: spec.ownerId,
    image: imageRef,
    replicas: spec.replicas,
    topK: spec.topK,
    ...(spec.script
      ? { args: scriptContainerArgs(Boolean(exposure.tls)) }
      : { modelName: v2ModelName(spec.modelPath) }),
    servicePort: exposure.port,
    exposure,
    environment,
    cluster: plan.clusterName,
  };
  return spec.hold ? scaleToZeroManifests(objects, spec.hold.wakeTimeoutSeconds) : scoringManifests(objects);
}

/** The label of the front's pods (never ENDPOINT_LABEL: the scoring pods' Service must not select them). */
export const FRONT_LABEL = 'inferctl.dev/front';
export const FRONT_PORT = 8080;
/** The label AKS puts on every node of a System-mode pool. */
export const SYSTEM_POOL_SELECTOR = { 'kubernetes.azure.com/mode': 'system' } as const;
/** How many requests the front holds at once while the scoring pods wake, and the Retry-After of a refusal. */
export const FRONT_MAX_HELD = 100;
export const FRONT_RETRY_AFTER_SECONDS = 10;

export function frontName(name: string): string {
  return `${name}-front`;
}

export function scorersServiceName(name: string): string {
  return `${name}-scorers`;
}

/** Where the front reaches the scoring pods: their Service's cluster DNS name. */
export function scorersUrl(name: string, namespace: string, scheme: 'http' | 'https'): string {
  return `${scheme}://${scorersServiceName(name)}.${namespace}.svc.cluster.local:${SCORER_PORT}`;
}

/** The objects of a deployment that scales to zero, in apply order: namespace and key Secret first. */
export function scaleToZeroManifests(input: ScoringManifestInput, wakeTimeoutSeconds: number): KubernetesObject[] {
  // The scoring pods serve plain HTTP inside the cluster: TLS ends at the front.
  const scoring = scoringManifests({
    ...input,
    ...(input.exposure ? { exposure: { ...input.exposure, tls: undefined } } : {}),
  });
  const publicService = scoring.find((o) => o.kind === 'Service')!;
  const front = frontDeployment(input, scorersUrl(input.name, input.namespace, 'http'), [
    '--hold-ms',
    String(Math.round(wakeTimeoutSeconds * 1000)),
    '--max-held',
    String(FRONT_MAX_HELD),
    '--retry-after',
    String(FRONT_RETRY_AFTER_SECONDS),
  ]);
  const scorers = scorersService(input, { [ENDPOINT_LABEL]: input.name });
  return [...scoring.filter((o) => o !== publicService), scorers, front, frontService(publicService, input)];
}

/** The front's objects' labels and annotations: the owner, and the installation where it is given. */
function frontMeta(input: Pick<ScoringManifestInput, 'name' | 'namespace' | 'ownerId' | 'environment'>, name: string) {
  return {
    name,
    namespace: input.namespace,
    labels: { app: input.name, [MANAGED_BY_LABEL]: 'inferctl' },
    annotations: {
      [OWNER_ANNOTATION]: input.ownerId,
      ...(input.environment ? { [ENVIRONMENT_ANNOTATION]: input.environment } : {}),
    },
  };
}

/** The public Service (the endpoint's, its address kept) selecting the front's pods. */
export function frontService(publicService: KubernetesObject, input: ScoringManifestInput): KubernetesObject {
  const tls = input.exposure?.tls;
  const publicSpec = (publicService as { spec: Record<string, unknown> }).spec;
  return {
    ...publicService,
    spec: {
      ...publicSpec,
      selector: { [FRONT_LABEL]: input.name },
      ports: [{ name: tls ? 'https' : 'http', protocol: 'TCP', port: input.servicePort, targetPort: FRONT_PORT }],
    },
  } as KubernetesObject;
}

/** `<name>-scorers`: a ClusterIP Service (no load balancer exposes it) over the pods `selector` picks. */
export function scorersService(input: ScoringManifestInput, selector: Record<string, string>): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: frontMeta(input, scorersServiceName(input.name)),
    spec: {
      type: 'ClusterIP',
      selector,
      ports: [{ name: 'http', protocol: 'TCP', port: SCORER_PORT, targetPort: SCORER_PORT }],
    },
  } as KubernetesObject;
}

/**
 * The front's Deployment (front-main.ts) on the system pool, forwarding to `upstream`, with `args` added
 * (scale to zero's holding, a mirror's candidate). It serves the deployment's certificate and key only (a
 * per-deployment CA's key stays in the Secret) and reads the key Secret, both mounted 0440.
 */
export function frontDeployment(input: ScoringManifestInput, upstream: string, args: string[]): KubernetesObject {
  const tls = input.exposure?.tls;
  const labels = { app: frontName(input.name), [MANAGED_BY_LABEL]: 'inferctl' };
  const probe = (periodSeconds: number) => ({
    httpGet: { path: '/healthz', port: FRONT_PORT, ...(tls ? { scheme: 'HTTPS' } : {}) },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold: 3,
  });
  const tlsItems = [
    { key: 'tls.crt', path: 'tls.crt' },
    { key: 'tls.key', path: 'tls.key' },
  ];
  const container = {
    name: 'front',
    image: input.image,
    args: [
      'dist/src/targets/aks/front-main.js',
      '--upstream',
      upstream,
      '--api-key-file',
      `${API_KEY_MOUNT}/api-key`,
      '--host',
      '0.0.0.0',
      '--port',
      String(FRONT_PORT),
      ...(tls ? ['--tls-cert', `${TLS_MOUNT}/tls.crt`, '--tls-key', `${TLS_MOUNT}/tls.key`] : []),
      ...args,
    ],
    ports: [{ name: tls ? 'https' : 'http', containerPort: FRONT_PORT }],
    // A proxy: a tenth of a core of the system pool, no GPU.
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    securityContext: { ...SERVING_CONTAINER_SECURITY },
    readinessProbe: probe(5),
    livenessProbe: probe(10),
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [
      { name: 'api-key', mountPath: API_KEY_MOUNT, readOnly: true },
      ...(tls ? [{ name: 'tls', mountPath: TLS_MOUNT, readOnly: true }] : []),
    ],
  };
  const keyItems = [{ key: 'api-key', path: 'api-key' }];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: frontMeta(input, frontName(input.name)),
    spec: {
      replicas: 1,
      selector: { matchLabels: { [FRONT_LABEL]: input.name } },
      template: {
        metadata: { labels: { ...labels, [FRONT_LABEL]: input.name } },
        spec: {
          nodeSelector: { ...SYSTEM_POOL_SELECTOR },
          automountServiceAccountToken: false,
          securityContext: { ...SERVING_POD_SECURITY },
          containers: [container],
          volumes: [
            {
              name: 'api-key',
              secret: { secretName: secretName(input.name), defaultMode: API_KEY_FILE_MODE, items: keyItems },
            },
            ...(tls
              ? [
                  {
                    name: 'tls',
                    secret: { secretName: tls.secretName, defaultMode: API_KEY_FILE_MODE, items: tlsItems },
                  },
                ]
              : []),
          ],
        },
      },
    },
  } as KubernetesObject;
}
