/**
 * Microsoft.Authorization role assignments for the local ARM endpoint, as `@azure/arm-authorization` v9
 * (api-version 2022-04-01) speaks them: PUT/GET/DELETE `{scope}/providers/Microsoft.Authorization/
 * roleAssignments/{name}` and GET (list) `{scope}/providers/Microsoft.Authorization/roleAssignments`, where
 * the scope is the subscription, a resource group or a resource. What Azure enforces, enforced here:
 *
 * - the assignment name is a GUID (400 InvalidRoleAssignmentId);
 * - the role definition exists (400 RoleDefinitionDoesNotExist); the built-in roles below are the ones known;
 * - the principal is a known identity of the directory (400 PrincipalNotFound): a cluster's own and its
 *   kubelet identity exist once the cluster does;
 * - one assignment per principal + role + scope: another name for the same triple is 409
 *   RoleAssignmentExists, and so is a PUT repeating an existing one; changing the principal, role or scope
 *   of an existing name is 409 RoleAssignmentUpdateNotPermitted;
 * - a description is kept as given (at most 2048 characters: 400 InvalidRoleAssignmentDescription);
 * - deleting an assignment's principal (a cluster's kubelet identity goes with its cluster) leaves the
 *   assignment in place, as Azure does ("Identity not found" in the portal): someone must delete it;
 * - the caller needs Microsoft.Authorization/roleAssignments/write (Owner, User Access Administrator):
 *   403 AuthorizationFailed when `callerMayAssignRoles` is false;
 * - a resource group scope must exist (404 ResourceGroupNotFound), and so must a registry scope;
 * - list: with no filter, the assignments at, above and below the scope; `atScope()` at or above it;
 *   `principalId eq '…'` / `assignedTo('…')` that principal's, at, above or below it.
 *
 * Image pulls use it as AKS does: a kubelet identity may pull from a registry when it holds AcrPull (or a
 * role including pull: AcrPush, Contributor, Owner) at the registry, its resource group or the subscription.
 */
import crypto from 'node:crypto';

import { armError } from './arm-protocol';
import type { Send } from './arm-protocol';
import { text } from './cluster-validation';

export const TEST_TENANT = '00000000-0000-0000-0000-0000000000aa';
/** The object id of the worker's own identity (what the managed-identity token endpoint signs in as). */
export const CALLER_OBJECT_ID = '00000000-0000-0000-0000-0000000000ca';

/** Built-in role definitions by id (the ids are Azure's, the same in every tenant). */
export const BUILT_IN_ROLES: Record<string, { name: string; canPull: boolean }> = {
  '7f951dda-4ed3-4680-a7ca-43fe172d538d': { name: 'AcrPull', canPull: true },
  '8311e382-0749-4cb8-b61a-304f252e45ec': { name: 'AcrPush', canPull: true },
  'b24988ac-6180-42a0-ab88-20f7382dd24c': { name: 'Contributor', canPull: true },
  '8e3af657-a8ff-443c-a75c-2fe8c4bcb635': { name: 'Owner', canPull: true },
  'acdd72a7-3385-48ef-bd42-f606fba81ae7': { name: 'Reader', canPull: false },
};

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Assignment {
  name: string;
  scope: string;
  roleDefinitionId: string;
  principalId: string;
  principalType?: string;
  /** Free text the creator gave it (Azure keeps it, up to 2048 characters). */
  description?: string;
  createdOn: string;
}

export class RoleAssignments {
  /** Object ids the directory knows. */
  readonly principals = new Set<string>([CALLER_OBJECT_ID]);
  /** When false, the caller holds no role that may write role assignments (a Contributor, say). */
  callerMayAssignRoles = true;
  private readonly assignments = new Map<string, Assignment>();

  constructor(
    private readonly subscriptionId: string,
    /** Whether a scope below the subscription exists (a resource group, a registry). */
    private readonly scopeExists: (scope: string) => { ok: true } | { ok: false; status: number; body: unknown },
  ) {}

  /** Every assignment (for tests to look at). */
  list(): Assignment[] {
    return [...this.assignments.values()];
  }

  /** Makes an assignment exist, as an administrator would (`az aks update --attach-acr`, the portal). */
  seed(scope: string, role: string, principalId: string): void {
    const name = crypto.randomUUID();
    const roleDefinitionId = `/subscriptions/${this.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${role}`;
    const createdOn = new Date().toISOString();
    this.assignments.set(name, {
      name,
      scope,
      roleDefinitionId,
      principalId,
      principalType: 'ServicePrincipal',
      createdOn,
    });
  }

  /** Whether `principalId` holds a role that includes pulling at `registryId` or above it. */
  canPull(principalId: string, registryId: string): boolean {
    return this.list().some(
      (a) =>
        a.principalId === principalId &&
        BUILT_IN_ROLES[roleGuid(a.roleDefinitionId) ?? '']?.canPull === true &&
        isAtOrAbove(a.scope, registryId),
    );
  }

  /** Serves `{scope}/providers/Microsoft.Authorization/roleAssignments[/{name}]`; false for other paths. */
  route(method: string, path: string, url: URL, json: Record<string, unknown>, send: Send): boolean {
    const m = /^(.*?)\/providers\/Microsoft\.Authorization\/roleAssignments(?:\/([^/]+))?$/i.exec(path);
    if (!m) return false;
    const scope = m[1]!;
    const name = m[2];
    const exists = this.scopeExists(scope);
    if (!exists.ok) {
      send(exists.status, exists.body);
      return true;
    }
    if (name === undefined) {
      if (method !== 'GET') send(405, armError('MethodNotAllowed', `${method} is not supported on the list`));
      else send(200, { value: this.filtered(scope, url.searchParams.get('$filter') ?? '').map((a) => this.json(a)) });
      return true;
    }
    if (!GUID.test(name)) {
      send(
        400,
        armError(
          'InvalidRoleAssignmentId',
          `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`,
        ),
      );
      return true;
    }
    if (method === 'GET') this.get(name, send);
    else if (method === 'PUT') this.put(scope, name, json, send);
    else if (method === 'DELETE') this.delete(scope, name, send);
    else send(405, armError('MethodNotAllowed', `${method} is not supported on role assignments`));
    return true;
  }

  private get(name: string, send: Send): void {
    const a = this.assignments.get(name.toLowerCase());
    if (!a) return send(404, armError('RoleAssignmentNotFound', `The role assignment '${name}' is not found.`));
    send(200, this.json(a));
  }

  private put(scope: string, name: string, json: Record<string, unknown>, send: Send): void {
    if (!this.callerMayAssignRoles) return send(403, this.denied('write', scope, name));
    const props = (json.properties ?? {}) as Record<string, unknown>;
    const roleDefinitionId = text(props.roleDefinitionId);
    const principalId = text(props.principalId);
    const guid = roleGuid(roleDefinitionId);
    if (!guid || !BUILT_IN_ROLES[guid]) {
      return send(
        400,
        armError(
          'RoleDefinitionDoesNotExist',
          `The specified role definition with ID '${guid ?? roleDefinitionId}' does not exist.`,
        ),
      );
    }
    if (!this.principals.has(principalId)) {
      return send(
        400,
        armError(
          'PrincipalNotFound',
          `Principal ${principalId.replace(/-/g, '')} does not exist in the directory ${TEST_TENANT}. Check that you ` +
            'have the correct principal ID. If you are creating this principal and then immediately assigning a ' +
            'role, this error might be related to a replication delay. In this case, set the role assignment ' +
            'principalType property to a value, such as ServicePrincipal, User, or Group. ' +
            'See https://aka.ms/docs-principaltype',
        ),
      );
    }
    const description = props.description === undefined ? undefined : text(props.description);
    if (description !== undefined && description.length > 2048) {
      return send(400, armError('InvalidRoleAssignmentDescription', 'The description is longer than 2048 characters.'));
    }
    const existing = this.assignments.get(name.toLowerCase());
    if (existing) {
      const same =
        existing.principalId === principalId &&
        roleGuid(existing.roleDefinitionId) === guid &&
        existing.scope.toLowerCase() === scope.toLowerCase();
      if (!same) {
        return send(
          409,
          armError(
            'RoleAssignmentUpdateNotPermitted',
            'Tenant ID, application ID, principal ID, and scope are not allowed to be updated.',
          ),
        );
      }
      return send(409, armError('RoleAssignmentExists', 'The role assignment already exists.'));
    }
    const duplicate = this.list().some(
      (a) =>
        a.principalId === principalId &&
        roleGuid(a.roleDefinitionId) === guid &&
        a.scope.toLowerCase() === scope.toLowerCase(),
    );
    if (duplicate) return send(409, armError('RoleAssignmentExists', 'The role assignment already exists.'));
    const a: Assignment = {
      name: name.toLowerCase(),
      scope,
      roleDefinitionId: `/subscriptions/${this.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${guid}`,
      principalId,
      principalType: props.principalType as string | undefined,
      ...(description !== undefined ? { description } : {}),
      createdOn: new Date().toISOString(),
    };
    this.assignments.set(a.name, a);
    send(201, this.json(a));
  }

  private delete(scope: string, name: string, send: Send): void {
    if (!this.callerMayAssignRoles) return send(403, this.denied('delete', scope, name));
    const a = this.assignments.get(name.toLowerCase());
    if (!a) return send(204);
    this.assignments.delete(a.name);
    send(200, this.json(a));
  }

  private filtered(scope: string, filter: string): Assignment[] {
    const principal = /(?:principalId eq|assignedTo\()\s*'([^']+)'/i.exec(filter)?.[1];
    const atScope = /atScope\(\)/i.test(filter);
    return this.list().filter(
      (a) =>
        (!principal || a.principalId === principal) &&
        (isAtOrAbove(a.scope, scope) || (!atScope && isAtOrAbove(scope, a.scope))),
    );
  }

  private denied(action: string, scope: string, name: string) {
    return armError(
      'AuthorizationFailed',
      `The client '${CALLER_OBJECT_ID}' with object id '${CALLER_OBJECT_ID}' does not have authorization to ` +
        `perform action 'Microsoft.Authorization/roleAssignments/${action}' over scope ` +
        `'${scope}/providers/Microsoft.Authorization/roleAssignments/${name}' or the scope is invalid. If access ` +
        'was recently granted, please refresh your credentials.',
    );
  }

  private json(a: Assignment) {
    return {
      id: `${a.scope}/providers/Microsoft.Authorization/roleAssignments/${a.name}`,
      type: 'Microsoft.Authorization/roleAssignments',
      name: a.name,
      properties: {
        roleDefinitionId: a.roleDefinitionId,
        principalId: a.principalId,
        principalType: a.principalType ?? 'ServicePrincipal',
        scope: a.scope,
        condition: null,
        conditionVersion: null,
        createdOn: a.createdOn,
        updatedOn: a.createdOn,
        createdBy: CALLER_OBJECT_ID,
        updatedBy: CALLER_OBJECT_ID,
        delegatedManagedIdentityResourceId: null,
        description: a.description ?? null,
      },
    };
  }
}

/** A fresh object id, as the directory gives a new identity. */
export function newObjectId(): string {
  return crypto.randomUUID();
}

function roleGuid(roleDefinitionId: string): string | undefined {
  return /(?:^|\/providers\/Microsoft\.Authorization\/roleDefinitions\/)([0-9a-f-]{36})$/i
    .exec(roleDefinitionId)?.[1]
    ?.toLowerCase();
}

/** True when `outer` is `inner` or one of its ancestors (ARM ids compare case-insensitively). */
function isAtOrAbove(outer: string, inner: string): boolean {
  const o = outer.toLowerCase().replace(/\/$/, '');
  const i = inner.toLowerCase();
  return i === o || i.startsWith(`${o}/`);
}
