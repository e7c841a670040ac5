/**
 * What AKS checks in a managed-cluster or agent-pool body before it accepts the PUT, with the error codes it
 * answers (https://aka.ms/aks-naming-rules and the REST reference of api-version 2025-x):
 *
 * - location is required (400 LocationRequired);
 * - at least one agent pool, and at least one of mode System (400 InvalidParameter, target agentPoolProfiles);
 * - agent pool names: lowercase letters and digits, starting with a letter, at most 12 characters for Linux
 *   and 6 for Windows, unique within the cluster (400 InvalidParameter, target agentPoolProfile.name);
 * - count 0–1000 for user pools, 1–1000 for system pools (400 InvalidParameter, target agentPoolProfile.count);
 * - the cluster autoscaler: with enableAutoScaling, minCount and maxCount are required, minCount ≤ maxCount ≤
 *   1000, minCount ≥ 1 for a system pool (0 allowed for a user pool), and count within them; without it,
 *   minCount and maxCount must be left out (400 InvalidParameter, target agentPoolProfile.minCount/maxCount/count);
 * - dnsPrefix: 1–54 characters, letters, digits and hyphens, starting and ending with a letter or digit
 *   (400 InvalidParameter, target dnsPrefix);
 * - identity: SystemAssigned, or UserAssigned naming its identities; without an identity there must be a
 *   service principal (400 InvalidParameter, target servicePrincipalProfile.clientId);
 * - every vmSize must be offered to the subscription in the region (retired sizes are not listed at all):
 *   400 BadRequest "The VM size of … is not allowed in your subscription in location …".
 */
import type { VmSku } from './compute';

export interface ArmRefusal {
  code: string;
  message: string;
  target?: string;
}

const NAMING = 'Please see https://aka.ms/aks-naming-rules for more details.';

function invalid(target: string, details: string): ArmRefusal {
  return {
    code: 'InvalidParameter',
    message: `The value of parameter ${target} is invalid. Error details: ${details} ${NAMING}`,
    target,
  };
}

/** The first problem AKS would report for a cluster body, or undefined. */
export function validateClusterBody(
  json: Record<string, unknown>,
  skus: VmSku[],
  location: string,
): ArmRefusal | undefined {
  if (!json.location)
    return { code: 'LocationRequired', message: 'The location property is required for this definition.' };
  const props = (json.properties ?? {}) as Record<string, unknown>;
  const dnsPrefix = props.dnsPrefix;
  if (typeof dnsPrefix !== 'string' || !/^[a-zA-Z0-9]([-a-zA-Z0-9]{0,52}[a-zA-Z0-9])?$/.test(dnsPrefix)) {
    return invalid(
      'dnsPrefix',
      `DNS prefix '${text(dnsPrefix)}' is invalid. DNS prefix must contain between 1 and 54 characters, ` +
        'only letters, numbers and hyphens, and start and end with a letter or number.',
    );
  }
  const identity = (json.identity ?? {}) as Record<string, unknown>;
  const sp = (props.servicePrincipalProfile ?? {}) as Record<string, unknown>;
  if (identity.type === 'UserAssigned') {
    if (Object.keys((identity.userAssignedIdentities as object | undefined) ?? {}).length === 0) {
      return invalid('identity.userAssignedIdentities', 'A UserAssigned identity must name the identity to use.');
    }
  } else if (identity.type !== 'SystemAssigned') {
    if (identity.type !== undefined && identity.type !== 'None') {
      return invalid('identity.type', `Identity type '${text(identity.type)}' is not supported.`);
    }
    if (!sp.clientId || sp.clientId === 'msi') {
      return invalid(
        'servicePrincipalProfile.clientId',
        'The cluster has neither a managed identity nor a service principal. Set identity.type to SystemAssigned ' +
          'or UserAssigned, or give servicePrincipalProfile.clientId and secret.',
      );
    }
  }
  const profiles = (props.agentPoolProfiles ?? []) as Record<string, unknown>[];
  if (profiles.length === 0) return invalid('agentPoolProfiles', 'A cluster needs at least one agent pool.');
  if (!profiles.some((p) => p.mode === 'System')) {
    return invalid('agentPoolProfiles', 'A cluster needs at least one agent pool of mode System.');
  }
  const seen = new Set<string>();
  for (const p of profiles) {
    const problem = validatePool(p, seen, skus, location);
    if (problem) return problem;
    seen.add(String(p.name));
  }
  return undefined;
}

/** The first problem AKS would report for one agent pool, given the names the cluster already has. */
export function validatePool(
  p: Record<string, unknown>,
  otherNames: Set<string>,
  skus: VmSku[],
  location: string,
): ArmRefusal | undefined {
  const name = text(p.name);
  const windows = text(p.osType ?? 'Linux') === 'Windows';
  if (!/^[a-z][a-z0-9]*$/.test(name)) {
    return invalid(
      'agentPoolProfile.name',
      `Agent pool name '${name}' must start with a lowercase letter and contain only lowercase letters and numbers.`,
    );
  }
  const max = windows ? 6 : 12;
  if (name.length > max) {
    return invalid(
      'agentPoolProfile.name',
      `${windows ? 'Windows' : 'Linux'} agent pool name '${name}' can not be longer than ${max} characters.`,
    );
  }
  if (otherNames.has(name)) {
    return invalid('agentPoolProfile.name', `Agent pool name '${name}' is used more than once; names must be unique.`);
  }
  const count = Number(p.count ?? 1);
  const min = p.mode === 'System' ? 1 : 0;
  if (!Number.isInteger(count) || count < min || count > 1000) {
    return invalid('agentPoolProfile.count', `Agent pool '${name}' count ${count} is outside ${min}–1000.`);
  }
  const autoscaling = autoscalingProblem(p, name, count, min);
  if (autoscaling) return autoscaling;
  const sku = skus.find((s) => s.name.toLowerCase() === text(p.vmSize).toLowerCase());
  if (!sku || sku.restricted) {
    return {
      code: 'BadRequest',
      message:
        `The VM size of ${text(p.vmSize)} is not allowed in your subscription in location '${location}'. ` +
        `The available VM sizes are ${skus
          .filter((s) => !s.restricted)
          .map((s) => s.name)
          .join(',')}.`,
      target: 'agentPoolProfile.vmSize',
    };
  }
  return undefined;
}

/** A body field as text, whatever JSON put there. */
export function text(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
}

/** The cluster autoscaler's bounds, as AKS checks them (see the header). */
function autoscalingProblem(p: Record<string, unknown>, name: string, count: number, min: number) {
  const has = (v: unknown) => v !== undefined && v !== null;
  if (p.enableAutoScaling !== true) {
    if (has(p.minCount) || has(p.maxCount)) {
      return invalid(
        'agentPoolProfile.minCount',
        `Agent pool '${name}': minCount and maxCount must be null when enableAutoScaling is false.`,
      );
    }
    return undefined;
  }
  const lo = Number(p.minCount);
  const hi = Number(p.maxCount);
  if (!has(p.minCount) || !has(p.maxCount) || !Number.isInteger(lo) || !Number.isInteger(hi)) {
    return invalid(
      'agentPoolProfile.minCount',
      `Agent pool '${name}': minCount and maxCount are required when enableAutoScaling is true.`,
    );
  }
  if (lo < min || hi > 1000 || lo > hi) {
    return invalid(
      'agentPoolProfile.maxCount',
      `Agent pool '${name}': minCount ${lo} and maxCount ${hi} must satisfy ${min} <= minCount <= maxCount <= 1000.`,
    );
  }
  if (has(p.count) && (count < lo || count > hi)) {
    return invalid(
      'agentPoolProfile.count',
      `Agent pool '${name}' count ${count} is outside minCount–maxCount (${lo}–${hi}).`,
    );
  }
  return undefined;
}
