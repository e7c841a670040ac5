/**
 * INFERCTL_ALLOWED_ROOTS on the workers: a model, sample, input or output outside the roots is refused
 * before anything runs, and a manifest entry pointing outside is recorded as that input's error.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { writeSampleImages } from '../../src/demo/sample-images';
import { buildTinyCnn } from '../../src/demo/tiny-cnn';
import type { BatchScoreInput } from '../../src/shared/batch-types';
import { FailureType } from '../../src/shared/failure-types';
import { expectWorkflowFailure } from '../helpers/failure-chain';
import { readJsonl } from '../helpers/jsonl';
import { workflowSuite } from '../helpers/workflow-suite';
import { uniqueName } from '../helpers/workers';

describe('allowed roots', () => {
  const allowed = path.join(os.tmpdir(), uniqueName('inferctl-allowed'));
  let outside: string;
  before(async () => {
    await fs.mkdir(allowed);
    outside = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-outside-'));
    for (const dir of [allowed, outside]) await fs.writeFile(path.join(dir, 'model.onnx'), buildTinyCnn());
  });
  // Both workers may use `allowed` only.
  const suite = workflowSuite('roots', { env: { INFERCTL_ALLOWED_ROOTS: allowed }, gpu: {} });
  after(async () => {
    for (const dir of [allowed, outside]) await fs.rm(dir, { recursive: true, force: true });
  });

  test('a deployment whose model is outside the roots is refused', async () => {
    const name = uniqueName('roots');
    const handle = await suite.startDeploy(
      suite.deployInput({ name, modelPath: path.join(outside, 'model.onnx'), ttlSeconds: 1 }),
    );
    const { workflow, activity, root } = await expectWorkflowFailure(handle, 'the deployment');
    assert.equal(workflow?.type, FailureType.DeploymentFailed);
    assert.equal(activity?.activityType, 'validateDeployment', 'refused by validation, before anything ran');
    assert.equal(root.type, FailureType.PathNotAllowed);
    assert.match(root.message, /outside the directories this worker may use/);
  });

  test('a batch job writing outside the roots is refused; a manifest entry outside is that input’s error', async () => {
    const job = (name: string, extra: Partial<BatchScoreInput>): BatchScoreInput =>
      suite.batchInput({
        name,
        modelPath: path.join(allowed, 'model.onnx'),
        inputPath: path.join(allowed, 'in'),
        outputDir: path.join(allowed, 'out', name),
        maxShardsInFlight: 1,
        ...extra,
      });
    const samples = await writeSampleImages(path.join(allowed, 'in'), 4);
    const name = uniqueName('roots-out');
    const refused = await suite.startBatch(job(name, { outputDir: path.join(outside, 'out') }));
    const { activity, root } = await expectWorkflowFailure(refused, 'the job');
    assert.ok(activity, 'refused in an activity');
    assert.equal(root.type, FailureType.PathNotAllowed);

    const [escapee] = await writeSampleImages(path.join(outside, 'images'), 1);
    const manifest = path.join(allowed, 'manifest.txt');
    await fs.writeFile(manifest, [...samples.map((s) => s.path), escapee!.path].join('\n'));
    const ok = uniqueName('roots-manifest');
    const outcome = await (await suite.startBatch(job(ok, { inputPath: manifest }))).result();
    assert.equal(outcome.itemsOk, 4);
    assert.equal(outcome.itemsFailed, 1);
    const [error] = await readJsonl<{ path: string; reason: string }>(outcome.errorsFile);
    assert.equal(error?.reason, 'not-allowed');
    assert.equal(error?.path, escapee!.path);
  });
});
