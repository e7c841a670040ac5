/**
 * Errors that reach the user carry what happened and what to do about it.
 *
 * A `PermanentError` is one that retrying cannot fix; its `type` comes from the `FailureType` table and
 * is stable. Activities turn it into a non-retryable `ApplicationFailure` of the same type
 * (`activities/failures.ts`); anything else thrown by shared code is transient and retried.
 */
import { FailureType } from './shared/failure-types';

/** Thrown when retrying cannot help: the same call would fail the same way until someone changes something. */
export class PermanentError extends Error {
  readonly type: FailureType;
  constructor(message: string, type: FailureType, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
    this.type = type;
  }
}

/** Thrown when user input (a flag, a file, a config value) cannot be used; the user must change it. */
export class InvalidInputError extends PermanentError {
  constructor(message: string, type: FailureType = FailureType.InvalidInput) {
    super(message, type);
    this.name = 'InvalidInputError';
  }
}

/** Thrown when a model file is missing, unreadable or not a usable image classifier. */
export class ModelError extends InvalidInputError {
  constructor(message: string, type: FailureType = FailureType.InvalidModel) {
    super(message, type);
    this.name = 'ModelError';
  }
}

/** Thrown when this worker cannot do what was asked: a target it is not configured for, no CUDA. */
export class WorkerCapabilityError extends PermanentError {
  constructor(message: string, type: FailureType) {
    super(message, type);
    this.name = 'WorkerCapabilityError';
  }
}

/** Thrown when a step ran to its end and failed for good: a build that failed, a deployment that cannot start. */
export class StepFailedError extends PermanentError {
  constructor(message: string, type: FailureType) {
    super(message, type);
    this.name = 'StepFailedError';
  }
}

/** Thrown when an input image cannot be decoded or preprocessed; `reason` is short and stable. */
export class ImageError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.name = 'ImageError';
    this.reason = reason;
  }
}
