/**
 * The deploy workflow end to end on the local target, against the run's real Temporal dev server and a
 * real control worker process: replicas answer with the key and refuse without it, a wrong smoke answer
 * fails the workflow with teardown done, and nothing is ever left running.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, test } from 'node:test';

import { FailureType } from '../../src/shared/failure-types';
import type { DeployOutcome } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { statusQuery, teardownSignal } from '../../workflows/deploy';
import { expectWorkflowFailure } from '../helpers/failure-chain';
import { workflowSuite } from '../helpers/workflow-suite';
import { eventually, uniqueName } from '../helpers/workers';

describe('deploy workflow on the local target', () => {
  const suite = workflowSuite('deploy', { control: { metrics: true } });

  test('deploys replicas that answer with the key, refuse without it, and tears down completely', async () => {
    const name = uniqueName('full');
    const red = suite.sample('red');
    const handle = await suite.startDeploy(
      suite.deployInput({ name, replicas: 2, ttlSeconds: 300, smoke: { samplePath: red.path, expectedLabel: 'red' } }),
    );

    const serving = await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.stage === 'serving' ? s : undefined;
    }, 'the deployment to serve');
    assert.equal(serving.smoke?.predictions[0]?.label, 'red');
    assert.equal(serving.replicaUrls?.length, 2);
    assert.ok(serving.endpoint, 'an endpoint is reported');
    assert.ok(serving.apiKeyRef, 'the key location is reported');
    assert.deepEqual(
      serving.steps.map((s) => s.step),
      ['validate', 'provision', 'buildImage', 'deploy', 'waitForDeployment', 'smokeQuery', 'serve'],
    );

    const key = (await fs.readFile(serving.apiKeyRef, 'utf8')).trim();
    const mode = (await fs.stat(serving.apiKeyRef)).mode & 0o777;
    assert.equal(mode, 0o600, 'the key file is readable by its owner only');
    const image = await fs.readFile(red.path);
    for (const url of [...(serving.replicaUrls ?? []), serving.endpoint]) {
      const ok = await fetch(`${url}/score`, {
        method: 'POST',
        body: image,
        headers: { authorization: `Bearer ${key}` },
      });
      const body = (await ok.json()) as { predictions: Array<{ label: string; score: number }> };
      assert.equal(ok.status, 200, `${url} answers with the key`);
      assert.equal(body.predictions[0]?.label, 'red');
      const anonymous = await fetch(`${url}/score`, { method: 'POST', body: image });
      await anonymous.arrayBuffer();
      assert.equal(anonymous.status, 401, `${url} refuses without the key`);
      const wrongKey = await fetch(`${url}/score`, {
        method: 'POST',
        body: image,
        headers: { authorization: 'Bearer nope' },
      });
      await wrongKey.arrayBuffer();
      assert.equal(wrongKey.status, 401, `${url} refuses a wrong key`);
    }

    // The key never travels through Temporal.
    const history = JSON.stringify(await handle.fetchHistory());
    assert.ok(!history.includes(key), 'the API key does not appear in the workflow history');

    const marker = new LocalLayout(name).processMarker;
    assert.equal((await findProcessesByMarker(marker)).length, 3, 'two replicas and the gateway run');

    await handle.signal(teardownSignal, { reason: 'test' });
    const outcome: DeployOutcome = await handle.result();
    assert.equal(outcome.endedBy, 'signal');
    assert.equal(outcome.stage, 'done');
    assert.ok(
      outcome.teardownRemoved!.some((r) => r.startsWith('process ')),
      'teardown stopped processes',
    );
    assert.deepEqual(await findProcessesByMarker(marker), [], 'no process is left');
    await assert.rejects(fs.access(new LocalLayout(name).dir), 'the deployment directory is gone');

    const metrics = await suite.metrics('control');
    assert.match(metrics, /^inferctl_deployments_served_total\{[^}]*target="local"[^}]*\} [1-9]/m);
    assert.match(metrics, /^inferctl_deployments_torn_down_total\{[^}]*target="local"[^}]*\} [1-9]/m);
  });

  test('a TTL that runs out tears the deployment down by itself', async () => {
    const name = uniqueName('ttl');
    const handle = await suite.startDeploy(suite.deployInput({ name, ttlSeconds: 2 }));
    const outcome: DeployOutcome = await handle.result();
    assert.equal(outcome.endedBy, 'ttl');
    const serve = outcome.steps.find((s) => s.step === 'serve');
    assert.ok(serve && serve.durationMs! >= 1900, `served about the TTL (${serve?.durationMs} ms)`);
    assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).processMarker), []);
  });

  test('a wrong smoke answer fails the workflow, after teardown, with the reason', async () => {
    const name = uniqueName('smoke');
    const handle = await suite.startDeploy(
      suite.deployInput({
        name,
        ttlSeconds: 300,
        smoke: { samplePath: suite.sample('red').path, expectedLabel: 'blue' },
      }),
    );
    const { workflow, activity, root } = await expectWorkflowFailure(handle);
    assert.ok(workflow && activity, 'the workflow failed with the failure of an activity');
    assert.equal(workflow.type, FailureType.DeploymentFailed);
    assert.match(workflow.message, /expected top label "blue" but the model answered "red"/);
    assert.match(workflow.message, /Teardown completed/);
    assert.equal(workflow.cause, activity, 'the workflow failure wraps the activity failure');
    assert.equal(activity.activityType, 'smokeQuery');
    assert.equal(activity.cause, root, "the activity failure wraps the smoke query's own");
    assert.equal(root.type, FailureType.SmokeQueryMismatch);

    const events = (await handle.fetchHistory()).events ?? [];
    const scheduledId = (type: string) =>
      events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type)?.eventId;
    const smokeId = scheduledId('smokeQuery');
    assert.ok(smokeId, 'the smoke query ran');
    const smokeStarted = events.find(
      (e) => e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === smokeId.toString(),
    );
    assert.equal(smokeStarted?.activityTaskStartedEventAttributes?.attempt, 1, 'a mismatch is not retried');
    assert.ok(scheduledId('teardown'), 'teardown ran');
    assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).processMarker), []);
  });
});
