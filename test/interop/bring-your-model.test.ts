/**
 * "Done when" of issue #13, on the local target: a third-party-style classifier (channels-last float32
 * input, BGR with per-channel mean subtraction, logits out) deploys and batch-scores with
 * `--preprocess spec.json --labels labels.txt`, its answers within a small tolerance of onnxruntime run
 * on the model author's own Python pipeline's tensor (Keras caffe preprocessing, reference_preprocess.py);
 * and a spec that cannot fit the model is refused at validate with nothing created.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import type { ApplicationFailure } from '@temporalio/common';

import type { BatchSummary } from '../../src/shared/batch-types';
import type { BatchOutcome } from '../../workflows/batch-score';
import type { DeployInput } from '../../src/shared/deploy-types';
import { FailureType } from '../../src/shared/failure-types';
import type { PreprocessConfig } from '../../src/shared/preprocess-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { statusQuery, teardownSignal } from '../../workflows/deploy';
import { expectWorkflowFailure } from '../helpers/failure-chain';
import { readJsonl } from '../helpers/jsonl';
import { workflowSuite } from '../helpers/workflow-suite';
import { eventually, uniqueName } from '../helpers/workers';
import { MAX_TOP_SCORE, SCORE_TOLERANCE, buildProbe, directScores } from './probe-models';
import type { ProbeOptions } from './probe-models';
import { referenceSet } from './python-reference';
import type { ReferenceSet } from './python-reference';

const SIZE = 224;
const MODEL: ProbeOptions = { layout: 'NHWC', inputType: 'float32', output: 'logits', inputGain: 1 / 64 };
const LABELS = ['tabby', 'espresso', 'lynx', 'mug', 'plate'];
/** What the model's author would write: Keras caffe preprocessing, spelled out field by field. */
const SPEC: PreprocessConfig = {
  resize: { width: SIZE, height: SIZE },
  channelOrder: 'BGR',
  scale: 1,
  mean: [103.939, 116.779, 123.68],
  std: [1, 1, 1],
  layout: 'NHWC',
  interpolation: 'bilinear',
  orientation: 'ignore',
  output: 'logits',
};

interface PredictionRow {
  index: number;
  path: string;
  predictions: Array<{ label: string; score: number }>;
}

/** The largest |served − expected| over a row's predictions, by label. */
function worstDifference(predictions: Array<{ label: string; score: number }>, expected: Float32Array): number {
  return Math.max(...predictions.map((p) => Math.abs(p.score - expected[LABELS.indexOf(p.label)]!)));
}

describe('a third-party-style NHWC/BGR logits classifier with --preprocess spec.json --labels labels.txt', () => {
  const suite = workflowSuite('byom', { gpu: {} });
  let refs: ReferenceSet;
  let modelPath = '';
  let labelsPath = '';
  let specFile = '';
  /** The photos, copied beside the model (inputs of the batch job, smoke samples). */
  const photos: string[] = [];
  /** Softmax of onnxruntime on each photo's reference tensor, by photo path. */
  const expected = new Map<string, Float32Array>();

  before(async () => {
    refs = await referenceSet();
    if (refs.skip) return;
    modelPath = path.join(suite.scratch, 'keras-style.onnx');
    await fs.writeFile(modelPath, buildProbe(MODEL));
    labelsPath = path.join(suite.scratch, 'labels.txt');
    await fs.writeFile(labelsPath, LABELS.join('\n') + '\n');
    specFile = path.join(suite.scratch, 'spec.json');
    await fs.writeFile(specFile, JSON.stringify(SPEC, null, 2));
    const inputs = path.join(suite.scratch, 'photos');
    await fs.mkdir(inputs);
    for (const photo of refs.photos) {
      const copy = path.join(inputs, path.basename(photo));
      await fs.copyFile(photo, copy);
      photos.push(copy);
      expected.set(copy, await directScores(modelPath, MODEL, await refs.tensor(photo, 'keras-caffe')));
    }
  });
  after(() => refs.dispose());

  const top = (scores: Float32Array) => LABELS[scores.indexOf(Math.max(...scores))]!;
  const readSpec = async () => JSON.parse(await fs.readFile(specFile, 'utf8')) as PreprocessConfig;

  test('deploys: its smoke query passes and its answer is onnxruntime’s on the reference tensor', async (t) => {
    if (refs.skip) return t.skip(refs.skip);
    const photo = photos[0]!;
    const want = expected.get(photo)!;
    const handle = await suite.startDeploy(
      suite.deployInput({
        name: uniqueName('byom'),
        modelPath,
        preprocess: await readSpec(),
        labelsPath,
        smoke: { samplePath: photo, expectedLabel: top(want) },
      }),
    );
    const serving = await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.stage === 'serving' || s.stage === 'failed' ? s : undefined;
    }, 'the deployment to serve');
    assert.equal(serving.stage, 'serving', serving.lastError);
    const predictions = serving.smoke!.predictions;
    assert.equal(predictions[0]!.label, top(want));
    assert.equal(predictions.length, LABELS.length);
    const worst = worstDifference(predictions, want);
    t.diagnostic(`served scores within ${worst.toFixed(4)} of onnxruntime (top ${predictions[0]!.score.toFixed(3)})`);
    assert.ok(predictions[0]!.score < MAX_TOP_SCORE, 'not a saturated softmax');
    assert.ok(worst <= SCORE_TOLERANCE, `scores differ by up to ${worst}`);

    // The bundle keeps the spec, resolved, and the labels.
    const bundles = new LocalLayout(serving.name).bundlesDir;
    const [bundle] = await fs.readdir(bundles);
    const kept = JSON.parse(await fs.readFile(path.join(bundles, bundle!, 'preprocess.json'), 'utf8')) as object;
    assert.deepEqual(kept, SPEC);
    assert.equal(await fs.readFile(path.join(bundles, bundle!, 'model.labels.txt'), 'utf8'), LABELS.join('\n') + '\n');

    await handle.signal(teardownSignal, { reason: 'test' });
    assert.equal((await handle.result()).stage, 'done');
  });

  test('batch-scores: every photo’s row is onnxruntime’s on its reference tensor', async (t) => {
    if (refs.skip) return t.skip(refs.skip);
    const outcome: BatchOutcome = await (
      await suite.startBatch(
        suite.batchInput({
          name: uniqueName('byom'),
          modelPath,
          inputPath: path.dirname(photos[0]!),
          outputDir: path.join(suite.scratch, 'batch-out'),
          topK: LABELS.length,
          preprocess: await readSpec(),
          labelsPath,
        }),
      )
    ).result();
    assert.equal(outcome.itemsOk, photos.length);
    const summary = JSON.parse(await fs.readFile(outcome.summaryFile, 'utf8')) as BatchSummary;
    assert.deepEqual(summary.preprocess, SPEC, 'the summary records the spec the shards applied');
    const rows = await readJsonl<PredictionRow>(outcome.predictionsFile);
    assert.equal(rows.length, photos.length);
    for (const row of rows) {
      const want = expected.get(row.path)!;
      assert.equal(row.predictions[0]!.label, top(want), row.path);
      const worst = worstDifference(row.predictions, want);
      t.diagnostic(`${path.basename(row.path)}: within ${worst.toFixed(4)}`);
      assert.ok(worst <= SCORE_TOLERANCE, `${row.path}: scores differ by up to ${worst}`);
    }
  });

  /** Runs a deployment that must fail validation; returns validation's own failure. */
  async function refused(extra: Partial<DeployInput>): Promise<ApplicationFailure> {
    const input = suite.deployInput({ name: uniqueName('byom-bad'), modelPath, ...extra });
    const handle = await suite.startDeploy(input);
    const { workflow, activity, root } = await expectWorkflowFailure(handle, 'the deployment');
    assert.equal(workflow?.type, FailureType.DeploymentFailed);
    assert.equal(activity?.activityType, 'validateDeployment');
    assert.equal(root.nonRetryable, true);
    await assert.rejects(fs.access(new LocalLayout(input.name).dir), 'nothing was created');
    return root;
  }

  test('a spec that cannot fit the model, or labels that do not match it, fail at validate', async (t) => {
    if (refs.skip) return t.skip(refs.skip);
    const crop = await refused({ preprocess: { preset: 'torchvision', crop: { width: 299, height: 299 } } });
    assert.equal(crop.type, FailureType.InvalidPreprocess);
    assert.match(crop.message, /crop 299x299 is larger than the resized shorter side 256/);
    assert.match(crop.message, /width 299 disagrees with the input's fixed width 224/);
    const channels = await refused({ preprocess: { ...SPEC, layout: 'NCHW' } });
    assert.equal(channels.type, FailureType.InvalidPreprocess);
    assert.match(channels.message, /layout "NCHW" is not supported by this input: \[batch, 224, 224, 3\]/);
    const few = path.join(suite.scratch, 'two-labels.txt');
    await fs.writeFile(few, 'a\nb\n');
    const labels = await refused({ preprocess: SPEC, labelsPath: few });
    assert.equal(labels.type, FailureType.MissingLabels);
    assert.match(labels.message, /has 5 classes but there are 2 labels.*--labels/);
  });
});
