/**
 * A mirror rollout on aks (`rollout --mirror PCT --compare …`). A deployment that does not scale to zero
 * has no front: its LoadBalancer Service selects the scoring pods, which end TLS themselves. For the bake
 * only, the mirror places the front (front.ts) before them, as scale to zero does for good:
 *   1. `<name>-scorers`, a ClusterIP Service over the serving pods alone (`app=<name>`: never the candidate's);
 *   2. `<name>-front` on the system pool, in the candidate's image (just built by this inferctl, so it has this
 *      front), forwarding to the serving pods and copying the answered share of requests to the candidate's
 *      own Service `<name>-candidate`, both in the cluster, both over HTTPS pinned to the deployment's own
 *      certificate when it serves TLS, with the deployment's own key (the copies carry the client's header,
 *      which the candidate checks as the serving pods do); nothing leaves the namespace;
 *   3. once the front has a ready pod, the endpoint's Service (its address, DNS label and certificate kept)
 *      selects the front instead of the scoring pods.
 * Stopping the mirror (`route(spec, 0)`) puts the endpoint's Service back on the serving pods; the front keeps
 * its counters for the final reading until the promotion's first route (before the serving pods roll) or the
 * candidate's removal deletes it and the scorers' Service. Both carry the managed-by label, and the owner and
 * installation annotations (ownership.ts), in the deployment's namespace, which teardown deletes whole. Only
 * objects carrying all three are ours: a `<name>-front` or `<name>-scorers` that someone else made there is
 * never adopted, replaced or deleted (the mirror is refused, saying so), and a removal deletes an object only
 * if it is still the one read as ours (its uid a precondition). The comparison is read from the front through the API server's pod proxy
 * with the token derived from the key (front.ts), never the key itself.
 */
import { AppsV1Api, CoreV1Api, Observable } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';

import { InvalidInputError } from '../../errors';
import { FailureType } from '../../shared/failure-types';

import type { MirrorReport } from '../../shared/mirror-types';
import { MIRROR_KEPT_DISAGREEMENTS } from '../../shared/mirror-types';
import type { CandidateMirror } from '../target';
import { MIRROR_REPORT_PATH, MIRROR_TOKEN_HEADER, mirrorReportToken } from './front';
import {
  FRONT_LABEL,
  FRONT_PORT,
  frontDeployment,
  frontName,
  frontService,
  scorersService,
  scorersServiceName,
  scorersUrl,
} from './front-manifests';
import { frontReady } from './gpu-pool-scale';
import { applyObjects, isKubeNotFound } from './kubernetes-deployment';
import { MANAGED_BY_LABEL, TLS_MOUNT } from './kubernetes-manifests';
import type { ScoringManifestInput } from './kubernetes-manifests';
import { annotationsOwnedBy, ownerOfAnnotations } from './ownership';
import type { Owner } from './ownership';

/** Thrown when a mirror's `<name>-front` or `<name>-scorers` exists in the namespace and is not this deployment's. */
export class MirrorNameInUseError extends InvalidInputError {
  constructor(
    readonly object: string,
    readonly namespace: string,
    message: string,
  ) {
    super(message, FailureType.AksObjectInUse);
    this.name = 'MirrorNameInUseError';
  }
}

/** What the mirror's objects are made from: the deployment's manifest input and its serving Service. */
export interface MirrorScope {
  /** Its `environment` is the owner's installation, annotated on the mirror's objects. */
  input: ScoringManifestInput;
  owner: Owner;
  /** The endpoint's LoadBalancer Service as the serving objects have it. */
  endpoint: KubernetesObject;
  /** The candidate's Service, reached in the cluster by its DNS name. */
  candidateService: string;
}

/**
 * Places the front before the serving pods, copying to the candidate; idempotent (a retry re-applies its own
 * objects). Refused, before anything is applied, when either name is taken by an object that is not ours.
 */
export async function placeMirrorFront(
  kc: KubeConfig,
  scope: MirrorScope,
  mirror: CandidateMirror,
  signal?: AbortSignal,
): Promise<void> {
  const { input } = scope;
  const scheme = input.exposure?.tls ? 'https' : 'http';
  const candidate = `${scheme}://${scope.candidateService}.${input.namespace}.svc.cluster.local:${input.servicePort}`;
  const front = frontDeployment(input, scorersUrl(input.name, input.namespace, scheme), [
    ...(input.exposure?.tls ? ['--upstream-ca', `${TLS_MOUNT}/tls.crt`] : []),
    '--mirror-candidate',
    candidate,
    '--mirror-id',
    mirror.id,
    '--mirror-percent',
    String(mirror.percent),
    '--mirror-compare',
    JSON.stringify(mirror.compare),
  ]);
  for (const object of mirrorObjects(kc, input.namespace, input.name)) {
    const found = await object.read();
    if (found && !isOurs(found, scope.owner)) {
      const what = `${object.kind} ${input.namespace}/${object.name}`;
      throw new MirrorNameInUseError(
        object.name,
        input.namespace,
        `${what} already exists and belongs to ${ownerOfAnnotations(found.metadata?.annotations)}, not to ` +
          `${scope.owner.id} of ${scope.owner.environment}: a mirror rollout places its front under that name, and ` +
          `it neither adopts nor replaces an object it did not make. Remove that ${object.kind} if nobody uses it ` +
          `(kubectl delete ${object.kind.toLowerCase()} ${object.name} -n ${input.namespace}) and run the rollout ` +
          `again, or roll out with --canary instead.`,
      );
    }
  }
  await applyObjects(kc, [scorersService(input, { app: input.name }), front]);
  // The endpoint moves only once the front answers: until then the serving pods keep it.
  while (!(await frontServes(kc, input.namespace, input.name, mirror.id))) {
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await applyObjects(kc, [frontService(scope.endpoint, input)]);
}

/** Whether the front's Deployment is available with this mirror (its rolled-out pods carry this id). */
async function frontServes(kc: KubeConfig, namespace: string, name: string, id: string): Promise<boolean> {
  if (!(await frontReady(kc, namespace, name))) return false;
  const front = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name: frontName(name), namespace });
  const status = front.status;
  return (
    (status?.updatedReplicas ?? 0) >= 1 &&
    status?.observedGeneration === front.metadata?.generation &&
    (status?.replicas ?? 0) === (status?.updatedReplicas ?? 0) &&
    (front.spec?.template.spec?.containers[0]?.args ?? []).includes(id)
  );
}

/**
 * The comparison so far, summed over the front's running pods that count this mirror (one, but two while it
 * rolls), with each pod's own reading in `parts`; zero counters before the first pair. Throws when no front
 * pod answered.
 */
export async function readMirrorReport(
  kc: KubeConfig,
  namespace: string,
  name: string,
  https: boolean,
  id: string,
  apiKey: string,
): Promise<MirrorReport> {
  const core = kc.makeApiClient(CoreV1Api);
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: `${FRONT_LABEL}=${name}` })).items.filter(
    (p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp,
  );
  const token = mirrorReportToken(apiKey);
  const sum: MirrorReport = { id, pairs: 0, agreed: 0, dropped: 0, failed: 0, skipped: 0, disagreements: [] };
  let read = 0;
  // Each pod's own reading too, under its epoch: the bake keeps a pod's counts once it is gone (mirror-bake.ts).
  const parts: MirrorReport[] = [];
  for (const pod of pods) {
    const proxied = `${https ? 'https' : 'http'}:${pod.metadata!.name!}:${FRONT_PORT}`;
    const text: unknown = await core
      .connectGetNamespacedPodProxyWithPath(
        { name: proxied, namespace, path: MIRROR_REPORT_PATH.slice(1) },
        {
          middleware: [
            {
              pre: (context) => {
                context.setHeaderParam(MIRROR_TOKEN_HEADER, token);
                return new Observable(Promise.resolve(context));
              },
              post: (response) => new Observable(Promise.resolve(response)),
            },
          ],
          middlewareMergeStrategy: 'append',
        },
      )
      .catch(() => undefined); // starting or stopping: left out
    // The client parses a JSON answer itself (typed string, it is then an object).
    const report = (typeof text === 'string' ? JSON.parse(text) : text) as MirrorReport | undefined;
    if (report?.id !== id) continue;
    read++;
    parts.push(report);
    for (const key of ['pairs', 'agreed', 'dropped', 'failed', 'skipped'] as const) sum[key] += report[key];
    if (report.maxDifference !== undefined) sum.maxDifference = Math.max(sum.maxDifference ?? 0, report.maxDifference);
    sum.disagreements.push(...report.disagreements);
  }
  if (read === 0) throw new Error(`The mirror front of ${name} in namespace ${namespace} did not answer.`);
  sum.disagreements = sum.disagreements.slice(0, MIRROR_KEPT_DISAGREEMENTS);
  return { ...sum, parts };
}

/**
 * Deletes the mirror's front and the scorers' Service where they are ours (absent ones are fine); one that is
 * someone else's is left as it is, and so is one replaced since it was read (the uid is a precondition).
 */
export async function removeMirrorFront(kc: KubeConfig, namespace: string, name: string, owner: Owner): Promise<void> {
  for (const object of mirrorObjects(kc, namespace, name)) {
    const found = await object.read();
    if (!found || !isOurs(found, owner)) continue;
    await object.remove(found.metadata!.uid!).catch((err: unknown) => {
      // 404: gone already; 409: the precondition failed, the name now holds another object.
      if (!isKubeNotFound(err) && (err as { code?: number }).code !== 409) throw err;
    });
  }
}

/** Ours: the managed-by label and the whole owner (workflow and installation) in its annotations. */
function isOurs(object: KubernetesObject, owner: Owner): boolean {
  return (
    object.metadata?.labels?.[MANAGED_BY_LABEL] === 'inferctl' &&
    annotationsOwnedBy(object.metadata?.annotations, owner)
  );
}

/** The mirror's two objects: each read (undefined when absent) and deleted only while its uid is `uid`. */
function mirrorObjects(kc: KubeConfig, namespace: string, name: string) {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const absent = (err: unknown): undefined => {
    if (isKubeNotFound(err)) return undefined;
    throw err;
  };
  const front = frontName(name);
  const scorers = scorersServiceName(name);
  const body = (uid: string) => ({ preconditions: { uid } });
  return [
    {
      kind: 'Deployment',
      name: front,
      read: (): Promise<KubernetesObject | undefined> =>
        apps.readNamespacedDeployment({ name: front, namespace }).catch(absent),
      remove: (uid: string) =>
        apps.deleteNamespacedDeployment({ name: front, namespace, propagationPolicy: 'Background', body: body(uid) }),
    },
    {
      kind: 'Service',
      name: scorers,
      read: (): Promise<KubernetesObject | undefined> =>
        core.readNamespacedService({ name: scorers, namespace }).catch(absent),
      remove: (uid: string) => core.deleteNamespacedService({ name: scorers, namespace, body: body(uid) }),
    },
  ];
}
