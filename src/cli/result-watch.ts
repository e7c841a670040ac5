import type { WorkflowHandle } from '@temporalio/client';

/**
 * Waits for a workflow's result in the background while a command polls its queries:
 * `ended` flips once it has completed or failed (following continue-as-new runs to the last one).
 * The wait is a long poll on the server (about 20 s per call): a command that returns before the workflow
 * ends must `stop()` the watch, or the open call keeps the process alive after its last line.
 */
export class ResultWatch<T> {
  ended = false;
  outcome: T | undefined;
  failure: unknown;
  readonly settled: Promise<void>;
  private readonly abort = new AbortController();

  constructor(handle: WorkflowHandle) {
    this.settled = handle.client
      .withAbortSignal(this.abort.signal, () => handle.result() as Promise<T>)
      .then(
        (r: T) => {
          this.outcome = r;
          this.ended = true;
        },
        (err: unknown) => {
          if (this.abort.signal.aborted) return; // stopped: the command no longer waits for it
          this.failure = err;
          this.ended = true;
        },
      );
  }

  /** Resolves after `ms`, or sooner when the workflow ends. */
  pause(ms: number): Promise<unknown> {
    return Promise.race([this.settled, new Promise((r) => setTimeout(r, ms))]);
  }

  /** Stops waiting: cancels the long poll so that nothing keeps the process alive once the command is done. */
  stop(): void {
    if (!this.ended) this.abort.abort();
  }
}
