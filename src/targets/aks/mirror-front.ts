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
 * candidate's removal deletes it and the scorers' Service. Both
 * carry the managed-by label and owner annotation the other objects carry, in the deployment's namespace,
 * which teardown deletes whole. The comparison is read from the front through the API server's pod proxy
 * with the token derived from the key (front.ts), never the key itself.
 */
import { AppsV1Api, CoreV1Api, Observable } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';

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
import { TLS_MOUNT } from './kubernetes-manifests';
import type { ScoringManifestInput } from './kubernetes-manifests';

/** What the mirror's objects are made from: the deployment's manifest input and its serving Service. */
export interface MirrorScope {
  input: ScoringManifestInput;
  /** The endpoint's LoadBalancer Service as the serving objects have it. */
  endpoint: KubernetesObject;
  /** The candidate's Service, reached in the cluster by its DNS name. */
  candidateService: string;
}

/** Places the front before the serving pods, copying to the candidate; idempotent (a retry re-applies). */
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

/** Deletes the mirror's front and the scorers' Service (absent ones are fine). */
export async function removeMirrorFront(kc: KubeConfig, namespace: string, name: string): Promise<void> {
  const gone = (err: unknown) => {
    if (!isKubeNotFound(err)) throw err;
  };
  await kc
    .makeApiClient(AppsV1Api)
    .deleteNamespacedDeployment({ name: frontName(name), namespace, propagationPolicy: 'Background' })
    .catch(gone);
  await kc
    .makeApiClient(CoreV1Api)
    .deleteNamespacedService({ name: scorersServiceName(name), namespace })
    .catch(gone);
}
