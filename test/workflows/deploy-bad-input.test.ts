/**
 * Bad input is refused with a message that says what to fix, as a non-retryable failure, before
 * anything is created: missing model, corrupt ONNX, replicas 0 or 10000, a duplicate name.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';

import type { DeployInput } from '../../src/shared/deploy-types';
import { FailureType } from '../../src/shared/failure-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { teardownSignal } from '../../workflows/deploy';
import { expectWorkflowFailure } from '../helpers/failure-chain';
import { workflowSuite } from '../helpers/workflow-suite';
import { uniqueName } from '../helpers/workers';

describe('deploy workflow bad input', () => {
  const suite = workflowSuite('badinput');

  /** Runs a deployment that must fail validation; returns the activity's own failure. */
  async function refused(extra: Partial<DeployInput>): Promise<ApplicationFailure> {
    const input = suite.deployInput({ name: uniqueName('bad'), ...extra });
    const handle = await suite.startDeploy(input);
    const { workflow, activity, root } = await expectWorkflowFailure(handle, 'the deployment');
    assert.ok(workflow && activity, 'the workflow failed with the failure of an activity');
    assert.equal(workflow.type, FailureType.DeploymentFailed);
    assert.match(workflow.message, /Nothing was created/);
    assert.equal(workflow.cause, activity, 'the workflow failure wraps the activity failure');
    assert.equal(activity.activityType, 'validateDeployment');
    assert.equal(activity.cause, root, "the activity failure wraps validation's own");
    assert.equal(root.nonRetryable, true, 'bad input is not retried');

    const events = (await handle.fetchHistory()).events ?? [];
    const activities = events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    assert.deepEqual(activities, ['validateDeployment'], 'nothing after validation ran');
    await assert.rejects(fs.access(new LocalLayout(input.name).dir), 'no deployment directory was created');
    return root;
  }

  test('a missing model file', async () => {
    const failure = await refused({ modelPath: path.join(suite.scratch, 'nope.onnx') });
    assert.equal(failure.type, FailureType.ModelNotFound);
    assert.match(failure.message, /nope\.onnx/);
  });

  test('a corrupt ONNX file', async () => {
    const corrupt = path.join(suite.scratch, 'corrupt.onnx');
    await fs.writeFile(corrupt, Buffer.from('this is not a protobuf at all, just text pretending to be a model'));
    const failure = await refused({ modelPath: corrupt });
    assert.equal(failure.type, FailureType.InvalidModel);
    assert.match(failure.message, /corrupt\.onnx/);
  });

  test('replicas 0 and 10000', async () => {
    for (const replicas of [0, 10000]) {
      const failure = await refused({ replicas });
      assert.equal(failure.type, FailureType.InvalidDeployment);
      assert.match(failure.message, new RegExp(`replicas must be a whole number from 1 to 16 .*got ${replicas}`));
    }
  });

  test('an expected label the model does not have', async () => {
    const failure = await refused({ smoke: { samplePath: suite.assets.samples[0]!.path, expectedLabel: 'giraffe' } });
    assert.equal(failure.type, FailureType.InvalidDeployment);
    assert.match(failure.message, /"giraffe" is not one of the model's labels/);
  });

  test('a second deployment of a running name is refused', async () => {
    const name = uniqueName('dup');
    const input = suite.deployInput({ name, ttlSeconds: 300 });
    const first = await suite.startDeploy(input);
    await assert.rejects(suite.startDeploy(input), WorkflowExecutionAlreadyStartedError);
    await first.signal(teardownSignal, { reason: 'test done' });
    await first.result();
  });
});
