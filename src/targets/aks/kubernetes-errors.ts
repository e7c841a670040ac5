/**
 * Sorts Kubernetes API failures into "retry" and "tell the user what to fix". 401 (the cluster rejects
 * the credentials), 403 (RBAC forbids the call) and 422 (the API server refuses the object) come back the
 * same on every attempt, so they fail the step at once with what to do; 404s are handled where they mean
 * "not there yet" or "already gone"; 409, 429, 5xx and network errors stay transient and are retried.
 */
import { ApiException } from '@kubernetes/client-node';

import { PermanentError } from '../../errors';
import { FailureType } from '../../shared/failure-types';

/** Thrown when the cluster's API server refuses a call for a reason another attempt cannot change. */
export class KubernetesRefusedError extends PermanentError {
  readonly status: number;
  constructor(message: string, type: FailureType, status: number) {
    super(message, type);
    this.name = 'KubernetesRefusedError';
    this.status = status;
  }
}

/** The API server's own words: the `message` of the Status object it answered with. */
function statusMessage(body: unknown): string {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return body.slice(0, 300);
    }
  }
  if (value && typeof value === 'object' && 'message' in value && typeof value.message === 'string') {
    return value.message.slice(0, 500);
  }
  return '';
}

/** `err` as what the activity should do with it; `doing` says what was being attempted, on which cluster. */
export function kubernetesFailure(err: unknown, doing: string): unknown {
  if (!(err instanceof ApiException)) return err;
  const code = Number(err.code);
  const said = statusMessage(err.body);
  const detail = said ? `: ${said}` : '';
  if (code === 401) {
    return new KubernetesRefusedError(
      `The cluster's API server rejected inferctl's credentials while ${doing} (401${detail}). The worker reads ` +
        'them with listClusterUserCredentials: check that its identity holds "Azure Kubernetes Service Cluster ' +
        'User Role" on the cluster and, on a cluster with Microsoft Entra ID integration, a Kubernetes role too.',
      FailureType.KubernetesUnauthorized,
      code,
    );
  }
  if (code === 403) {
    return new KubernetesRefusedError(
      `Kubernetes RBAC forbids what inferctl needs while ${doing} (403${detail}). Give the worker's identity ` +
        'a role that may manage namespaces, Secrets, Deployments, Services and DaemonSets in the cluster ' +
        '(e.g. "Azure Kubernetes Service RBAC Cluster Admin", or a ClusterRoleBinding for its user).',
      FailureType.KubernetesForbidden,
      code,
    );
  }
  if (code === 422) {
    return new KubernetesRefusedError(
      `The cluster's API server refused an object while ${doing} (422${detail}). An admission policy of the ` +
        'cluster or a value passed to inferctl (name, image, replicas) is not accepted; change it and deploy again.',
      FailureType.KubernetesInvalidObject,
      code,
    );
  }
  return err;
}
