/**
 * Determinism guard: the recorded histories of a deploy, a deploy steered by Updates (extend, scale,
 * rollout, an idle TTL) and a batch job (test/fixtures/histories, made by `npm run record-histories`) must replay
 * against the current workflow code. deploy.json was recorded before Updates and idle TTLs existed: it
 * proves that a deployment started on older code keeps replaying (the new wait is behind patched()). A change that
 * alters the commands a workflow issues fails here unless it is guarded with patched(); the negative
 * case proves it: a deploy workflow with two steps swapped does not replay the recorded deploy.
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

test('recorded deploy and batch histories replay against the current workflows', async () => {
  const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
  assert.deepEqual(files.sort(), ['batch-score.json', 'deploy-updates.json', 'deploy.json']);
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
  for (const file of files) {
    const history = recordedHistory(file);
    assert.ok((history.events?.length ?? 0) > 20, `${file} is a whole history`);
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
