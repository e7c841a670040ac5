/**
 * Determinism guard: the recorded histories (test/fixtures/histories, made by `npm run record-histories`) of
 * every workflow type must replay against the current workflow code: a local deploy, a deploy steered by
 * Updates (extend, scale, rollout, an idle TTL), a deploy that scales to zero and wakes, a deploy whose
 * rollout was rolled back, the run a deploy continued as new into (it starts from the carried state), an
 * aks deploy, the
 * janitor, a batch job and a schedule-started one. deploy.json was recorded before Updates and idle TTLs
 * existed: it proves that a deployment started on older code keeps replaying (the new wait is behind
 * patched()). A change that alters the commands a workflow issues fails here unless it is guarded with
 * patched(); the negative case proves it: a deploy workflow with two steps swapped does not replay the
 * recorded deploy. This is also what makes moving a pinned deployment to a newer worker version safe
 * (README, Upgrading workers with deployments in flight).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';

import { workflowBundle } from '../../worker/workflow-bundle';

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'histories');

function recordedHistory(file: string): ReturnType<typeof historyFromJSON> {
  return historyFromJSON(JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8')));
}

function activityNames(file: string): string[] {
  return (recordedHistory(file).events ?? []).flatMap(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
  );
}

test('recorded histories of every workflow type replay against the current workflows', async () => {
  const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
  assert.deepEqual(files.sort(), [
    'batch-scheduled.json',
    'batch-score.json',
    'deploy-aks.json',
    'deploy-autoscale.json',
    'deploy-budget.json',
    'deploy-continued.json',
    'deploy-rollback.json',
    'deploy-scale-to-zero.json',
    'deploy-updates.json',
    'deploy.json',
    'janitor.json',
  ]);
  const steered = recordedHistory('deploy-updates.json').events ?? [];
  assert.equal(
    steered.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length,
    3,
    'the Updates recording holds its extend, scale and rollout',
  );
  assert.ok(
    steered.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'waitUntilIdle'),
    'and its idle watch',
  );
  assert.ok(
    steered.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'bakeCandidate'),
    'and its canary bake',
  );
  assert.ok(
    JSON.stringify(recordedHistory('batch-scheduled.json').events?.[0]).includes('TemporalScheduledStartTime'),
    'the scheduled batch was started by a Schedule',
  );
  assert.ok(activityNames('batch-scheduled.json').includes('scoreShard'));
  const aksInput =
    recordedHistory('deploy-aks.json').events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
  assert.equal(
    (JSON.parse(Buffer.from(aksInput ?? []).toString()) as { target?: string }).target,
    'aks',
    'the aks recording deploys to aks',
  );
  assert.ok(activityNames('deploy-aks.json').includes('teardown'));
  assert.ok(activityNames('janitor.json').includes('deleteOrphan'), 'the janitor recording deletes something');
  assert.ok(activityNames('deploy-rollback.json').includes('removeCandidate'), 'the rollback removes its candidate');
  const continued = recordedHistory('deploy-continued.json').events?.[0]?.workflowExecutionStartedEventAttributes;
  assert.ok(continued?.continuedExecutionRunId, 'deploy-continued.json is a run that a deployment continued as new');
  assert.equal(continued.input?.payloads?.length, 2, 'started with its input and the carried state');
  assert.deepEqual(
    activityNames('deploy-continued.json'),
    ['waitUntilIdle', 'deploy', 'waitForDeployment', 'teardown'],
    'it went straight back to serving (no second provision), scaled, and tore down',
  );
  const zero = activityNames('deploy-scale-to-zero.json');
  assert.ok(
    zero.includes('waitUntilQuiet') && zero.includes('waitForDemand') && zero.filter((a) => a === 'deploy').length >= 4,
    'the scale-to-zero recording goes to zero, wakes and goes to zero again',
  );
  const budget = recordedHistory('deploy-budget.json').events ?? [];
  assert.ok(
    budget.some((e) => e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.cost) &&
      budget.some((e) => e.timerStartedEventAttributes),
    'the budget recording timed its budget and wrote its cost to the memo',
  );
  const autoscaled = activityNames('deploy-autoscale.json');
  assert.ok(
    autoscaled.includes('readLoad') && autoscaled.filter((a) => a === 'deploy').length >= 4,
    'the autoscale recording reads the load, scales up and down, and takes new bounds',
  );
  for (const file of files) {
    const history = recordedHistory(file);
    assert.ok((history.events?.length ?? 0) > 10, `${file} is a whole history`);
    await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, file);
  }
});

test('the recorded deploy history does not replay against a deploy workflow whose commands changed order', async () => {
  const history = recordedHistory('deploy.json');
  const scheduled = (history.events ?? []).flatMap(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
  );
  assert.deepEqual(scheduled.slice(0, 2), ['validateDeployment', 'provision'], 'the recording validates first');

  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../fixtures/workflows/deploy-reordered'),
    logger: new DefaultLogger('WARN'),
  });
  await assert.rejects(
    Worker.runReplayHistory({ workflowBundle: { code } }, history, 'deploy.json (steps swapped)'),
    (err: unknown) => {
      assert.ok(err instanceof DeterminismViolationError, `a DeterminismViolationError, got ${String(err)}`);
      assert.match(err.message, /validateDeployment.*provision/, 'the swapped steps are what it names');
      return true;
    },
  );
});
