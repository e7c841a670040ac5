/**
 * INFERCTL_ALLOWED_ROOTS on the workers: a model, sample, input or output outside the roots is refused
 * before anything runs, and a manifest entry pointing outside is recorded as that input's error. Paths
 * are compared with their links resolved: a link inside the roots that leads out (an output directory, a
 * directory above an output not created yet, a model, a labels file, an input) is refused like the place
 * it leads to, and nothing there is read, deleted or written.
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
import { recordReliability } from '../helpers/reliability';
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

  test('links that leave the roots are refused: --output, an output under a link, --model, --labels, inputs', async () => {
    let tried = 0;
    let refused = 0;
    const expectRefused = async (what: string, handle: Parameters<typeof expectWorkflowFailure>[0]) => {
      tried++;
      const { root } = await expectWorkflowFailure(handle, what);
      assert.equal(root.type, FailureType.PathNotAllowed, `${what}: ${root.message}`);
      assert.match(root.message, /a link to/, `${what}: the message names where the link leads`);
      refused++;
      return root;
    };
    await writeSampleImages(path.join(allowed, 'in-links'), 2);
    const batch = (name: string, extra: Partial<BatchScoreInput>): BatchScoreInput =>
      suite.batchInput({
        name,
        modelPath: path.join(allowed, 'model.onnx'),
        inputPath: path.join(allowed, 'in-links'),
        outputDir: path.join(allowed, 'out', name),
        maxShardsInFlight: 1,
        ...extra,
      });

    // --output through a link to a victim's directory that holds manifest/ and shards/ of its own.
    const victim = path.join(outside, 'victim');
    for (const sub of ['manifest', 'shards']) {
      await fs.mkdir(path.join(victim, sub), { recursive: true });
      await fs.writeFile(path.join(victim, sub, 'keep.txt'), 'the victim’s work');
    }
    await fs.mkdir(path.join(allowed, 'jobs'), { recursive: true });
    await fs.symlink(victim, path.join(allowed, 'jobs', 'x'));
    await expectRefused(
      'an output linked out',
      await suite.startBatch(batch(uniqueName('link-out'), { outputDir: path.join(allowed, 'jobs', 'x') })),
    );
    for (const sub of ['manifest', 'shards']) {
      assert.equal(
        await fs.readFile(path.join(victim, sub, 'keep.txt'), 'utf8'),
        'the victim’s work',
        `${sub}/ untouched`,
      );
    }
    assert.deepEqual((await fs.readdir(victim)).sort(), ['manifest', 'shards'], 'nothing written into the victim');

    // An output that does not exist yet, below a linked directory: its nearest existing ancestor leads out.
    await fs.symlink(outside, path.join(allowed, 'linked'));
    await expectRefused(
      'an output below a link',
      await suite.startBatch(batch(uniqueName('link-new'), { outputDir: path.join(allowed, 'linked', 'new', 'out') })),
    );
    await assert.rejects(fs.access(path.join(outside, 'new')), 'nothing created outside');

    // --model and --labels through links, for a deployment and for a batch job.
    const secret = path.join(outside, 'secret.txt');
    await fs.writeFile(secret, 'sk-live-0123456789\nanother-secret-line\n');
    await fs.symlink(path.join(outside, 'model.onnx'), path.join(allowed, 'model-link.onnx'));
    await fs.symlink(secret, path.join(allowed, 'labels-link.txt'));
    await expectRefused(
      'a model linked out',
      await suite.startDeploy(
        suite.deployInput({
          name: uniqueName('link-model'),
          modelPath: path.join(allowed, 'model-link.onnx'),
          ttlSeconds: 1,
        }),
      ),
    );
    const labelsRefusal = await expectRefused(
      'a labels file linked out',
      await suite.startDeploy(
        suite.deployInput({
          name: uniqueName('link-labels'),
          modelPath: path.join(allowed, 'model.onnx'),
          labelsPath: path.join(allowed, 'labels-link.txt'),
          ttlSeconds: 1,
        }),
      ),
    );
    assert.doesNotMatch(labelsRefusal.message, /sk-live|another-secret/, 'the refusal shows nothing of the file');
    await expectRefused(
      'a batch labels file linked out',
      await suite.startBatch(batch(uniqueName('link-blabels'), { labelsPath: path.join(allowed, 'labels-link.txt') })),
    );
    await expectRefused(
      'a batch model linked out',
      await suite.startBatch(batch(uniqueName('link-bmodel'), { modelPath: path.join(allowed, 'model-link.onnx') })),
    );

    // An input that is a link leading out: that input's error, the others scored.
    const [outsideImage] = await writeSampleImages(path.join(outside, 'link-images'), 1);
    await fs.symlink(outsideImage!.path, path.join(allowed, 'escape.jpg'));
    const manifest = path.join(allowed, 'links.txt');
    const inside = (await fs.readdir(path.join(allowed, 'in-links'))).map((f) => path.join(allowed, 'in-links', f));
    await fs.writeFile(manifest, [...inside, path.join(allowed, 'escape.jpg')].join('\n'));
    const outcome = await (await suite.startBatch(batch(uniqueName('link-input'), { inputPath: manifest }))).result();
    tried++;
    assert.equal(outcome.itemsOk, inside.length);
    const errors = await readJsonl<{ path: string; reason: string }>(outcome.errorsFile);
    assert.deepEqual(
      errors.map((e) => [e.path, e.reason]),
      [[path.join(allowed, 'escape.jpg'), 'not-allowed']],
    );
    refused++;
    recordReliability({
      test: 'links out of the allowed roots',
      faultsInjected: 0,
      survived: true,
      attack: 'symlink-escape',
      attacksTried: tried,
      attacksRefused: refused,
    });
  });
});
