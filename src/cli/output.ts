/**
 * How commands talk to the user: human lines on stdout, notes on stderr, or one JSON document with
 * --json (human lines are then suppressed so the output parses).
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';

export interface Output {
  readonly json: boolean;
  line(text: string): void;
  note(text: string): void;
  result(value: unknown): void;
}

export function createOutput(json: boolean): Output {
  return {
    json,
    line: (text) => {
      if (!json) process.stdout.write(text + '\n');
    },
    note: (text) => process.stderr.write(text + '\n'),
    result: (value) => {
      if (json) process.stdout.write(JSON.stringify(value, null, 2) + '\n');
    },
  };
}

/**
 * One line saying why a workflow failed: the outermost ApplicationFailure's message (our workflows put
 * the step, the cause and the teardown outcome there), else the innermost cause.
 */
export function describeFailure(err: unknown): string {
  let current: unknown = err instanceof WorkflowFailedError ? err.cause : err;
  while (current instanceof TemporalFailure && !(current instanceof ApplicationFailure) && current.cause) {
    current = current.cause;
  }
  if (current instanceof Error) return current.message;
  return String(current);
}
