/**
 * Who owns what inferctl makes: the owning workflow's id AND the installation whose workflow it is (the
 * Temporal address and namespace, environment-tag.ts). Two installations can run a workflow with the same id
 * (`deploy-x` in two namespaces), so an owner id alone never says a resource is ours: every adopt and every
 * delete checks the whole owner. A resource with no installation tag (made before the tag existed) is not
 * adopted or deleted by a deployment; the janitor reclaims it when its owner is known here and closed.
 */
import { ENVIRONMENT_ANNOTATION, ENVIRONMENT_TAG } from './environment-tag';

/** The tag that names the workflow owning an Azure resource; the janitor deletes by it. */
export const OWNER_TAG = 'inferctl-owner';
/** The annotation that names the workflow owning a Kubernetes object. */
export const OWNER_ANNOTATION = 'inferctl.dev/owner';

/** A deployment's or a job's whole owner. */
export interface Owner {
  /** The owning workflow id. */
  id: string;
  /** The installation, `<Temporal address>/<namespace>`. */
  environment: string;
}

/** True when Azure tags name this owner, workflow and installation both. */
export function tagsOwnedBy(tags: Record<string, string> | undefined, owner: Owner): boolean {
  return tags?.[OWNER_TAG] === owner.id && tags?.[ENVIRONMENT_TAG] === owner.environment;
}

/** True when Kubernetes annotations name this owner, workflow and installation both. */
export function annotationsOwnedBy(annotations: Record<string, string> | undefined, owner: Owner): boolean {
  return annotations?.[OWNER_ANNOTATION] === owner.id && annotations?.[ENVIRONMENT_ANNOTATION] === owner.environment;
}

/** How an error names whoever owns a resource: `deploy-x of temporal:7233/team-a`. */
export function ownerOfTags(tags: Record<string, string> | undefined): string {
  return describe(tags?.[OWNER_TAG], tags?.[ENVIRONMENT_TAG]);
}

export function ownerOfAnnotations(annotations: Record<string, string> | undefined): string {
  return describe(annotations?.[OWNER_ANNOTATION], annotations?.[ENVIRONMENT_ANNOTATION]);
}

function describe(id: string | undefined, environment: string | undefined): string {
  if (!id) return 'someone else (it has no inferctl owner)';
  return `${id} of ${environment ?? 'an unknown installation (no installation tag)'}`;
}
