/**
 * A long-lived deployment continues as new before its history grows too long (workflows/deploy/
 * continue-as-new.ts), on the run's real dev server with real control workers and a real local deployment.
 * Started with a small history bound, it receives extend and scale Updates until it has continued as new at
 * least twice; every run after the first goes straight back to serving (no second provision), keeps its
 * endpoint, key, replicas, versions and TTL deadline, watches the idle TTL again, and stays on the worker
 * version it started on although a newer version has become current. Its TTL then ends in the last run,
 * which tears it down: the endpoint and every replica stop answering.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, test } from 'node:test';

import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

import type { DeployOutcome, DeployStatus } from '../../src/shared/deploy-types';
import type { deploy } from '../../workflows/deploy';
import { extendUpdate, scaleUpdate, statusQuery } from '../../workflows/deploy';
import { workflowSuite } from '../helpers/workflow-suite';
import type { WorkerProcess } from '../helpers/workers';
import { eventually, uniqueName } from '../helpers/workers';

const { VersioningBehavior } = temporal.api.enums.v1;
type DeployHandle = WorkflowHandle<typeof deploy>;

/** The build id a control worker printed on its startup line. */
function buildIdOf(worker: WorkerProcess): string {
  const m = /build id (\S+) \(/.exec(worker.output());
  assert.ok(m, `the startup line names the version:\n${worker.output()}`);
  return m[1]!;
}

async function score(url: string, key: string, image: Buffer): Promise<number> {
  const res = await fetch(`${url}/score`, { method: 'POST', body: image, headers: { authorization: `Bearer ${key}` } });
  await res.arrayBuffer();
  return res.status;
}

/** The activity types a run scheduled, in order. */
async function activitiesOf(handle: DeployHandle): Promise<string[]> {
  return ((await handle.fetchHistory()).events ?? []).flatMap(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
  );
}

describe('a long-lived deployment continues as new', () => {
  const suite = workflowSuite('deploy-can', { control: false });

  test('Updates past the history bound: it continues as new, keeps serving on its version, then tears down', async () => {
    const a = await suite.startControlWorker();
    const name = uniqueName('can');
    const red = suite.sample('red');
    const image = await fs.readFile(red.path);
    const handle = await suite.startDeploy(
      suite.deployInput({
        name,
        ttlSeconds: 60,
        idleTtlSeconds: 3600,
        historyEventsPerRun: 60,
        smoke: { samplePath: red.path, expectedLabel: 'red' },
      }),
    );
    const { runId: firstRunId } = await handle.describe();
    const first = await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.stage === 'serving' ? s : undefined;
    }, 'the deployment to serve');
    const key = (await fs.readFile(first.apiKeyRef!, 'utf8')).trim();
    assert.equal(await score(first.endpoint!, key, image), 200);
    const firstRun = suite.client.workflow.getHandle<typeof deploy>(handle.workflowId, firstRunId);
    assert.equal(
      (await firstRun.describe()).raw.workflowExecutionInfo?.versioningInfo?.deploymentVersion?.buildId,
      buildIdOf(a),
    );

    // A newer worker version becomes current: new deployments would go there, this pinned one must not.
    const b = await suite.startControlWorker({ args: ['--build-id', `${buildIdOf(a)}-b`] });
    assert.notEqual(buildIdOf(b), buildIdOf(a));

    const runs = [firstRunId];
    let replicas = 1;
    let expiresAt = first.expiresAt!;
    for (let i = 0; runs.length < 3; i++) {
      assert.ok(i < 60, `continued as new twice within 60 Updates (runs: ${runs.join(', ')})`);
      if (i % 4 === 3) {
        replicas = replicas === 1 ? 2 : 1;
        const scaled = await handle.executeUpdate(scaleUpdate, { args: [{ replicas }] });
        assert.equal(scaled.endpoint, first.endpoint, 'scaling keeps the endpoint');
      } else {
        // Never shortened: it ends 60 s after serving began or 30 s after the last extend, whichever is later.
        expiresAt = (await handle.executeUpdate(extendUpdate, { args: [{ seconds: 30 }] })).expiresAt!;
      }
      const { runId } = await handle.describe();
      if (runId !== runs.at(-1)) runs.push(runId);
    }

    // The first run ended by continuing as new, with the carried state in the next run's input.
    const firstEvents = (await firstRun.fetchHistory()).events ?? [];
    const continued = firstEvents.at(-1)?.workflowExecutionContinuedAsNewEventAttributes;
    assert.ok(continued, 'the first run ended by continuing as new');
    assert.equal(continued.newExecutionRunId, runs[1]);
    assert.ok(firstEvents.length < 200, `the first run's history stayed short (${firstEvents.length} events)`);

    // The current run did not provision again; it watches the idle TTL and the gateway again.
    const current = suite.client.workflow.getHandle<typeof deploy>(handle.workflowId, runs.at(-1));
    // Read once its first workflow task has completed (the run may have just begun when the loop saw it).
    const scheduled = await eventually(async () => {
      const names = await activitiesOf(current);
      return names.includes('waitUntilIdle') && names.includes('watchGateway') ? names : undefined;
    }, 'the continued run to watch the idle TTL and the gateway again');
    for (const step of ['validateDeployment', 'provision', 'buildImage', 'smokeQuery']) {
      assert.ok(!scheduled.includes(step), `a continued run does not ${step} (${scheduled.join(', ')})`);
    }

    // It serves what ran before, at the same address with the same key, with its state carried.
    const now: DeployStatus = await handle.query(statusQuery);
    assert.equal(now.stage, 'serving');
    assert.equal(now.endpoint, first.endpoint);
    assert.equal(now.apiKeyRef, first.apiKeyRef);
    assert.equal(now.imageRef, first.imageRef);
    assert.equal(now.replicas, replicas);
    assert.equal(now.replicaUrls?.length, replicas);
    assert.deepEqual(now.versions, first.versions);
    assert.equal(now.expiresAt, expiresAt, 'the TTL deadline carried');
    assert.equal(now.idleTtlSeconds, 3600);
    assert.deepEqual(
      now.steps.slice(0, 7).map((s) => s.step),
      ['validate', 'provision', 'buildImage', 'deploy', 'waitForDeployment', 'smokeQuery', 'serve'],
      'the steps up to serving are kept',
    );
    assert.ok(
      now.steps.some((s) => s.step === 'serve' && /continues as new/.test(s.detail ?? '')),
      'a serve step says the run continued as new',
    );
    assert.equal(await score(now.endpoint!, key, image), 200, 'the endpoint answers with the same key');
    for (const url of now.replicaUrls) assert.equal(await score(url, key, image), 200, `${url} answers`);

    // Pinned: every run stays on A although B is current.
    for (const runId of runs) {
      const info = (await suite.client.workflow.getHandle(handle.workflowId, runId).describe()).raw
        .workflowExecutionInfo?.versioningInfo;
      assert.equal(info?.deploymentVersion?.buildId, buildIdOf(a), `run ${runId} on version A`);
      assert.equal(info?.behavior, VersioningBehavior.VERSIONING_BEHAVIOR_PINNED);
    }

    // The carried deadline ends the last run by its TTL, and teardown leaves nothing answering.
    const outcome: DeployOutcome = await handle.result();
    assert.equal(outcome.endedBy, 'ttl');
    assert.ok(Date.now() >= Date.parse(expiresAt), 'not before the carried deadline');
    assert.ok(
      outcome.teardownRemoved?.some((r) => r.startsWith('process ')),
      `teardown removed the replicas: ${outcome.teardownRemoved?.join(', ')}`,
    );
    const { runId: lastRun } = await handle.describe();
    assert.equal(lastRun, runs.at(-1), 'no further run after teardown');
    for (const url of [now.endpoint!, ...now.replicaUrls]) {
      await assert.rejects(score(url, key, image), `${url} no longer answers`);
    }
  });
});
