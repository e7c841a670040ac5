/**
 * The scoring-request counters of a deployment's pods, each read from its own scoring server's `/metrics`
 * through the API server's pod proxy (`/api/v1/namespaces/<ns>/pods/<scheme>:<pod>:5001/proxy/metrics`),
 * the way `kubectl get --raw` reaches a pod: no Service picks the replica, so every pod is counted once, and
 * nothing outside the cluster's API is opened. The server's `/metrics` needs no key (it holds no secrets),
 * which matters here: the API server does not pass the caller's Authorization header on to the pod.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';

import type { GatewayCounts, RequestCounts } from '../target';
import { scoringCounts } from '../local/replica-set';
import { SCORER_PORT } from './kubernetes-manifests';

/** Sums the counters of the running pods matching `labelSelector`; a pod that does not answer is left out. */
export async function podRequestCounts(
  kc: KubeConfig,
  namespace: string,
  labelSelector: string,
  https: boolean,
): Promise<RequestCounts> {
  const counts: RequestCounts = { total: 0, errors: 0, replicasRead: 0 };
  for (const text of await podMetrics(kc, namespace, labelSelector, https)) {
    const read = scoringCounts(text);
    counts.total += read.total;
    counts.errors += read.errors;
    counts.replicasRead++;
  }
  return counts;
}

/**
 * The endpoint's load as the pods count it, for a deployment without a front (autoscaling with
 * --min-replicas 1 or more): their scoring requests and those in flight, summed. Nothing is held without a
 * front. Throws when no pod answered (the reading is then left out, not taken as zero).
 */
export async function podLoadCounts(
  kc: KubeConfig,
  namespace: string,
  labelSelector: string,
  https: boolean,
): Promise<GatewayCounts> {
  const texts = await podMetrics(kc, namespace, labelSelector, https);
  if (texts.length === 0) throw new Error(`No scoring pod in namespace ${namespace} answered for its counters.`);
  const sum = { scoringTotal: 0, inFlight: 0, held: 0, heldTotal: 0, heldAnsweredTotal: 0, heldRefusedTotal: 0 };
  for (const text of texts) {
    sum.scoringTotal += scoringCounts(text).total;
    sum.inFlight += Number(/^inferctl_server_scoring_in_flight (\d+(?:\.\d+)?)$/m.exec(text)?.[1] ?? 0);
  }
  return sum;
}

/** The `/metrics` text of each running pod that answered. */
async function podMetrics(kc: KubeConfig, namespace: string, labelSelector: string, https: boolean) {
  const core = kc.makeApiClient(CoreV1Api);
  const pods = (await core.listNamespacedPod({ namespace, labelSelector })).items.filter(
    (p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp,
  );
  const texts = await Promise.all(
    pods.map(async (pod) => {
      const name = `${https ? 'https' : 'http'}:${pod.metadata!.name!}:${SCORER_PORT}`;
      // Starting or restarting: left out; its counters start from zero once it answers.
      return core.connectGetNamespacedPodProxyWithPath({ name, namespace, path: 'metrics' }).catch(() => undefined);
    }),
  );
  return texts.filter((t): t is string => typeof t === 'string');
}
