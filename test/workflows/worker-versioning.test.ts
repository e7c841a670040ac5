/**
 * Worker Versioning on the run's real dev server: a deployment started on worker version A stays pinned to
 * A after a worker of version B starts and makes itself current; a new deployment goes to B; with A
 * stopped, B does not take the pinned deployment's work (it waits for its version); an operator override
 * moves it to B, which then serves and tears it down. Both workers run this checkout's code, B under an
 * explicit `--build-id` (what CI sets for a new build); which worker did each workflow task is read from
 * the history (the task's identity, `pid@host`, and version) and from describe()'s versioning info.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import type { deploy } from '../../workflows/deploy';
import { attachUpdate, extendTtlSignal, statusQuery, teardownUpdate } from '../../workflows/deploy';
import { workflowSuite } from '../helpers/workflow-suite';
import type { WorkerProcess } from '../helpers/workers';
import { eventually, uniqueName } from '../helpers/workers';

const { VersioningBehavior, WorkerDeploymentVersionStatus } = temporal.api.enums.v1;
const { PinnedOverrideBehavior } = temporal.api.workflow.v1.VersioningOverride;
type DeployHandle = WorkflowHandle<typeof deploy>;

/** The build id and standing a control worker printed on its startup line. */
function startupVersion(worker: WorkerProcess): { buildId: string; current: string } {
  const m = /build id (\S+) \([^:]+: ([^)]+)\)/.exec(worker.output());
  assert.ok(m, `the startup line names the version:\n${worker.output()}`);
  return { buildId: m[1]!, current: m[2]! };
}

/** Identity (`pid@host`) of every worker that completed one of the workflow's tasks, from event `after` on. */
async function taskWorkers(handle: DeployHandle, after = 0): Promise<Array<{ identity: string; buildId?: string }>> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events
    .filter((e) => Number(e.eventId) > after && e.workflowTaskCompletedEventAttributes)
    .map((e) => ({
      identity: e.workflowTaskCompletedEventAttributes!.identity ?? '',
      buildId:
        e.workflowTaskCompletedEventAttributes!.deploymentVersion?.buildId ||
        // the older string form, `<deployment>.<build id>` (task-queue names have no dot)
        e.workflowTaskCompletedEventAttributes!.workerDeploymentVersion?.split('.').slice(1).join('.') ||
        undefined,
    }));
}

async function lastEventId(handle: DeployHandle): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  return Number(events.at(-1)?.eventId ?? 0);
}

describe('worker versioning', () => {
  const suite = workflowSuite('versioning', { control: false });

  // A workflow task nobody takes would wait for ever: bounded, so a regression fails instead of hanging.
  const timeout = 240_000;
  test(
    'a deployment stays on the version it started on; new ones go to the new current version',
    { timeout },
    async (t) => {
      const namespace = suite.client.options.namespace;
      const service = suite.client.workflowService;
      const deploymentName = suite.taskQueue; // the default: the worker's task queue

      const a = await suite.startControlWorker();
      const versionA = startupVersion(a);
      assert.match(versionA.buildId, /^\d+\.\d+\.\d+-[0-9a-f]{12}$/, 'package version + bundle hash');
      assert.equal(versionA.current, 'made current');
      const pidA = `${a.child.pid}@`;

      const nameA = uniqueName('on-a');
      const inputA = suite.deployInput({ name: nameA, ttlSeconds: null });
      const onA = await suite.startDeploy(inputA);
      await eventually(async () => ((await onA.query(statusQuery)).stage === 'serving' ? true : undefined), 'A serves');
      const described = (await onA.describe()).raw.workflowExecutionInfo?.versioningInfo;
      assert.equal(described?.behavior, VersioningBehavior.VERSIONING_BEHAVIOR_PINNED, 'deploy is pinned');
      assert.equal(described?.deploymentVersion?.buildId, versionA.buildId);

      // Version B: same code, another build id (as a new build of changed workflows would have).
      const buildIdB = `${versionA.buildId}-b`;
      const b = await suite.startControlWorker({ args: ['--build-id', buildIdB] });
      assert.deepEqual(startupVersion(b), { buildId: buildIdB, current: 'made current' });
      const pidB = `${b.child.pid}@`;
      const routing = (await service.describeWorkerDeployment({ namespace, deploymentName })).workerDeploymentInfo
        ?.routingConfig;
      assert.equal(routing?.currentDeploymentVersion?.buildId, buildIdB, 'B is the current version');
      const statusA = await eventually(async () => {
        const info = (
          await service.describeWorkerDeploymentVersion({
            namespace,
            deploymentVersion: { deploymentName, buildId: versionA.buildId },
          })
        ).workerDeploymentVersionInfo;
        return info?.status === WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING
          ? info.status
          : undefined;
      }, 'A to be draining (it has a pinned deployment open)');
      assert.equal(statusA, WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING);

      // The in-flight deployment's Update is handled by A, not by the current version B.
      const sinceB = await lastEventId(onA);
      const attached = await onA.executeUpdate(attachUpdate, { args: [inputA] });
      assert.equal(attached.stage, 'serving', 'the attach Update (a deploy of the same spec) answered');
      const afterB = await taskWorkers(onA, sinceB);
      assert.ok(afterB.length > 0, 'the Update made workflow tasks');
      assert.deepEqual(
        afterB.filter((w) => !w.identity.startsWith(pidA) || w.buildId !== versionA.buildId),
        [],
        `every task of the pinned deployment since B started was A's (${pidA}, ${versionA.buildId})`,
      );

      // A new deployment starts on B.
      const nameB = uniqueName('on-b');
      const onB = await suite.startDeploy(suite.deployInput({ name: nameB, ttlSeconds: null }));
      await eventually(async () => ((await onB.query(statusQuery)).stage === 'serving' ? true : undefined), 'B serves');
      assert.equal(
        (await onB.describe()).raw.workflowExecutionInfo?.versioningInfo?.deploymentVersion?.buildId,
        buildIdB,
      );
      const tasksB = await taskWorkers(onB);
      assert.ok(tasksB.length > 0 && tasksB.every((w) => w.identity.startsWith(pidB) && w.buildId === buildIdB));

      // A stops. New work for the pinned deployment waits for A: B, polling the same queue, does not take it.
      await a.stop();
      const sinceStop = await lastEventId(onA);
      await onA.signal(extendTtlSignal, { seconds: 60 });
      await delay(5000);
      const pending = (await onA.describe()).raw.pendingWorkflowTask;
      assert.ok(pending, 'its workflow task is pending');
      assert.deepEqual(await taskWorkers(onA, sinceStop), [], 'no worker completed a task of it while A was gone');
      assert.equal((await onB.query(statusQuery)).stage, 'serving', 'while B serves its own deployment');

      // Retiring A with a deployment still on it: pin the workflow to B (its code replays A's histories:
      // the replay test), and B carries on with it.
      await service.updateWorkflowExecutionOptions({
        namespace,
        workflowExecution: { workflowId: onA.workflowId },
        workflowExecutionOptions: {
          versioningOverride: {
            pinned: {
              behavior: PinnedOverrideBehavior.PINNED_OVERRIDE_BEHAVIOR_PINNED,
              version: { deploymentName, buildId: buildIdB },
            },
          },
        },
        updateMask: { paths: ['versioning_override'] },
      });
      const { removed } = await onA.executeUpdate(teardownUpdate, { args: [{ reason: 'retiring A' }] });
      assert.ok(removed.length > 0, 'teardown removed the replicas');
      await onA.result();
      const moved = await taskWorkers(onA, sinceStop);
      assert.ok(moved.length > 0 && moved.every((w) => w.identity.startsWith(pidB)), 'B ran it after the override');
      assert.deepEqual(await findProcessesByMarker(new LocalLayout(nameA).processMarker), [], 'nothing of it is left');
      t.diagnostic(
        `A ${versionA.buildId}: ${afterB.length} task(s) after B became current; B ${buildIdB}: ${moved.length} after the override`,
      );

      await onB.executeUpdate(teardownUpdate, { args: [{}] });
      await onB.result();
    },
  );
});
