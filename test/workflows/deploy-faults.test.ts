/**
 * Teardown is guaranteed: on cancellation while waiting for readiness, and after the control worker is
 * SIGKILLed mid-deploy (the workflow resumes on a new worker). Real processes, real kills.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { WorkflowFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';

import { deployWorkflowId } from '../../src/shared/deploy-types';
import type { DeployInput, DeployOutcome } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { deploy, statusQuery } from '../../workflows/deploy';
import { recordReliability } from '../helpers/reliability';
import { demoAssets, eventually, startControlWorker, testClient, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

describe('deploy workflow faults', () => {
  const taskQueue = uniqueName('faults-tq');
  let client: Client;
  let closeClient: () => Promise<void>;
  const workers: WorkerProcess[] = [];
  let assets: Awaited<ReturnType<typeof demoAssets>>;

  before(async () => {
    assets = await demoAssets();
    ({ client, close: closeClient } = await testClient());
  });

  after(async () => {
    for (const w of workers) await w.stop();
    await closeClient?.();
  });

  function input(name: string, extra: Partial<DeployInput> = {}): DeployInput {
    return { name, modelPath: assets.modelPath, target: 'local', replicas: 2, ttlSeconds: 2, ...extra };
  }

  test('cancel while waiting for readiness: teardown runs and stops the hung replicas', async () => {
    workers.push(await startControlWorker(taskQueue));
    const name = uniqueName('cancel');
    const marker = new LocalLayout(name).processMarker;
    const handle = await client.workflow.start(deploy, {
      taskQueue,
      workflowId: deployWorkflowId(name),
      args: [input(name, { ttlSeconds: 300 })],
    });

    // Freeze every process of the deployment the moment it appears: the replicas hang before they
    // listen, so the deployment can never become ready.
    const frozen = new Set<number>();
    await eventually(
      async () => {
        for (const pid of await findProcessesByMarker(marker)) {
          if (!frozen.has(pid)) {
            process.kill(pid, 'SIGSTOP');
            frozen.add(pid);
          }
        }
        return frozen.size >= 3 ? true : undefined;
      },
      'two replicas and the gateway to start',
      30_000,
    );

    const waiting = await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.stage === 'waiting' ? s : undefined;
    }, 'the waiting stage');
    assert.equal(waiting.endpoint, undefined, 'not ready while frozen');

    await handle.cancel();
    const err = await handle.result().then(
      () => assert.fail('a cancelled deployment does not complete'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof CancelledFailure, `cancelled, got ${String(err.cause)}`);

    const events = (await handle.fetchHistory()).events ?? [];
    const teardown = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'teardown');
    assert.ok(teardown, 'teardown was scheduled after the cancellation');
    assert.ok(
      events.some(
        (e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === teardown.eventId?.toString(),
      ),
      'teardown completed',
    );
    const leftover = await findProcessesByMarker(marker);
    recordReliability({
      test: 'deploy: replicas hung (SIGSTOP), workflow cancelled while waiting',
      faultsInjected: frozen.size + 1,
      survived: leftover.length === 0,
      resourcesLeaked: leftover.length,
    });
    assert.deepEqual(leftover, [], 'the frozen processes were killed');
  });

  test('control worker SIGKILLed mid-deploy: a new worker finishes the deployment and its teardown', async () => {
    const first = await startControlWorker(taskQueue);
    workers.push(first);
    const name = uniqueName('crash');
    const marker = new LocalLayout(name).processMarker;
    const handle = await client.workflow.start(deploy, {
      taskQueue,
      workflowId: deployWorkflowId(name),
      args: [input(name, { ttlSeconds: 2, timings: { heartbeatTimeoutSeconds: 3 } })],
    });

    // Kill the worker as soon as it has started replicas: provisioning and the build are done, the
    // deployment is mid-flight, and the replicas (detached processes) outlive the worker.
    await eventually(async () => ((await findProcessesByMarker(marker)).length > 0 ? true : undefined), 'replicas');
    await first.kill();
    assert.equal(first.child.signalCode, 'SIGKILL');

    workers.push(await startControlWorker(taskQueue));
    const outcome: DeployOutcome = await handle.result();
    assert.equal(outcome.stage, 'done');
    assert.equal(outcome.endedBy, 'ttl');
    assert.ok(
      outcome.steps.some((s) => s.step === 'teardown' && s.ok),
      'teardown ran',
    );
    const leftover = await findProcessesByMarker(marker);
    recordReliability({
      test: 'deploy: control worker SIGKILLed mid-deploy',
      faultsInjected: 1,
      survived: outcome.stage === 'done',
      resourcesLeaked: leftover.length,
    });
    assert.deepEqual(leftover, [], 'no process is left');
  });
});
