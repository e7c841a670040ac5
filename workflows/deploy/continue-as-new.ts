/**
 * A deployment may serve for weeks, and every Update adds events to its history; a history past the
 * server's limit (51,200 events or 50 MB) terminates the workflow, and its teardown never runs. So while it
 * serves, once this run's history holds `historyEventsPerRun` events (default 10,000) or the server suggests
 * it, the serving wait stops, every change and Update in flight finishes, and the deployment continues as
 * new carrying its whole state (carry.ts): the next run goes straight back to serving the same endpoint.
 * Deploy workflows are pinned, and a continued run stays on its worker version (no initialVersioningBehavior
 * is given). Guarded by patched('deploy-continue-as-new'): runs recorded before it never continue.
 */
import { allHandlersFinished, condition, log, workflowInfo } from '@temporalio/workflow';

import type { DeployCarryOver } from './carry';
import type { DeployState } from './state';

/** Events per run before a serving deployment continues as new, unless its input says otherwise. */
export const HISTORY_EVENTS_PER_RUN = 10_000;
/** The lowest bound a deployment may set: a continued run starts serving with a dozen events. */
export const MIN_HISTORY_EVENTS_PER_RUN = 50;
/** Step records carried to the next run: the steps up to serving, and the latest ones after them. */
const CARRIED_STEPS = 50;

/** The serving wait's test: is this run's history long enough to continue as new? */
export function historyFull(d: DeployState): () => boolean {
  const bound = Math.max(MIN_HISTORY_EVENTS_PER_RUN, d.input.historyEventsPerRun ?? HISTORY_EVENTS_PER_RUN);
  return () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= bound;
  };
}

/**
 * Waits until no Update is in flight (a scale or rollout finishes first). A teardown request that arrives
 * meanwhile wins: then the deployment ends here instead, and this returns false.
 */
export async function settleBeforeContinuing(d: DeployState): Promise<boolean> {
  await condition(() => d.serving.teardownRequested || (!d.changing && allHandlersFinished()));
  if (!d.serving.teardownRequested) return true;
  d.serving.continuing = false;
  d.serving.endedBy = 'signal';
  return false;
}

/** The next run's second argument: everything the handlers and the serving wait read. */
export function carryOver(d: DeployState): DeployCarryOver {
  const { status } = d;
  const steps = status.steps;
  const serveAt = steps.findIndex((s) => s.step === 'serve');
  const upToServing = serveAt < 0 ? [] : steps.slice(0, serveAt + 1);
  const later = steps.slice(upToServing.length).slice(-Math.max(0, CARRIED_STEPS - upToServing.length));
  log.info('Continuing as new', { historyLength: workflowInfo().historyLength, run: d.continuedRuns + 1 });
  return {
    spec: d.spec,
    image: d.image!,
    status: { ...status, steps: [...upToServing, ...later] },
    serving: d.serving.carry(),
    counted: d.counted,
    continuedRuns: d.continuedRuns + 1,
  };
}
