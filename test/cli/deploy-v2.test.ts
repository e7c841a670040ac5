/**
 * `inferctl deploy` with a model that is not an image classifier, as a user runs it: the V2 flags that
 * need one another are exit 2, and a V2-only deployment says so in the deploy output (the validate
 * step, the smoke answer, the /v2 endpoint) and in `inferctl status`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { startControlWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';
import { MULTI_INPUT_REQUEST, buildMultiInputModel } from '../inference-protocol/fixtures';
import { runInferctl } from '../helpers/cli';

const inferctl = (args: string[]) => runInferctl(args);

describe('inferctl deploy with a V2-only model', () => {
  const taskQueue = uniqueName('cli-v2-tq');
  let worker: WorkerProcess;
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-cli-v2-'));
    worker = await startControlWorker(taskQueue);
  });
  after(async () => {
    await worker?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('--smoke-expect and --smoke-tolerance need --smoke-request; a negative tolerance is refused', async () => {
    const noRequest = await inferctl(['deploy', '--model', 'm.onnx', '--smoke-expect', 'e.json']);
    assert.equal(noRequest.code, 2);
    assert.match(noRequest.stderr, /--smoke-expect and --smoke-tolerance need --smoke-request/);
    const negative = await inferctl(['deploy', '--model', 'm.onnx', '--smoke-tolerance', '-1']);
    assert.equal(negative.code, 2);
    assert.match(negative.stderr, /--smoke-tolerance must be a number ≥ 0/);
    const protocol = await inferctl(['deploy', '--model', 'm.onnx', '--protocol', 'grpc']);
    assert.equal(protocol.code, 2);
    assert.match(protocol.stderr, /Allowed choices are classifier, v2/);
  });

  test('the deploy output and status say the deployment is V2 only, with its smoke answer and endpoint', async () => {
    const name = uniqueName('cliv2');
    const model = path.join(dir, 'sums.onnx');
    await fs.writeFile(model, buildMultiInputModel());
    const request = path.join(dir, 'request.json');
    await fs.writeFile(request, JSON.stringify({ ...MULTI_INPUT_REQUEST, outputs: [{ name: 'sum' }] }));
    const expect = path.join(dir, 'expect.json');
    await fs.writeFile(expect, JSON.stringify({ outputs: [{ name: 'sum', data: [1.5, 2.25, 2] }] }));
    const deployed = await inferctl([
      'deploy',
      '--model',
      model,
      '--name',
      name,
      '--smoke-request',
      request,
      '--smoke-expect',
      expect,
      '--task-queue',
      taskQueue,
    ]);
    try {
      assert.equal(deployed.code, 0, deployed.stderr);
      assert.match(deployed.stdout, /✔ validate \([\d.]+m?s\): V2 only \(not an image classifier\): a INT64 \[-1, 3\]/);
      assert.match(deployed.stdout, /Smoke answer \(V2\): sum FP32 \[1, 3\] \(max difference 0\)/);
      assert.match(
        deployed.stdout,
        /Endpoint: POST http:\/\/127\.0\.0\.1:\d+\/v2\/models\/sums\/infer +\(Open Inference Protocol only/,
      );
      const status = await inferctl(['status', name]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /V2 only \(\/v2\/models\/sums\/infer\)/);
    } finally {
      const down = await inferctl(['teardown', name]);
      assert.equal(down.code, 0, down.stderr);
    }
    assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).processMarker), [], 'no process is left');
  });
});
