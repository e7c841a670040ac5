/**
 * How `inferctl deploy` follows a deployment: each step printed as it starts and ends, then what it serves
 * (the smoke answer, the endpoint, TLS, when it ends), or the outcome of a deployment that has ended.
 */
import type { WorkflowHandle } from '@temporalio/client';

import { statusQuery } from '../../../workflows/deploy';
import type { DeployOutcome, DeployStatus } from '../../shared/deploy-types';
import { formatDuration } from '../../shared/duration';
import { CliError } from '../cli-error';
import { describeTls } from '../endpoint-flags';
import { workflowFailureExitCode } from '../exit-codes';
import { describeFailure, type Output } from '../output';
import { ResultWatch } from '../result-watch';
import { printScriptServing } from '../script-flags';
import { printV2Serving } from '../v2-smoke-flags';

/** Why a deployment ended, in the words `deploy` and `status` print. */
export function endedBy(by: DeployOutcome['endedBy']): string {
  return { ttl: 'TTL ended', idle: 'idle TTL ended', budget: 'budget spent', signal: 'teardown requested' }[by];
}

/**
 * Polls the `status` query and prints each step as it starts and ends. Returns the status once the
 * deployment serves (mode 'serving') or the workflow's outcome once it has ended (mode 'end').
 */
export async function followDeployment(
  handle: WorkflowHandle,
  mode: 'serving' | 'end',
  out: Output,
  taskQueue: string,
): Promise<DeployStatus | DeployOutcome> {
  const watch = new ResultWatch<DeployOutcome>(handle);
  try {
    return await followSteps(handle, watch, mode, out, taskQueue);
  } finally {
    watch.stop(); // returning at 'serving': the deployment runs on, the command is done
  }
}

async function followSteps(
  handle: WorkflowHandle,
  watch: ResultWatch<DeployOutcome>,
  mode: 'serving' | 'end',
  out: Output,
  taskQueue: string,
): Promise<DeployStatus | DeployOutcome> {
  const printed = new Map<number, 'started' | 'ended'>();
  const startedAt = Date.now();
  let hinted = false;
  let last: DeployStatus | undefined;
  for (;;) {
    if (!watch.ended) {
      try {
        last = await handle.query(statusQuery);
      } catch {
        if (!hinted && Date.now() - startedAt > 5000) {
          out.note(`Waiting for a control worker on task queue "${taskQueue}". Start one with: inferctl worker`);
          hinted = true;
        }
      }
    }
    if (last) printSteps(last, printed, out);
    if (watch.ended) break;
    if (mode === 'serving' && last?.stage === 'serving') {
      printServing(last, out);
      return last;
    }
    await watch.pause(300);
  }

  const outcome = watch.outcome;
  if (outcome) {
    printSteps(outcome, printed, out);
    if (outcome.smoke || outcome.v2Smoke || outcome.scriptSmoke)
      printServing({ ...outcome, endpoint: undefined, expiresAt: undefined }, out);
    if (outcome.endpoint) out.line(`Served at ${outcome.endpoint} until the teardown.`);
    out.line(`Torn down (${endedBy(outcome.endedBy)}): ${outcome.teardownRemoved?.length ?? 0} resource(s) removed.`);
    return outcome;
  }
  throw new CliError(describeFailure(watch.failure), workflowFailureExitCode(watch.failure));
}

function printSteps(status: DeployStatus, printed: Map<number, 'started' | 'ended'>, out: Output): void {
  status.steps.forEach((step, i) => {
    const state = printed.get(i);
    if (step.ok === undefined) {
      if (state === undefined && step.step !== 'serve') out.line(`  … ${step.step}`);
      if (state === undefined) printed.set(i, 'started');
      return;
    }
    if (state === 'ended') return;
    const mark = step.ok ? '✔' : '✘';
    const took = step.durationMs !== undefined ? ` (${formatDuration(step.durationMs)})` : '';
    out.line(`  ${mark} ${step.step}${took}${step.detail ? `: ${step.detail}` : ''}`);
    printed.set(i, 'ended');
  });
}

function printServing(status: DeployStatus, out: Output): void {
  if (status.smoke) {
    const answer = status.smoke.predictions
      .slice(0, 3)
      .map((p) => `${p.label} ${p.score.toFixed(3)}`)
      .join(', ');
    out.line(`Smoke answer: ${answer} (${status.smoke.latencyMs} ms)`);
  }
  if (!printScriptServing(status, out) && !printV2Serving(status, out) && status.endpoint) {
    out.line(`Endpoint: POST ${status.endpoint}/score  (key: ${status.apiKeyRef ?? 'see target'})`);
  }
  if (status.tls) out.line(describeTls(status.tls));
  if (status.endsBecause) out.line(`It ${status.endsBecause}. Stop sooner: inferctl teardown ${status.name}`);
  else if (status.expiresAt)
    out.line(`Serving until ${status.expiresAt}. Stop sooner: inferctl teardown ${status.name}`);
}
