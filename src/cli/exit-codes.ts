/**
 * What inferctl's exit codes mean, everywhere (docs/cli.md):
 *   0  done: the command did what was asked, and what it reports on is fine (serving, running, completed)
 *   1  failed: the work failed (a deployment or job that failed, was cancelled, terminated or timed out),
 *      or something outside the input did (the Temporal server cannot be reached, a worker refused)
 *   2  bad input: a flag, a name, a file or a model the user must change before running it again
 *   3  stopped by budget: a batch job spent its --budget and stopped between shards; what it scored is
 *      kept, and `inferctl score resume <name> --budget <more>` finishes it
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

import { FailureType } from '../shared/failure-types';

export const ExitCode = { Ok: 0, Failed: 1, BadInput: 2, StoppedByBudget: 3 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The failure types that mean "change the input": the bad-input and bad-model groups of FailureType. */
const BAD_INPUT: ReadonlySet<string> = new Set([
  FailureType.InvalidInput,
  FailureType.InvalidDeployment,
  FailureType.InvalidBatchJob,
  FailureType.InvalidManifest,
  FailureType.InvalidPreprocess,
  FailureType.InvalidTemporalConfig,
  FailureType.InputNotFound,
  FailureType.EmptyInput,
  FailureType.PathNotAllowed,
  FailureType.OutputNotWritable,
  FailureType.DeploymentNameInUse,
  FailureType.ModelNotFound,
  FailureType.InvalidModel,
  FailureType.UnsupportedModel,
  FailureType.MissingLabels,
]);

/** The exit code for a workflow that failed: 2 when any failure in its chain is bad input, else 1. */
export function workflowFailureExitCode(err: unknown): ExitCode {
  let current: unknown = err instanceof WorkflowFailedError ? err.cause : err;
  while (current instanceof Error) {
    if (current instanceof ApplicationFailure && current.type && BAD_INPUT.has(current.type)) return ExitCode.BadInput;
    current = current.cause;
  }
  return ExitCode.Failed;
}

/** A closed workflow's execution status (`FAILED`, `TERMINATED`, …) as an exit code: 0 only when it completed. */
export function executionExitCode(execution: string): ExitCode {
  return execution === 'RUNNING' || execution === 'COMPLETED' ? ExitCode.Ok : ExitCode.Failed;
}
