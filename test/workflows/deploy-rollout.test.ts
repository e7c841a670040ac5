/**
 * `rollout` on the local target, against the run's real dev server and a real control worker: a good new
 * version replaces the old one under a steady load loop with no failed request, and a bad one (a wrong
 * smoke answer, or errors on real traffic during the bake) is rolled back with the old version serving
 * throughout. Versions and their digests are
 * read from the replicas themselves (/readyz), not only from the workflow's status.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';

import type { DeployStatus } from '../../src/shared/deploy-types';
import { FailureType } from '../../src/shared/failure-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import type { deploy } from '../../workflows/deploy';
import { rolloutUpdate, statusQuery, teardownUpdate } from '../../workflows/deploy';
import { buildGreenFailingCnn } from '../helpers/failing-model';
import { workflowSuite } from '../helpers/workflow-suite';
import { eventually, uniqueName } from '../helpers/workers';

type DeployHandle = WorkflowHandle<typeof deploy>;

async function serving(handle: DeployHandle): Promise<DeployStatus> {
  return eventually(async () => {
    const s = await handle.query(statusQuery);
    return s.stage === 'serving' ? s : undefined;
  }, 'the deployment to serve');
}

/** Requests through the endpoint, two at a time, until stopped; every answer's status and top label. */
function loadLoop(endpoint: string, key: string, image: Buffer) {
  const answers: Array<{ status: number; label?: string }> = [];
  let running = true;
  const worker = async () => {
    while (running) {
      try {
        const res = await fetch(`${endpoint}/score`, {
          method: 'POST',
          body: image,
          headers: { authorization: `Bearer ${key}` },
        });
        const body = (await res.json()) as { predictions?: Array<{ label: string }> };
        answers.push({ status: res.status, label: body.predictions?.[0]?.label });
      } catch (err) {
        answers.push({ status: 0, label: String(err) });
      }
    }
  };
  const done = Promise.all([worker(), worker()]);
  return {
    answers,
    stop: async () => {
      running = false;
      await done;
      return answers;
    },
  };
}

/** The model digest each serving replica reports on /readyz. */
async function servedDigests(status: DeployStatus): Promise<string[]> {
  return Promise.all(
    (status.replicaUrls ?? []).map(
      async (url) => ((await (await fetch(`${url}/readyz`)).json()) as { modelDigest: string }).modelDigest,
    ),
  );
}

describe('rollout on the local target', () => {
  const suite = workflowSuite('deploy-rollout');

  async function deployed(name: string) {
    const red = suite.sample('red');
    const handle = await suite.startDeploy(
      suite.deployInput({ name, replicas: 2, ttlSeconds: 600, smoke: { samplePath: red.path, expectedLabel: 'red' } }),
    );
    const status = await serving(handle);
    const key = (await fs.readFile(status.apiKeyRef!, 'utf8')).trim();
    return { handle, status, key, image: await fs.readFile(red.path) };
  }

  test('a good version replaces the old one under load with no failed request', async (t) => {
    const name = uniqueName('roll');
    const { handle, status, key, image } = await deployed(name);
    // The same network under another graph name: a new file with a new digest that answers the same.
    const bytes = Buffer.from(await fs.readFile(suite.assets.modelPath));
    const at = bytes.indexOf('inferctl-tiny-colour-cnn');
    assert.ok(at > 0, 'the graph name is in the model file');
    bytes.write('inferctl-tiny-colour-cn2', at);
    const v2 = path.join(suite.scratch, `${name}-v2.onnx`);
    await fs.writeFile(v2, bytes);

    const load = loadLoop(status.endpoint!, key, image);
    const result = await handle.executeUpdate(rolloutUpdate, {
      args: [{ modelPath: v2, canaryPercent: 50, bakeSeconds: 3 }],
    });
    const answers = await load.stop();
    t.diagnostic(
      `rollout under load: ${answers.length} requests, ${result.bake.requests} to the canary during the bake`,
    );

    assert.notEqual(result.modelDigest, result.previousModelDigest);
    assert.equal(result.previousModelDigest, status.modelDigest);
    assert.ok(result.bake.requests > 0, `the canary answered part of the load (${result.bake.requests})`);
    assert.equal(result.bake.errors, 0);
    assert.ok(answers.length > 20, `the load loop ran (${answers.length} requests)`);
    assert.deepEqual(
      answers.filter((a) => a.status !== 200 || a.label !== 'red'),
      [],
      'every request during the rollout was answered, correctly',
    );

    const after = await handle.query(statusQuery);
    assert.equal(after.modelDigest, result.modelDigest);
    assert.equal(after.endpoint, status.endpoint, 'the same endpoint');
    assert.deepEqual(await servedDigests(after), [result.modelDigest, result.modelDigest], 'the replicas run v2');
    assert.deepEqual(
      after.versions?.map((v) => [path.basename(v.modelPath), v.modelDigest, v.until === undefined]),
      [
        [path.basename(suite.assets.modelPath), status.modelDigest, false],
        [path.basename(v2), result.modelDigest, true],
      ],
    );
    assert.match(after.versions[0]!.ended!, /replaced by/);
    assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).candidateMarker), [], 'no candidate left');
    assert.equal((await findProcessesByMarker(new LocalLayout(name).processMarker)).length, 3);

    await handle.executeUpdate(teardownUpdate, { args: [{}] });
    await handle.result();
  });

  test('a version with a wrong smoke answer is rolled back; the old one serves throughout', async (t) => {
    const name = uniqueName('rollback');
    const { handle, status, key, image } = await deployed(name);
    // The same model with its labels reversed: it answers, but with the wrong label.
    const labels = (await fs.readFile(suite.assets.labelsPath, 'utf8')).trim().split('\n').reverse();
    const badLabels = path.join(suite.scratch, `${name}-labels.txt`);
    await fs.writeFile(badLabels, labels.join('\n') + '\n');

    await assert.rejects(
      handle.executeUpdate(rolloutUpdate, { args: [{ modelPath: suite.assets.modelPath, canaryPercent: 0 }] }),
      (err: unknown) =>
        err instanceof WorkflowUpdateFailedError && /whole percentage from 1 to 100/.test(String(err.cause?.message)),
    );

    const load = loadLoop(status.endpoint!, key, image);
    await assert.rejects(
      handle.executeUpdate(rolloutUpdate, {
        args: [{ modelPath: suite.assets.modelPath, labelsPath: badLabels, canaryPercent: 50, bakeSeconds: 3 }],
      }),
      (err: unknown) => {
        assert.ok(err instanceof WorkflowUpdateFailedError, `a WorkflowUpdateFailedError, got ${String(err)}`);
        const failure = err.cause;
        assert.ok(failure instanceof ApplicationFailure);
        assert.equal(failure.type, FailureType.RolloutFailed);
        assert.match(
          failure.message,
          /rolled back \(The candidate's smoke query expected top label "red" but it answered/,
        );
        assert.match(failure.message, /tiny-cnn\.onnx still serves/);
        return true;
      },
    );
    const answers = await load.stop();
    t.diagnostic(`rollback under load: ${answers.length} requests`);
    assert.ok(answers.length > 5, `the load loop ran (${answers.length} requests)`);
    assert.deepEqual(
      answers.filter((a) => a.status !== 200 || a.label !== 'red'),
      [],
      'the old version answered every request',
    );

    const after = await handle.query(statusQuery);
    assert.equal(after.stage, 'serving');
    assert.equal(after.modelDigest, status.modelDigest);
    assert.deepEqual(await servedDigests(after), [status.modelDigest, status.modelDigest]);
    assert.equal(after.versions?.length, 2);
    assert.match(after.versions[1]!.ended!, /^rolled back: The candidate's smoke query/);
    assert.equal(after.versions[0]!.until, undefined, 'the first version still serves');
    assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).candidateMarker), []);

    await handle.executeUpdate(teardownUpdate, { args: [{}] });
    await handle.result();
  });

  test('a version that passes its smoke query but serves errors during the bake is rolled back', async (t) => {
    const name = uniqueName('rollerr');
    const { handle, status, key } = await deployed(name);
    // The new version answers the red smoke sample, but fails (a 500) on any image with a bright green channel.
    const buggy = path.join(suite.scratch, `${name}-green-bug.onnx`);
    await fs.writeFile(buggy, buildGreenFailingCnn());
    const green = await fs.readFile(suite.sample('green').path);

    const load = loadLoop(status.endpoint!, key, green);
    const failed = await handle
      .executeUpdate(rolloutUpdate, { args: [{ modelPath: buggy, canaryPercent: 50, bakeSeconds: 60 }] })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    const during = (await load.stop()).slice();
    assert.ok(failed instanceof WorkflowUpdateFailedError, `the rollout Update failed, got ${String(failed)}`);
    const failure = failed.cause;
    assert.ok(failure instanceof ApplicationFailure);
    assert.equal(failure.type, FailureType.RolloutFailed);
    assert.match(
      failure.message,
      /rolled back \(The candidate answered \d+ error\(s\) in \d+ request\(s\) during its bake/,
    );
    assert.match(failure.message, /\(\d+\.\d%, over the 1\.0% allowed\)\.\); \S*tiny-cnn\.onnx still serves\.$/);
    assert.ok(failure.cause instanceof ActivityFailure, 'caused by the bake activity');
    assert.equal((failure.cause.cause as ApplicationFailure | undefined)?.type, FailureType.CanaryErrorRate);

    // During the bake the canary's share failed and the old version answered the rest; nothing else.
    const errors = during.filter((a) => a.status !== 200);
    t.diagnostic(`bake under load: ${during.length} requests, ${errors.length} failed on the canary`);
    assert.ok(errors.length > 0, 'the canary served errors');
    assert.ok(
      during.some((a) => a.status === 200 && a.label === 'green'),
      'the old version answered part of the load',
    );
    assert.deepEqual([...new Set(errors.map((a) => a.status))], [500], "the only failures are the candidate's 500s");

    // Rolled back: the old version serves every request again, on both replicas, and no candidate is left.
    const after = await handle.query(statusQuery);
    assert.equal(after.stage, 'serving');
    assert.equal(after.modelDigest, status.modelDigest);
    assert.deepEqual(await servedDigests(after), [status.modelDigest, status.modelDigest]);
    assert.match(after.versions?.[1]?.ended ?? '', /^rolled back: The candidate answered \d+ error/);
    assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).candidateMarker), [], 'no candidate left');
    const again = loadLoop(status.endpoint!, key, green);
    // A count of answers, not a fixed second: a loaded machine answers fewer requests in a second.
    await eventually(
      () => Promise.resolve(again.answers.length > 5 ? true : undefined),
      'six answers after the rollback',
    );
    const answers = await again.stop();
    assert.ok(answers.length > 5, `the load loop ran (${answers.length} requests)`);
    assert.deepEqual(
      answers.filter((a) => a.status !== 200 || a.label !== 'green'),
      [],
      'after the rollback every request is answered by the old version',
    );

    await handle.executeUpdate(teardownUpdate, { args: [{}] });
    await handle.result();
  });

  test('a teardown during the bake rolls the rollout back, then tears everything down', async () => {
    const name = uniqueName('rollstop');
    const { handle } = await deployed(name);
    // Its failure arrives while the teardown Update is awaited: caught at once, checked after.
    const rolling = handle
      .executeUpdate(rolloutUpdate, {
        args: [{ modelPath: suite.assets.modelPath, canaryPercent: 20, bakeSeconds: 120 }],
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.rollout?.stage.startsWith('baking') ? s : undefined;
    }, 'the canary to bake');
    const { removed } = await handle.executeUpdate(teardownUpdate, { args: [{ reason: 'test' }] });
    const err = await rolling;
    assert.ok(err instanceof WorkflowUpdateFailedError, `the rollout Update failed, got ${String(err)}`);
    assert.match(String(err.cause?.message), /rolled back \(a teardown was requested\)/);
    assert.ok(removed.length > 0);
    const outcome = await handle.result();
    assert.equal(outcome.endedBy, 'signal');
    assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).processMarker), [], 'nothing is left');
  });
});
