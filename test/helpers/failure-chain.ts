/**
 * A failed workflow's whole failure chain in one call: `WorkflowFailedError` → the `ApplicationFailure`
 * the workflow raised → the `ActivityFailure` of the step that failed → that step's own
 * `ApplicationFailure`, so a test asserts each link in a line:
 *
 *   const { workflow, activity, root } = await expectWorkflowFailure(handle);
 *   assert.equal(workflow?.type, FailureType.DeploymentFailed);
 *   assert.ok(activity, 'an activity failed');
 *   assert.equal(root.type, FailureType.SmokeQueryMismatch);
 */
import assert from 'node:assert/strict';

import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';

/** A started workflow: anything with the `result()` of a `WorkflowHandle`. */
export interface WorkflowRun {
  result(): Promise<unknown>;
}

export interface FailureChain {
  /** What the client threw. */
  error: WorkflowFailedError;
  /**
   * The `ApplicationFailure` the workflow itself raised (`error.cause`), or undefined when the workflow
   * let a step's failure (an `ActivityFailure`, a cancellation) through as it was.
   */
  workflow: ApplicationFailure | undefined;
  /** The first `ActivityFailure` in the chain: the step that failed, if one did. */
  activity: ActivityFailure | undefined;
  /** The innermost `ApplicationFailure`: the failing step's own reason, with its stable `type`. */
  root: ApplicationFailure;
  /** Every cause from `error.cause` inwards, for what the fields above do not name. */
  causes: unknown[];
}

/** Awaits the run, which must fail; returns the `WorkflowFailedError` (for a chain without an ApplicationFailure). */
export async function expectWorkflowFailedError(run: WorkflowRun, what = 'the workflow'): Promise<WorkflowFailedError> {
  const error = await run.result().then(
    (value: unknown) => assert.fail(`${what} should fail, but it returned ${JSON.stringify(value)}`),
    (err: unknown) => err,
  );
  assert.ok(error instanceof WorkflowFailedError, `${what} failed with a WorkflowFailedError, got ${String(error)}`);
  return error;
}

/** Awaits the run, which must fail with an `ApplicationFailure` somewhere in its chain; returns the chain. */
export async function expectWorkflowFailure(run: WorkflowRun, what = 'the workflow'): Promise<FailureChain> {
  const error = await expectWorkflowFailedError(run, what);
  const causes: unknown[] = [];
  let cause: unknown = error.cause;
  while (cause !== undefined) {
    causes.push(cause);
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  const applicationFailures = causes.filter((c): c is ApplicationFailure => c instanceof ApplicationFailure);
  const root = applicationFailures.at(-1);
  assert.ok(root, `${what} failed with an ApplicationFailure in its chain, got ${describeChain(causes)}`);
  return {
    error,
    workflow: causes[0] instanceof ApplicationFailure ? causes[0] : undefined,
    activity: causes.find((c): c is ActivityFailure => c instanceof ActivityFailure),
    root,
    causes,
  };
}

function describeChain(causes: unknown[]): string {
  if (causes.length === 0) return 'no cause';
  return causes
    .map((c) => (c instanceof Error ? `${c.constructor.name}(${c.message.slice(0, 120)})` : String(c)))
    .join(' → ');
}
