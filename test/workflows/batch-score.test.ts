/**
 * The batchScore workflow through a real control worker and a real GPU worker process (CPU provider):
 * results equal direct onnxruntime, bad inputs are recorded and not fatal, the error threshold fails
 * the job with a message naming the errors file, bad job settings fail clearly, and --raw-outputs
 * writes raw.npy row for row with predictions.jsonl, the summary naming the model output and preprocessing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { parseNpyHeader } from '../../src/batch/npy';
import { writeSampleImages } from '../../src/demo/sample-images';
import { readModelInfo } from '../../src/model/model-info';
import { Classifier } from '../../src/scoring/classifier';
import { preprocessImage } from '../../src/preprocess/preprocess-image';
import type { BatchScoreInput, BatchSummary } from '../../src/shared/batch-types';
import { FailureType } from '../../src/shared/failure-types';
import type { BatchOutcome } from '../../workflows/batch-score';
import { expectWorkflowFailure } from '../helpers/failure-chain';
import { readJsonl } from '../helpers/jsonl';
import { workflowSuite } from '../helpers/workflow-suite';
import { uniqueName } from '../helpers/workers';

interface PredictionRow {
  index: number;
  path: string;
  predictions: Array<{ label: string; score: number }>;
}

describe('batchScore workflow', () => {
  const suite = workflowSuite('batch', { gpu: { metrics: true } });

  /** Shards of 7 and batches of 4 (40 inputs make 6 shards, the last one short), top-3. */
  function job(name: string, inputPath: string, extra: Partial<BatchScoreInput> = {}): BatchScoreInput {
    return suite.batchInput({ name, inputPath, shardSize: 7, batchSize: 4, maxShardsInFlight: 3, topK: 3, ...extra });
  }

  async function run(input: BatchScoreInput): Promise<BatchOutcome> {
    return (await suite.startBatch(input)).result();
  }

  test('scores every input once, with the same answers as onnxruntime called directly', async () => {
    const name = uniqueName('equal');
    const dir = path.join(suite.scratch, name, 'in');
    const samples = await writeSampleImages(dir, 40);
    const outcome: BatchOutcome = await run(job(name, dir));
    assert.equal(outcome.totalItems, 40);
    assert.equal(outcome.itemsOk, 40);
    assert.equal(outcome.itemsFailed, 0);
    assert.equal(outcome.shards, 6);
    assert.equal(outcome.executionProvider, 'cpu');

    const rows = await readJsonl<PredictionRow>(outcome.predictionsFile);
    assert.deepEqual(
      rows.map((r) => r.index),
      [...Array(40).keys()],
      'every index once, in order',
    );
    assert.deepEqual(new Set(rows.map((r) => r.path)), new Set(samples.map((s) => s.path)));

    const direct = await Classifier.load(suite.assets.modelPath);
    try {
      for (const row of rows) {
        const tensor = await preprocessImage(await fs.readFile(row.path), direct.info);
        const [probs] = await direct.infer([tensor]);
        const expected = direct.topK(probs!, 3);
        assert.deepEqual(
          row.predictions.map((p) => p.label),
          expected.map((p) => p.label),
          row.path,
        );
        row.predictions.forEach((p, i) =>
          assert.ok(Math.abs(p.score - expected[i]!.score) < 1e-5, `${row.path} score`),
        );
      }
    } finally {
      await direct.release();
    }
    const truth = new Map(samples.map((s) => [s.path, s.label]));
    const correct = rows.filter((r) => r.predictions[0]?.label === truth.get(r.path)).length;
    assert.ok(correct >= 38, `the colour classifier gets the sample colours right (${correct}/40)`);

    const summary = JSON.parse(await fs.readFile(path.join(outcome.outputDir, 'summary.json'), 'utf8')) as BatchSummary;
    assert.equal(summary.shardTimings.length, 6);
    assert.ok(summary.itemsPerSecond > 0);
  });

  test('the GPU worker serves Prometheus metrics: the SDK runtime and inferctl scoring', async () => {
    const text = await suite.metrics('gpu');
    const scored = /^inferctl_items_scored_total\{[^}]*execution_provider="cpu"[^}]*outcome="ok"[^}]*\} (\d+)/m.exec(
      text,
    );
    assert.ok(scored, 'items scored counter with provider and outcome tags');
    assert.ok(Number(scored[1]) >= 40, `counted the first job's 40 items (${scored[1]})`);
    assert.match(text, /^inferctl_inference_latency_bucket\{/m, 'inference latency histogram');
    assert.match(text, /^inferctl_batch_size_bucket\{/m, 'batch size histogram');
    assert.match(
      text,
      /^inferctl_execution_provider\{[^}]*execution_provider="cpu"[^}]*\} 1/m,
      'execution provider gauge',
    );
    assert.match(text, /^temporal_activity_execution_latency/m, "the SDK runtime's own metrics");
  });

  test('bad inputs are recorded with their reason and do not stop the job', async () => {
    const name = uniqueName('bad');
    const dir = path.join(suite.scratch, name, 'in');
    await writeSampleImages(dir, 5);
    const good = await fs.readFile(suite.assets.samples[0]!.path);
    await fs.writeFile(path.join(dir, 'zero.jpg'), Buffer.alloc(0));
    await fs.writeFile(path.join(dir, 'truncated.jpg'), good.subarray(0, Math.floor(good.length / 3)));
    await fs.writeFile(path.join(dir, 'notes.txt'), 'not an image');
    await fs.writeFile(path.join(dir, 'noise.png'), Buffer.from(Array.from({ length: 500 }, (_, i) => (i * 37) % 256)));

    // notes.txt is not an image by name: skipped and counted, unless the job asks for every file.
    const skipping: BatchOutcome = await run(job(`${name}-images`, dir));
    assert.deepEqual([skipping.totalItems, skipping.itemsFailed, skipping.skippedFiles], [8, 3, 1]);

    const outcome: BatchOutcome = await run({ ...job(name, dir), allFiles: true });
    assert.equal(outcome.skippedFiles, undefined);
    assert.equal(outcome.totalItems, 9);
    assert.equal(outcome.itemsOk, 5);
    assert.equal(outcome.itemsFailed, 4);
    const errors = await readJsonl<{ index: number; path: string; reason: string; message: string }>(
      outcome.errorsFile,
    );
    const byName = new Map(errors.map((e) => [path.basename(e.path), e]));
    assert.equal(byName.get('zero.jpg')?.reason, 'empty');
    assert.ok(
      ['corrupt', 'decode-failed'].includes(byName.get('truncated.jpg')!.reason),
      byName.get('truncated.jpg')?.reason,
    );
    assert.equal(byName.get('notes.txt')?.reason, 'unsupported-format');
    assert.ok(byName.has('noise.png'));
    for (const e of errors) assert.ok(e.message.length > 0, 'each error says what went wrong');
    const rows = await readJsonl<PredictionRow>(outcome.predictionsFile);
    const indices = [...rows.map((r) => r.index), ...errors.map((e) => e.index)].sort((a, b) => a - b);
    assert.deepEqual(indices, [...Array(9).keys()], 'every input is in exactly one of the two files');
  });

  test('raw outputs: raw.npy holds one float32 row per predictions.jsonl line; the summary says what it is', async () => {
    const name = uniqueName('raw');
    const dir = path.join(suite.scratch, name, 'in');
    await writeSampleImages(dir, 17);
    await fs.writeFile(path.join(dir, 'a-broken.jpg'), Buffer.from('garbage'));
    await fs.writeFile(path.join(dir, 'm-empty.png'), Buffer.alloc(0));
    const outcome: BatchOutcome = await run(job(name, dir, { rawOutputs: true, topK: 2 }));
    assert.equal(outcome.totalItems, 19);
    assert.equal(outcome.itemsFailed, 2);
    const info = await readModelInfo(suite.assets.modelPath);
    const classes = info.labels.length;

    const summary = JSON.parse(await fs.readFile(outcome.summaryFile, 'utf8')) as BatchSummary;
    assert.equal(summary.rawFile, path.join(outcome.outputDir, 'raw.npy'));
    assert.deepEqual(summary.rawShape, [17, classes]);
    assert.deepEqual(summary.modelOutput, { name: info.outputName, classes, dtype: 'float32' });
    assert.deepEqual(summary.preprocess, {
      resize: { width: info.width, height: info.height },
      channelOrder: 'RGB',
      layout: 'NCHW',
      scale: info.scale,
      mean: info.mean,
      std: info.std,
      // The rest of the resolved spec (issue #13): what a reader needs to redo the preprocessing.
      interpolation: info.interpolation,
      orientation: info.orientation,
      output: info.output,
    });
    assert.equal(outcome.rawFile, summary.rawFile, 'the workflow result names it too');

    const file = await fs.readFile(summary.rawFile);
    const header = parseNpyHeader(file);
    assert.deepEqual(header, { descr: '<f4', fortranOrder: false, shape: [17, classes], dataOffset: 128 });
    assert.equal(file.length, header.dataOffset + 17 * classes * 4);
    const values = new Float32Array(
      file.buffer.slice(file.byteOffset + header.dataOffset, file.byteOffset + file.length),
    );
    const rows = await readJsonl<PredictionRow>(outcome.predictionsFile);
    assert.equal(rows.length, 17);
    const errors = await readJsonl<{ index: number }>(outcome.errorsFile);
    assert.ok(
      errors.some((e) => e.index < rows[rows.length - 1]!.index),
      'a failed input sits between scored ones',
    );
    rows.forEach((r, i) => {
      const row = values.subarray(i * classes, (i + 1) * classes);
      r.predictions.forEach((p) => {
        const c = info.labels.indexOf(p.label);
        assert.equal(row[c], p.score, `raw row ${i} (input ${r.index}) holds ${p.label}'s score`);
      });
      assert.ok(
        row.every((v) => v <= r.predictions[0]!.score),
        `raw row ${i}: the top-1 score is the row's max`,
      );
    });
  });

  test('exceeding the error threshold fails the job and names the errors file', async () => {
    const name = uniqueName('threshold');
    const dir = path.join(suite.scratch, name, 'in');
    await writeSampleImages(dir, 4);
    for (let i = 0; i < 3; i++) await fs.writeFile(path.join(dir, `broken-${i}.jpg`), Buffer.from('garbage'));
    const handle = await suite.startBatch(job(name, dir, { errorThreshold: 2 }));
    const { workflow, activity, root } = await expectWorkflowFailure(handle, 'the job');
    assert.ok(workflow, 'the workflow itself failed the job');
    assert.equal(workflow.type, FailureType.ErrorThresholdExceeded);
    assert.equal(root, workflow, 'not the failure of a step');
    assert.equal(activity, undefined, 'every activity succeeded');
    assert.match(workflow.message, /3 input\(s\) could not be scored, over the error threshold \(2 input\(s\)\)/);
    const errorsFile = path.join(suite.scratch, name, 'out', 'errors.jsonl');
    assert.ok(workflow.message.includes(errorsFile), workflow.message);
    assert.equal((await readJsonl(errorsFile)).length, 3);
  });

  test('missing model, empty input directory and unwritable output fail with what to fix', async () => {
    const empty = path.join(suite.scratch, 'empty-in');
    await fs.mkdir(empty, { recursive: true });
    const aFile = path.join(suite.scratch, 'a-file');
    await fs.writeFile(aFile, 'x');
    const cases: Array<[Partial<BatchScoreInput>, FailureType, RegExp]> = [
      [{ modelPath: path.join(suite.scratch, 'missing.onnx') }, FailureType.ModelNotFound, /missing\.onnx/],
      [{ inputPath: empty }, FailureType.EmptyInput, /No inputs found in .*empty-in/],
      [{ inputPath: path.join(suite.scratch, 'no-such-dir') }, FailureType.InputNotFound, /Input not found/],
      [
        { outputDir: path.join(aFile, 'out') },
        FailureType.OutputNotWritable,
        // A file in the way is named as such, not as a permissions problem.
        /must be a directory, but \S+ is a file\. Choose another --output/,
      ],
    ];
    for (const [extra, type, message] of cases) {
      const name = uniqueName('invalid');
      const input = job(name, extra.inputPath ?? path.dirname(suite.assets.samples[0]!.path), extra);
      const { error, activity, root } = await expectWorkflowFailure(await suite.startBatch(input), `${type}: the job`);
      assert.ok(activity, `${type}: fails in an activity`);
      assert.equal(error.cause, activity, `${type}: the workflow lets the activity failure through`);
      assert.equal(activity.cause, root, `${type}: the activity's own failure`);
      assert.equal(root.type, type);
      assert.equal(root.nonRetryable, true);
      assert.match(root.message, message);
    }
  });
});
