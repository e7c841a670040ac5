/**
 * Errors that reach the user carry what happened and what to do about it.
 * `type` is stable: workflows turn these into non-retryable ApplicationFailures of the same type.
 */

/** Thrown when user input (a flag, a file, a config value) cannot be used; retrying will not help. */
export class InvalidInputError extends Error {
  readonly type: string;
  constructor(message: string, type = 'InvalidInput') {
    super(message);
    this.name = 'InvalidInputError';
    this.type = type;
  }
}

/** Thrown when a model file is missing, unreadable or not a usable image classifier. */
export class ModelError extends InvalidInputError {
  constructor(message: string, type = 'InvalidModel') {
    super(message, type);
    this.name = 'ModelError';
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
