import { ApplicationFailure } from '@temporalio/activity';

import { PermanentError } from '../src/errors';

/**
 * Maps an error from shared code to what Temporal should do with it: a permanent error becomes a
 * non-retryable failure of its stable type; anything else is rethrown
 * as is and retried.
 */
export function asActivityFailure(err: unknown): unknown {
  if (err instanceof PermanentError) {
    return ApplicationFailure.nonRetryable(err.message, err.type);
  }
  return err;
}

/** Calls `fn`, turning permanent errors into non-retryable failures. */
export async function failingPermanently<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asActivityFailure(err);
  }
}
