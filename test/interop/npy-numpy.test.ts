/**
 * A batch job's raw.npy, loaded by real NumPy (numpy.load, pinned in test/interop/requirements.txt, in
 * test/.venv): the shape is (scored inputs, classes), the dtype float32, and row i is line i of
 * predictions.jsonl: its argmax is the top-1 label's index and its value the top-1 score, with failed
 * inputs leaving no row. Skipped, with a note, when python3 is missing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { writeSampleImages } from '../../src/demo/sample-images';
import { readModelInfo } from '../../src/model/model-info';
import type { BatchSummary } from '../../src/shared/batch-types';
import type { BatchOutcome } from '../../workflows/batch-score';
import { readJsonl } from '../helpers/jsonl';
import { uniqueName } from '../helpers/workers';
import { workflowSuite } from '../helpers/workflow-suite';
import { REPO_ROOT, pythonVenv, runPythonJson } from '../helpers/python-venv';
import type { PythonEnv } from '../helpers/python-venv';

interface NumpyView {
  numpy: string;
  shape: number[];
  dtype: string;
  c_contiguous: boolean;
  mmap_equal: boolean;
  resave_identical: boolean;
  finite: boolean;
  rows: Array<{ argmax: number; max: number | null; top: Array<[number, number]> }>;
}

interface PredictionRow {
  index: number;
  path: string;
  predictions: Array<{ label: string; score: number }>;
}

describe('raw.npy in NumPy', () => {
  const suite = workflowSuite('npy', { gpu: {} });
  let env: PythonEnv;

  before(async () => {
    env = await pythonVenv(path.join(REPO_ROOT, 'test', 'interop', 'requirements.txt'));
  });

  test('numpy.load reads raw.npy; row i is predictions.jsonl line i (argmax = top-1 label, value = score)', async (t) => {
    if (env.skip !== undefined) {
      t.skip(env.skip);
      return;
    }
    const name = uniqueName('npy');
    const dir = path.join(suite.scratch, name, 'in');
    await writeSampleImages(dir, 23);
    await fs.writeFile(path.join(dir, 'blue-broken.jpg'), Buffer.from('not a jpeg'));
    await fs.writeFile(path.join(dir, 'green-empty.jpg'), Buffer.alloc(0));
    const topK = 3;
    const input = suite.batchInput({ name, inputPath: dir, shardSize: 5, batchSize: 2, topK, rawOutputs: true });
    const outcome: BatchOutcome = await (await suite.startBatch(input)).result();
    assert.equal(outcome.itemsOk, 23);
    assert.equal(outcome.itemsFailed, 2);

    const summary = JSON.parse(await fs.readFile(outcome.summaryFile, 'utf8')) as BatchSummary;
    const info = await readModelInfo(suite.assets.modelPath);
    const classes = info.labels.length;
    const view = await runPythonJson<NumpyView>(env.python, path.join(REPO_ROOT, 'test', 'interop', 'npy_check.py'), [
      summary.rawFile!,
      String(topK),
    ]);
    t.diagnostic(`NumPy ${view.numpy} loaded ${summary.rawFile} as ${view.dtype} ${JSON.stringify(view.shape)}`);
    assert.deepEqual(view.shape, [23, classes]);
    assert.deepEqual(summary.rawShape, view.shape, 'the summary records the shape NumPy sees');
    assert.equal(view.dtype, '<f4');
    assert.equal(view.c_contiguous, true);
    assert.equal(view.mmap_equal, true, 'np.load(mmap_mode="r") reads the same array');
    assert.equal(view.resave_identical, true, 'np.save would write the very same bytes');
    assert.equal(view.finite, true, 'no NaN rows: failed inputs have no row');

    const rows = await readJsonl<PredictionRow>(outcome.predictionsFile);
    assert.equal(rows.length, view.rows.length, 'one raw row per predictions.jsonl line');
    const failed = new Set((await readJsonl<{ index: number }>(outcome.errorsFile)).map((e) => e.index));
    assert.equal(failed.size, 2);
    rows.forEach((line, i) => {
      const row = view.rows[i]!;
      const top1 = line.predictions[0]!;
      assert.equal(
        info.labels[row.argmax],
        top1.label,
        `raw row ${i} (input ${line.index}): argmax is the top-1 label`,
      );
      assert.equal(row.max, top1.score, `raw row ${i} (input ${line.index}): its max is the top-1 score`);
      assert.deepEqual(
        row.top.map(([c, v]) => ({ label: info.labels[c], score: v })),
        line.predictions,
        `raw row ${i}: its top-${topK} is the line's`,
      );
      assert.equal(failed.has(line.index), false);
    });
  });
});
