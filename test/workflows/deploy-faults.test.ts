/**
 * Teardown is guaranteed: on cancellation while waiting for readiness, and after the control worker is
 * SIGKILLed mid-deploy (the workflow resumes on a new worker). Real processes, real kills.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { CancelledFailure } from '@temporalio/common';

import type { DeployOutcome } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { statusQuery } from '../../workflows/deploy';
import { expectWorkflowFailedError } from '../helpers/failure-chain';
import { recordReliability } from '../helpers/reliability';
import { workflowSuite } from '../helpers/workflow-suite';
import { eventually, uniqueName } from '../helpers/workers';

describe('deploy workflow faults', () => {
  // Each test starts its own control workers, since one of them kills its worker.
  const suite = workflowSuite('faults', { control: false });

  test('cancel while waiting for readiness: teardown runs and stops the hung replicas', async () => {
    await suite.startControlWorker();
    const name = uniqueName('cancel');
    const marker = new LocalLayout(name).processMarker;
    const handle = await suite.startDeploy(suite.deployInput({ name, replicas: 2, ttlSeconds: 300 }));

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
    const err = await expectWorkflowFailedError(handle, 'a cancelled deployment');
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
    const first = await suite.startControlWorker();
    const name = uniqueName('crash');
    const marker = new LocalLayout(name).processMarker;
    const handle = await suite.startDeploy(
      suite.deployInput({ name, replicas: 2, ttlSeconds: 2, timings: { heartbeatTimeoutSeconds: 3 } }),
    );

    // Kill the worker as soon as it has started replicas: provisioning and the build are done, the
    // deployment is mid-flight, and the replicas (detached processes) outlive the worker.
    await eventually(async () => ((await findProcessesByMarker(marker)).length > 0 ? true : undefined), 'replicas');
    await first.kill();
    assert.equal(first.child.signalCode, 'SIGKILL');

    await suite.startControlWorker();
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
