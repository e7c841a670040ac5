/**
 * Which installation of inferctl made a resource: the Temporal address and namespace its workflows run in.
 * Every Azure resource inferctl creates carries it as a tag, and every Kubernetes namespace as an
 * annotation, so a janitor only ever reclaims what its own installation made: a cluster whose owner
 * workflow is unknown to this namespace may belong to another installation sharing the subscription.
 */
export const ENVIRONMENT_TAG = 'inferctl-environment';
export const ENVIRONMENT_ANNOTATION = 'inferctl.dev/environment';
/** The cluster a namespace was deployed to (the janitor reclaims a namespace only in the cluster it names). */
export const CLUSTER_ANNOTATION = 'inferctl.dev/cluster';

/** `<address>/<namespace>`, e.g. `temporal.example.com:7233/prod`. */
export function environmentOf(temporal: { address: string; namespace: string }): string {
  return `${temporal.address}/${temporal.namespace}`;
}
