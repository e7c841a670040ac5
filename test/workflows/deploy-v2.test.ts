/**
 * A model that is not an image classifier, deployed by the deploy workflow on the local target: validate
 * decides it is served on the Open Inference Protocol only, the replicas start with --v2-only, and the
 * smoke query POSTs a V2 request through the gateway with the key and compares the answer with the
 * expected outputs. A differing answer fails the smoke step, naming the tensor and the difference, and
 * teardown still runs; a bad request or expectation is refused at validate, every problem at once, with
 * nothing created.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import type { ApplicationFailure } from '@temporalio/common';

import type { DeployInput, DeployOutcome, V2SmokeSpec } from '../../src/shared/deploy-types';
import { FailureType } from '../../src/shared/failure-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { statusQuery, teardownSignal } from '../../workflows/deploy';
import { expectWorkflowFailure } from '../helpers/failure-chain';
import { workflowSuite } from '../helpers/workflow-suite';
import { eventually, uniqueName } from '../helpers/workers';
import {
  MULTI_INPUT_ANSWER as EXPECTED,
  MULTI_INPUT_REQUEST as REQUEST,
  buildMultiInputModel,
} from '../inference-protocol/fixtures';

describe('deploy workflow with a model that is not an image classifier (V2 only)', () => {
  const suite = workflowSuite('deployv2');
  let modelPath: string;

  before(async () => {
    modelPath = path.join(suite.scratch, 'sums.onnx');
    await fs.writeFile(modelPath, buildMultiInputModel());
  });

  async function writeJson(name: string, value: unknown): Promise<string> {
    const file = path.join(suite.scratch, name);
    await fs.writeFile(file, typeof value === 'string' ? value : JSON.stringify(value));
    return file;
  }

  async function smokeFiles(request: unknown, expected: unknown): Promise<V2SmokeSpec> {
    const id = uniqueName('smoke');
    return {
      requestPath: await writeJson(`${id}-request.json`, request),
      expectPath: await writeJson(`${id}-expect.json`, expected),
    };
  }

  test('serves on /v2 only, and the smoke answer matches the expected outputs', async () => {
    const name = uniqueName('v2');
    const handle = await suite.startDeploy(
      suite.deployInput({ name, modelPath, ttlSeconds: 300, smokeRequest: await smokeFiles(REQUEST, EXPECTED) }),
    );
    const serving = await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.stage === 'serving' ? s : undefined;
    }, 'the deployment to serve');
    assert.equal(serving.protocol, 'v2');
    assert.equal(serving.v2ModelName, 'sums');
    assert.match(serving.steps[0]!.detail!, /^V2 only \(not an image classifier\): a INT64 \[-1, 3\], b FP32/);
    assert.deepEqual(
      serving.steps.map((s) => s.step),
      ['validate', 'provision', 'buildImage', 'deploy', 'waitForDeployment', 'smokeQuery', 'serve'],
    );
    assert.deepEqual(
      serving.v2Smoke?.outputs.map((o) => [o.name, o.datatype, o.shape, o.maxDifference]),
      [
        ['sum', 'FP32', [1, 3], 0],
        ['neg', 'INT64', [1, 3], 0],
        ['square', 'FP16', [1, 2], 0],
        ['isum', 'INT32', [1, 2], 0],
        ['not', 'BOOL', [1, 2], 0],
      ],
    );

    const key = (await fs.readFile(serving.apiKeyRef!, 'utf8')).trim();
    const auth = { authorization: `Bearer ${key}` };
    const metadata = (await (await fetch(`${serving.endpoint}/v2/models/sums`, { headers: auth })).json()) as {
      inputs: Array<{ name: string }>;
    };
    assert.deepEqual(
      metadata.inputs.map((i) => i.name),
      ['a', 'b', 'h', 'u', 'i', 'flag'],
    );
    const infer = await fetch(`${serving.endpoint}/v2/models/sums/infer`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ ...REQUEST, outputs: [{ name: 'isum' }] }),
    });
    assert.deepEqual(((await infer.json()) as { outputs: unknown[] }).outputs, [
      { name: 'isum', datatype: 'INT32', shape: [1, 2], data: [100, 10] },
    ]);
    const score = await fetch(`${serving.endpoint}/score`, { method: 'POST', headers: auth, body: 'x' });
    assert.equal(score.status, 404, 'no /score on a V2-only deployment');
    assert.match(await score.text(), /not an image classifier/);

    const marker = new LocalLayout(name).processMarker;
    await handle.signal(teardownSignal, { reason: 'test' });
    const outcome: DeployOutcome = await handle.result();
    assert.equal(outcome.stage, 'done');
    assert.deepEqual(await findProcessesByMarker(marker), [], 'no process is left');
  });

  test('an answer that differs from the expected outputs fails the smoke step, naming the tensor; teardown runs', async () => {
    const name = uniqueName('v2bad');
    const wrong = structuredClone(EXPECTED);
    wrong.outputs[0]!.data = [1.5, 2.25, 2.5];
    const handle = await suite.startDeploy(
      suite.deployInput({ name, modelPath, ttlSeconds: 300, smokeRequest: await smokeFiles(REQUEST, wrong) }),
    );
    const { workflow, activity, root } = await expectWorkflowFailure(handle);
    assert.ok(workflow && activity, 'the workflow failed with the failure of an activity');
    assert.equal(workflow.type, FailureType.DeploymentFailed);
    assert.match(workflow.message, /Teardown completed/);
    assert.equal(activity.activityType, 'smokeQueryV2');
    assert.equal(activity.cause, root);
    assert.equal(root.type, FailureType.SmokeQueryMismatch);
    assert.equal(root.nonRetryable, true);
    assert.match(
      root.message,
      /output "sum" differs at \[0, 2\]: it answered 2, expected 2\.5 \(difference 0\.5, allowed 0\.000025\); 1 of 3 elements differ/,
    );
    assert.doesNotMatch(root.message, /"neg"|"square"|"isum"|"not"/, 'only the differing tensor is named');

    const events = (await handle.fetchHistory()).events ?? [];
    const activities = events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    assert.equal(activities.at(-1), 'teardown', 'teardown ran after the smoke query');
    assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).processMarker), []);
    await assert.rejects(fs.access(new LocalLayout(name).dir), 'the deployment directory is gone');
  });

  test('an image classifier takes a V2 smoke request too, on the same /v2 routes', async () => {
    const name = uniqueName('v2cls');
    const image = { name: 'image', datatype: 'FP32', shape: [1, 3, 64, 64], data: new Array(3 * 64 * 64).fill(0.5) };
    const handle = await suite.startDeploy(
      suite.deployInput({
        name,
        ttlSeconds: 1,
        smokeRequest: { requestPath: await writeJson(`${name}-request.json`, { inputs: [image] }) },
      }),
    );
    const outcome: DeployOutcome = await handle.result();
    assert.equal(outcome.protocol, 'classifier');
    assert.equal(outcome.v2ModelName, 'tiny-cnn');
    assert.match(
      outcome.steps[0]!.detail!,
      /^image classifier: float32 NCHW 64x64; preprocessing from the model's metadata "inferctl\.preprocess", labels from the sidecar tiny-cnn\.labels\.txt$/,
    );
    assert.deepEqual(outcome.v2Smoke?.outputs, [{ name: 'probabilities', datatype: 'FP32', shape: [1, 8] }]);
    assert.equal(outcome.smoke, undefined);
  });

  /** Runs a deployment that must fail validation; returns validation's own failure. */
  async function refused(extra: Partial<DeployInput>): Promise<ApplicationFailure> {
    const input = suite.deployInput({ name: uniqueName('v2inv'), modelPath, ...extra });
    const handle = await suite.startDeploy(input);
    const { workflow, activity, root } = await expectWorkflowFailure(handle);
    assert.match(workflow?.message ?? '', /Nothing was created/);
    assert.equal(activity?.activityType, 'validateDeployment');
    assert.equal(root.type, FailureType.InvalidDeployment);
    const events = (await handle.fetchHistory()).events ?? [];
    const activities = events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    assert.deepEqual(activities, ['validateDeployment'], 'nothing after validation ran');
    await assert.rejects(fs.access(new LocalLayout(input.name).dir), 'no deployment directory was created');
    return root;
  }

  test('a request and an expectation that do not fit the model are refused at validate, every problem at once', async () => {
    const request = {
      inputs: [
        { name: 'a', datatype: 'INT32', shape: [1, 3], data: [1, 2, 3] },
        { name: 'b', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3] },
        { name: 'zzz', datatype: 'FP32', shape: [1], data: [0] },
        { name: 'h', datatype: 'BYTES', shape: [1, 2], data: ['x', 'y'] },
      ],
    };
    const expected = {
      outputs: [
        { name: 'nope', data: [1] },
        { name: 'sum', datatype: 'INT64', data: [1] },
      ],
    };
    const failure = await refused({ smokeRequest: await smokeFiles(request, expected) });
    const problems = [
      /input "a" is INT32 but the model takes INT64/,
      /Input "b": data has 3 elements but its shape holds 4/,
      /input "b" has shape \[1, 4\] but the model takes \[-1, 3\]/,
      /the model has no input "zzz"/,
      /Input "h": datatype "BYTES" is not supported/,
      /it lacks input "u", "i", "flag"/,
      /expected outputs .*: the model has no output "nope" \(it has "sum", "neg", "square", "isum", "not"\)/,
      /output "sum" is expected as INT64 but the model returns FP32/,
    ];
    for (const problem of problems) assert.match(failure.message, problem);
  });

  test('a request that is not JSON, and flags only a classifier takes, are refused at validate', async () => {
    const notJson = await refused({ smokeRequest: await smokeFiles('{"inputs": [', EXPECTED) });
    assert.match(notJson.message, /smoke request .*-request\.json: it is not valid JSON/);

    const missing = await refused({ smokeRequest: { requestPath: path.join(suite.scratch, 'none.json') } });
    assert.match(missing.message, /smoke request .*none\.json cannot be read \(ENOENT\)/);

    const classifierFlags = await refused({
      protocol: 'v2',
      smoke: { samplePath: suite.sample('red').path },
      labelsPath: path.join(suite.scratch, 'labels.txt'),
    });
    assert.match(classifierFlags.message, /--smoke-sample, --labels apply to image classifiers only/);
  });
});
