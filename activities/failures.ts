import { ApplicationFailure } from '@temporalio/activity';

import { InvalidInputError } from '../src/errors';

/**
 * Maps an error from shared code to what Temporal should do with it: user-input errors become
 * non-retryable failures with a stable type; anything else is rethrown as is and retried.
 */
export function asActivityFailure(err: unknown): unknown {
  if (err instanceof InvalidInputError) return ApplicationFailure.nonRetryable(err.message, err.type);
  return err;
}

/** Calls `fn`, turning user-input errors into non-retryable failures. */
export async function failingPermanentlyOnBadInput<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asActivityFailure(err);
  }
}
