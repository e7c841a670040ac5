/**
 * Bad input is refused with a message that says what to fix, as a non-retryable failure, before
 * anything is created: missing model, corrupt ONNX, replicas 0 or 10000, a duplicate name.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';

import { deployWorkflowId } from '../../src/shared/deploy-types';
import type { DeployInput } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { deploy, teardownSignal } from '../../workflows/deploy';
import { demoAssets, startControlWorker, testClient, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

describe('deploy workflow bad input', () => {
  const taskQueue = uniqueName('badinput-tq');
  let client: Client;
  let closeClient: () => Promise<void>;
  let worker: WorkerProcess;
  let assets: Awaited<ReturnType<typeof demoAssets>>;
  let scratch: string;

  before(async () => {
    assets = await demoAssets();
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-bad-'));
    ({ client, close: closeClient } = await testClient());
    worker = await startControlWorker(taskQueue);
  });

  after(async () => {
    await worker?.stop();
    await closeClient?.();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  /** Runs a deployment that must fail validation; returns the activity's own failure. */
  async function refused(extra: Partial<DeployInput>): Promise<ApplicationFailure> {
    const name = uniqueName('bad');
    const input: DeployInput = {
      name,
      modelPath: assets.modelPath,
      target: 'local',
      replicas: 1,
      ttlSeconds: 60,
      ...extra,
    };
    const handle = await client.workflow.start(deploy, {
      taskQueue,
      workflowId: deployWorkflowId(name),
      args: [input],
    });
    const err = await handle.result().then(
      () => assert.fail('the deployment should be refused'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'DeploymentFailed');
    assert.match(err.cause.message, /Nothing was created/);
    assert.ok(err.cause.cause instanceof ActivityFailure);
    const root = err.cause.cause.cause;
    assert.ok(root instanceof ApplicationFailure);
    assert.equal(root.nonRetryable, true, 'bad input is not retried');

    const events = (await handle.fetchHistory()).events ?? [];
    const activities = events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    assert.deepEqual(activities, ['validateDeployment'], 'nothing after validation ran');
    await assert.rejects(fs.access(new LocalLayout(name).dir), 'no deployment directory was created');
    return root;
  }

  test('a missing model file', async () => {
    const failure = await refused({ modelPath: path.join(scratch, 'nope.onnx') });
    assert.equal(failure.type, 'ModelNotFound');
    assert.match(failure.message, /nope\.onnx/);
  });

  test('a corrupt ONNX file', async () => {
    const corrupt = path.join(scratch, 'corrupt.onnx');
    await fs.writeFile(corrupt, Buffer.from('this is not a protobuf at all, just text pretending to be a model'));
    const failure = await refused({ modelPath: corrupt });
    assert.equal(failure.type, 'InvalidModel');
    assert.match(failure.message, /corrupt\.onnx/);
  });

  test('replicas 0 and 10000', async () => {
    for (const replicas of [0, 10000]) {
      const failure = await refused({ replicas });
      assert.equal(failure.type, 'InvalidDeployment');
      assert.match(failure.message, new RegExp(`replicas must be a whole number from 1 to 16 .*got ${replicas}`));
    }
  });

  test('an expected label the model does not have', async () => {
    const failure = await refused({ smoke: { samplePath: assets.samples[0]!.path, expectedLabel: 'giraffe' } });
    assert.equal(failure.type, 'InvalidDeployment');
    assert.match(failure.message, /"giraffe" is not one of the model's labels/);
  });

  test('a second deployment of a running name is refused', async () => {
    const name = uniqueName('dup');
    const input: DeployInput = { name, modelPath: assets.modelPath, target: 'local', replicas: 1, ttlSeconds: 300 };
    const first = await client.workflow.start(deploy, { taskQueue, workflowId: deployWorkflowId(name), args: [input] });
    await assert.rejects(
      client.workflow.start(deploy, { taskQueue, workflowId: deployWorkflowId(name), args: [input] }),
      WorkflowExecutionAlreadyStartedError,
    );
    await first.signal(teardownSignal, { reason: 'test done' });
    await first.result();
  });
});
