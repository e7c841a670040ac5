import path from 'node:path';

import { InvalidInputError } from './errors';
import { FailureType } from './shared/failure-types';

/**
 * Where workers may read models and inputs and write outputs: INFERCTL_ALLOWED_ROOTS, a list of
 * directories separated by ':' (unset: anywhere). A path that resolves outside every root is refused,
 * so a job cannot make a shared worker read or overwrite files it was not meant to.
 */
export function allowedRoots(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const raw = env.INFERCTL_ALLOWED_ROOTS;
  if (!raw) return undefined;
  return raw
    .split(path.delimiter)
    .filter(Boolean)
    .map((r) => path.resolve(r));
}

/** Throws a non-retryable-input error naming the path and the roots when `p` is outside all of them. */
export function assertInsideAllowedRoots(what: string, p: string, roots = allowedRoots()): void {
  if (!roots) return;
  const resolved = path.resolve(p);
  const inside = roots.some((root) => resolved === root || resolved.startsWith(root + path.sep));
  if (!inside) {
    throw new InvalidInputError(
      `The ${what} ${resolved} is outside the directories this worker may use (INFERCTL_ALLOWED_ROOTS: ${roots.join(', ')}). ` +
        'Move it under one of them, or ask the operator to allow its directory.',
      FailureType.PathNotAllowed,
    );
  }
}
