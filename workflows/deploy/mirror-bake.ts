/**
 * A mirror rollout's bake (`rollout --mirror PCT --compare …`): the serving set alone answers clients while
 * the endpoint copies a share of the requests it answered to the candidate and compares the two answers.
 * The comparison is read every few seconds into the status (`inferctl status` shows it); at the end the
 * mirror stops and the candidate is promoted only with enough pairs compared and enough of them agreeing,
 * otherwise the bake fails naming the first disagreements (and the rollout removes the candidate).
 *
 * The counts live in the process that copies the requests (the aks front, the local gateway). Each start of
 * it is an epoch: the bake keeps the last reading of every epoch and adds them up (observeMirror,
 * mergeMirrorReports), so a restart mid-bake loses only the pairs compared between the last reading and the
 * restart, and a candidate that disagreed before it is still kept off. Pure: no command depends on it.
 */
import { ApplicationFailure, sleep, uuid4 } from '@temporalio/workflow';

import type { DeploymentSpec } from '../../src/shared/deploy-types';
import { FailureType } from '../../src/shared/failure-types';
import { describeMirror, mergeMirrorReports, mirrorRefusal, observeMirror } from '../../src/shared/mirror-types';
import type { MirrorReport, MirrorRequest } from '../../src/shared/mirror-types';
import type { DeployState } from './state';

/** The bake's comparison, once the candidate may be promoted; throws MirrorDisagreement otherwise. */
export async function mirrorBake(
  d: DeployState,
  candidate: DeploymentSpec,
  mirror: MirrorRequest,
  bakeSeconds: number,
): Promise<MirrorReport> {
  const rollout = d.status.rollout!;
  const quick = (summary: string) => d.activities('quick', summary);
  const id = uuid4();
  rollout.mirrorPercent = mirror.percent;
  // 'waiting': on aks the mirror places a front before the serving pods and waits for it to be ready.
  await d.activities('waiting', `Mirror ${mirror.percent}% of requests to the candidate`).mirrorToCandidate(candidate, {
    id,
    percent: mirror.percent,
    compare: mirror.compare,
  });
  // About 30 looks at the comparison per bake, 2 to 30 seconds apart: the history stays small.
  const interval = Math.min(30, Math.max(2, Math.ceil(bakeSeconds / 30)));
  // The last reading of each run of the counting process: a restarted front or gateway counts from zero.
  let runs: MirrorReport[] = [];
  for (let waited = 0; waited < bakeSeconds;) {
    const step = Math.min(interval, bakeSeconds - waited);
    await sleep(step * 1000);
    waited += step;
    runs = observeMirror(runs, await quick('Read the comparison').mirrorReport(candidate, id));
    rollout.mirror = mergeMirrorReports(id, runs);
  }
  await quick('Stop mirroring').routeToCandidate(candidate, 0);
  runs = observeMirror(runs, await quick('Read the final comparison').mirrorReport(candidate, id));
  const report = mergeMirrorReports(id, runs);
  rollout.mirror = report;
  const refusal = mirrorRefusal(report, mirror);
  if (refusal) {
    throw ApplicationFailure.create({
      type: FailureType.MirrorDisagreement,
      message: `Kept off: ${refusal} (${describeMirror(report)}).`,
      nonRetryable: true,
      details: [report],
    });
  }
  return report;
}
