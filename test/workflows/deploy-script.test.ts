/**
 * The user's scoring script deployed by the deploy workflow on the local target, run by the real
 * azureml-inference-server-http from PyPI behind inferctl's front: an Azure ML v2-style JSON script with a
 * model folder and a requirements file, served with the key, /readyz, /metrics and /swagger.json; its
 * front killed outright and the Python server still removed by teardown; init() raising, an environment
 * pip cannot resolve, and the problems validate finds before anything is created.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import type { ApplicationFailure } from '@temporalio/common';

import type { DeployInput, DeployOutcome } from '../../src/shared/deploy-types';
import { FailureType } from '../../src/shared/failure-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { scaleUpdate, statusQuery, teardownSignal } from '../../workflows/deploy';
import { expectWorkflowFailure } from '../helpers/failure-chain';
import {
  PYTHON_SKIP,
  SCRIPT_WORKER_ENV,
  fixture,
  pythonGroups,
  pythonServersUnder,
  tcpListeningPorts,
} from '../helpers/script-fixtures';
import { workflowSuite } from '../helpers/workflow-suite';
import { eventually, uniqueName } from '../helpers/workers';

describe('deploy workflow with a scoring script (azureml-inference-server-http)', { skip: PYTHON_SKIP }, () => {
  const suite = workflowSuite('deployscript', { env: SCRIPT_WORKER_ENV });

  function scriptInput(overrides: Partial<DeployInput> = {}): DeployInput {
    return suite.deployInput({
      name: uniqueName('script'),
      modelPath: fixture('v2-model', 'colours'),
      ttlSeconds: 300,
      script: { entryScript: fixture('v2', 'score.py'), environmentFile: fixture('v2', 'requirements.txt') },
      ...overrides,
    });
  }

  async function writeSample(name: string, body: string): Promise<string> {
    const file = path.join(suite.scratch, name);
    await fs.writeFile(file, body);
    return file;
  }

  test('a v2-style script serves behind the key; killing its front outright still leaves no Python server', async () => {
    const input = scriptInput({
      scriptSmoke: {
        samplePath: await writeSample('index1.json', '{"index": 1}'),
        expectJson: { path: 'label', value: 'green' },
      },
    });
    const handle = await suite.startDeploy(input);
    const serving = await eventually(
      async () => {
        const s = await handle.query(statusQuery);
        assert.notEqual(s.stage, 'failed', s.lastError);
        return s.stage === 'serving' ? s : undefined;
      },
      'the deployment to serve',
      240_000,
    );
    assert.equal(serving.protocol, 'script');
    assert.match(
      serving.steps[0]!.detail!,
      /^scoring script: score\.py on Python 3\.\d+\.\d+, 1 requirement\(s\); model azureml-models\/colours\/1\/colours$/,
    );
    assert.deepEqual(serving.scriptSmoke && [serving.scriptSmoke.status, serving.scriptSmoke.checked], [
      200,
      'label = green',
    ]);

    const key = (await fs.readFile(serving.apiKeyRef!, 'utf8')).trim();
    const post = (headers: Record<string, string>, body = '{"index": 2}') =>
      fetch(`${serving.endpoint}/score`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    const answer = await post({ authorization: `Bearer ${key}` });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('x-ms-run-function-failed'), 'False', "the server's own headers come through");
    assert.deepEqual(await answer.json(), { label: 'blue', labels: 3, workerSecret: null, apiKeySeen: false });
    const wrongKey = await post({ authorization: 'Bearer nope' });
    assert.equal(wrongKey.status, 401);
    assert.equal((await post({})).status, 401);
    const swagger = await fetch(`${serving.endpoint}/swagger.json`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(swagger.status, 200);
    assert.equal(((await swagger.json()) as { swagger?: string }).swagger, '2.0');
    const root = await fetch(`${serving.endpoint}/`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(root.status, 404, "the Python server's own routes are not exposed");

    const replica = serving.replicaUrls![0]!;
    assert.equal((await fetch(`${replica}/readyz`)).status, 200);
    const metrics = await (await fetch(`${replica}/metrics`)).text();
    const scored = [...metrics.matchAll(/^inferctl_server_scoring_requests_total\{code="(\d+)"\} (\d+)$/gm)];
    assert.deepEqual(
      Object.fromEntries(scored.map((m) => [m[1], Number(m[2])])),
      { '200': 2, '401': 3 },
      'the smoke query (401, 200) and the requests above count as scoring requests',
    );

    // A front killed outright cannot stop its Python server: teardown finds it by its recorded group.
    const layout = new LocalLayout(input.name);
    const [group] = await pythonGroups(layout.dir);
    assert.ok(group && group.live.length >= 2, 'gunicorn runs: its arbiter and a worker');
    const front = JSON.parse(await fs.readFile(path.join(layout.replicaDir(0), 'ready.json'), 'utf8')) as {
      pid: number;
      port: number;
    };
    // The Python server checks no key, so it listens on no port (only on a socket in a folder of the front's own).
    assert.deepEqual(await tcpListeningPorts(front.pid), [front.port], 'the front listens on its port');
    for (const pid of group.live)
      assert.deepEqual(await tcpListeningPorts(pid), [], `gunicorn ${pid} listens on no port`);
    process.kill(front.pid, 'SIGKILL');
    await handle.signal(teardownSignal, { reason: 'test' });
    const outcome: DeployOutcome = await handle.result();
    assert.equal(outcome.stage, 'done');
    assert.ok(
      outcome.teardownRemoved?.some((r) => r.startsWith('python server ')),
      `teardown names the Python server it stopped: ${outcome.teardownRemoved?.join(', ')}`,
    );
    assert.deepEqual(await findProcessesByMarker(layout.processMarker), []);
    assert.deepEqual(await pythonServersUnder(layout.dir), [], 'no Python server is left');
  });

  test('scale starts and stops script replicas with their Python servers; an idle TTL reads the front’s counters', async () => {
    const input = scriptInput({ ttlSeconds: null });
    const handle = await suite.startDeploy(input);
    await eventually(
      async () => ((await handle.query(statusQuery)).stage === 'serving' ? true : undefined),
      'the deployment to serve',
      240_000,
    );
    const layout = new LocalLayout(input.name);
    const up = await handle.executeUpdate(scaleUpdate, { args: [{ replicas: 2 }] });
    assert.equal(up.replicaUrls.length, 2);
    const two = await pythonGroups(layout.dir);
    assert.equal(two.filter((g) => g.live.length > 0).length, 2, 'two Python servers run');
    await handle.executeUpdate(scaleUpdate, { args: [{ replicas: 1 }] });
    const [kept, removed] = await pythonGroups(layout.dir);
    assert.ok(kept && kept.live.length > 0, 'the first replica’s server still runs');
    assert.deepEqual(removed?.live, [], 'the second replica’s server stopped with its front');
    await handle.signal(teardownSignal, { reason: 'test' });
    await handle.result();
    assert.deepEqual(await pythonServersUnder(layout.dir), []);

    const idle = scriptInput({ ttlSeconds: null, idleTtlSeconds: 3 });
    const idleHandle = await suite.startDeploy(idle);
    const outcome: DeployOutcome = await idleHandle.result();
    assert.equal(outcome.endedBy, 'idle');
    assert.deepEqual(await pythonServersUnder(new LocalLayout(idle.name).dir), []);
  });

  test("init() raising fails the deployment with the script's traceback, once, and teardown runs", async () => {
    const input = scriptInput({ script: { entryScript: fixture('init-raises', 'score.py') } });
    const handle = await suite.startDeploy(input);
    const { workflow, activity, root } = await expectWorkflowFailure(handle);
    assert.equal(workflow?.type, FailureType.DeploymentFailed);
    assert.match(workflow.message, /Teardown completed/);
    assert.equal(activity?.activityType, 'waitForDeployment');
    assert.equal(root.nonRetryable, true);
    assert.match(root.message, /the scoring script's init\(\) raised; the Python server exited with code 3/);
    assert.match(
      root.message,
      /score\.py", line 6, in init\n\s+raise FileNotFoundError\(f"no model at \{path\}"\)\nFileNotFoundError: no model at .*azureml-models\/colours\/1\/missing\.onnx/,
    );
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    assert.equal(scheduled.filter((a) => a === 'waitForDeployment').length, 1, 'not retried as transient');
    assert.equal(scheduled.at(-1), 'teardown');
    const started = events
      .filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.ok(
      started.every((a) => a === 1),
      'no step was retried',
    );
    assert.deepEqual(await pythonServersUnder(new LocalLayout(input.name).dir), []);
  });

  test('an environment pip cannot resolve fails the image step, naming the package and what pip said', async () => {
    const requirements = await writeSample('bad-requirements.txt', 'inferctl-no-such-package-xyz==0.0.1\nnumpy\n');
    const input = scriptInput({ script: { entryScript: fixture('v2', 'score.py'), environmentFile: requirements } });
    const handle = await suite.startDeploy(input);
    const { workflow, activity, root } = await expectWorkflowFailure(handle);
    assert.match(workflow?.message ?? '', /Teardown completed/);
    assert.equal(activity?.activityType, 'buildImage');
    assert.equal(root.type, FailureType.ScriptEnvironmentFailed);
    assert.equal(root.nonRetryable, true);
    assert.match(
      root.message,
      /pip could not install the scoring script's environment \(inferctl-no-such-package-xyz==0\.0\.1\)/,
    );
    assert.match(root.message, /No matching distribution found for inferctl-no-such-package-xyz==0\.0\.1/);
    assert.match(root.message, /Fix the environment file/);
  });

  /** Runs a deployment that must fail validation; returns validation's own failure. */
  async function refused(extra: Partial<DeployInput>): Promise<ApplicationFailure> {
    const input = scriptInput(extra);
    const handle = await suite.startDeploy(input);
    const { workflow, activity, root } = await expectWorkflowFailure(handle);
    assert.match(workflow?.message ?? '', /Nothing was created/);
    assert.equal(activity?.activityType, 'validateDeployment');
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    assert.deepEqual(scheduled, ['validateDeployment'], 'nothing after validation ran');
    await assert.rejects(fs.access(new LocalLayout(input.name).dir), 'no deployment directory was created');
    return root;
  }

  test('validate refuses, before anything is created: a syntax error, a missing script, conda names without a PyPI one, a Python the worker lacks', async () => {
    const syntax = await refused({ script: { entryScript: fixture('syntax-error', 'score.py') } });
    assert.equal(syntax.type, FailureType.InvalidDeployment);
    assert.match(
      syntax.message,
      /does not compile with Python 3\.\d+\.\d+:\n\s+File ".*syntax-error\/score\.py", line 5\n\s+def run\(raw_data\)\n[\s^]+\nSyntaxError: expected ':'/,
    );

    const missing = await refused({ script: { entryScript: fixture('v2', 'nope.py') } });
    assert.equal(missing.type, FailureType.InputNotFound);
    assert.match(missing.message, /entry script .*nope\.py does not exist/);

    const conda = await writeSample(
      'env.yml',
      'name: x\ndependencies:\n  - tensorflow-gpu = 1.12\n  - numpy\n  - cudatoolkit=11.8\n  - libgcc-ng\n  - pip:\n    - azureml-core\n',
    );
    const unmappable = await refused({ script: { entryScript: fixture('v2', 'score.py'), environmentFile: conda } });
    assert.equal(unmappable.type, FailureType.InvalidDeployment);
    assert.match(unmappable.message, /conda dependencies with no known PyPI name: cudatoolkit, libgcc-ng \(/);
    assert.doesNotMatch(unmappable.message, /tensorflow|numpy/, 'the mapped ones are fine');

    const pinned = await writeSample('py399.yml', 'dependencies:\n  - python=3.99\n  - numpy\n');
    const python = await refused({ script: { entryScript: fixture('v2', 'score.py'), environmentFile: pinned } });
    assert.match(python.message, /pins python=3\.99, which this worker does not have \(it has Python 3\.\d+/);

    const flags = await refused({
      target: 'local',
      labelsPath: '/x/labels.txt',
      script: { entryScript: fixture('v2', 'score.py'), modelName: 'bad name', modelVersion: 'v2' },
      scriptSmoke: { samplePath: 'relative.json', expectLabel: 'a', expectContains: 'b' },
    });
    for (const problem of [
      /--labels do not apply to a scoring script/,
      /model name "bad name" must be letters/,
      /model version "v2" must be a whole number/,
      /smoke sample path must be absolute/,
      /give at most one of --expect-label, --expect-json and --expect-contains/,
    ]) {
      assert.match(flags.message, problem);
    }
  });
});
