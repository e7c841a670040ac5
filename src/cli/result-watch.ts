import type { WorkflowHandle } from '@temporalio/client';

/**
 * Waits for a workflow's result in the background while a command polls its queries:
 * `ended` flips once it has completed or failed (following continue-as-new runs to the last one).
 */
export class ResultWatch<T> {
  ended = false;
  outcome: T | undefined;
  failure: unknown;
  readonly settled: Promise<void>;

  constructor(handle: WorkflowHandle) {
    this.settled = handle.result().then(
      (r: T) => {
        this.outcome = r;
        this.ended = true;
      },
      (err: unknown) => {
        this.failure = err;
        this.ended = true;
      },
    );
  }

  /** Resolves after `ms`, or sooner when the workflow ends. */
  pause(ms: number): Promise<unknown> {
    return Promise.race([this.settled, new Promise((r) => setTimeout(r, ms))]);
  }
}
