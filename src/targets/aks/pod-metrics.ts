/**
 * The scoring-request counters of a deployment's pods, each read from its own scoring server's `/metrics`
 * through the API server's pod proxy (`/api/v1/namespaces/<ns>/pods/<scheme>:<pod>:5001/proxy/metrics`),
 * the way `kubectl get --raw` reaches a pod: no Service picks the replica, so every pod is counted once, and
 * nothing outside the cluster's API is opened. The server's `/metrics` needs no key (it holds no secrets),
 * which matters here: the API server does not pass the caller's Authorization header on to the pod.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';

import type { RequestCounts } from '../target';
import { scoringCounts } from '../local/replica-set';
import { SCORER_PORT } from './kubernetes-manifests';

/** Sums the counters of the running pods matching `labelSelector`; a pod that does not answer is left out. */
export async function podRequestCounts(
  kc: KubeConfig,
  namespace: string,
  labelSelector: string,
  https: boolean,
): Promise<RequestCounts> {
  const core = kc.makeApiClient(CoreV1Api);
  const pods = (await core.listNamespacedPod({ namespace, labelSelector })).items.filter(
    (p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp,
  );
  const counts: RequestCounts = { total: 0, errors: 0, replicasRead: 0 };
  await Promise.all(
    pods.map(async (pod) => {
      const name = `${https ? 'https' : 'http'}:${pod.metadata!.name!}:${SCORER_PORT}`;
      let text: string;
      try {
        text = await core.connectGetNamespacedPodProxyWithPath({ name, namespace, path: 'metrics' });
      } catch {
        return; // starting or restarting: its counter starts from zero once it answers
      }
      const read = scoringCounts(text);
      counts.total += read.total;
      counts.errors += read.errors;
      counts.replicasRead++;
    }),
  );
  return counts;
}
