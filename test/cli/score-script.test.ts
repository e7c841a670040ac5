/**
 * `inferctl score --entry-script …` as a user types it, through bin/inferctl.js, real workers and real
 * Python environments (built from PyPI once per content hash, cached in ~/.cache/inferctl/test-script-envs):
 * a script with onnxruntime and Pillow over good and broken images, a script returning a pandas DataFrame
 * written in Azure ML's append_row shape, the error threshold counting failed mini-batches, and the flags'
 * usage errors.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { writeSampleImages } from '../../src/demo/sample-images';
import { runInferctl } from '../helpers/cli';
import { readJsonl } from '../helpers/jsonl';
import { BATCH_SCRIPTS, PYTHON_SKIP, fixture, scriptWorkers } from '../helpers/script-fixtures';
import { demoAssets, eventually, uniqueName } from '../helpers/workers';

describe('inferctl score --entry-script', { skip: PYTHON_SKIP }, () => {
  const set = scriptWorkers('score-script', { gpu: true });
  let modelPath: string;

  before(async () => {
    modelPath = (await demoAssets()).modelPath;
  });

  const score = (name: string, ...args: string[]) =>
    runInferctl(
      [
        'score',
        '--name',
        name,
        '--task-queue',
        set.controlQueue,
        '--gpu-queue',
        set.gpuQueue,
        '--shard-size',
        '5',
        ...args,
      ],
      { env: set.env, timeoutMs: 600_000 },
    );

  test('onnxruntime and Pillow over good and broken images: labels right, each broken file its own error', async () => {
    const input = path.join(set.scratch, 'images');
    const samples = await writeSampleImages(input, 9);
    await fs.writeFile(path.join(input, 'zz-not-an-image.jpg'), 'this is text');
    const good = await fs.readFile(samples[0]!.path);
    await fs.writeFile(path.join(input, 'zz-truncated.jpg'), good.subarray(0, 40));
    const output = path.join(set.scratch, 'out-onnx');
    const run = await score(
      uniqueName('onnx'),
      '--model',
      modelPath,
      '--input',
      input,
      '--output',
      output,
      '--entry-script',
      path.join(BATCH_SCRIPTS, 'onnx', 'batch_score.py'),
      // The how-to's environment (numpy, Pillow, onnxruntime, azureml-core): the one online deployments build.
      '--environment',
      fixture('howto', 'myenv.yml'),
      '--mini-batch-size',
      '1',
      '--mini-batch-timeout',
      '2m',
      '--error-threshold',
      '2',
    );
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const rows = await readJsonl<{ path: string; result: { file: string; label: string } }>(
      path.join(output, 'predictions.jsonl'),
    );
    const truth = new Map(samples.map((s) => [s.path, s.label]));
    assert.equal(rows.length, 9);
    for (const r of rows) assert.equal(r.result.label, truth.get(r.path), r.path);
    const errors = await readJsonl<{ path: string; reason: string; message: string }>(
      path.join(output, 'errors.jsonl'),
    );
    assert.deepEqual(
      errors.map((e) => [path.basename(e.path), e.reason]),
      [
        ['zz-not-an-image.jpg', 'run-raised'],
        ['zz-truncated.jpg', 'run-raised'],
      ],
    );
    assert.match(errors[0]!.message, /UnidentifiedImageError: cannot identify image file/);
    assert.match(run.stdout, /Scored 9 of 11 inputs \(2 failed\)/);
  });

  test('a DataFrame, in the append_row shape: predictions.csv, one line per input in input order', async () => {
    const input = path.join(set.scratch, 'files');
    await fs.mkdir(input, { recursive: true });
    const files = Array.from({ length: 12 }, (_, i) => `doc-${String(i).padStart(2, '0')}.bin`);
    for (const [i, f] of files.entries()) await fs.writeFile(path.join(input, f), Buffer.alloc(i * 3));
    const output = path.join(set.scratch, 'out-frame');
    const source = path.join(BATCH_SCRIPTS, 'dataframe');
    const run = await score(
      uniqueName('frame'),
      '--model',
      modelPath,
      '--input',
      input,
      '--output',
      output,
      '--entry-script',
      path.join(source, 'batch_score.py'),
      '--source-dir',
      source,
      '--environment',
      path.join(source, 'requirements.txt'),
      '--mini-batch-size',
      '4',
      '--output-action',
      'append_row',
    );
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const lines = (await fs.readFile(path.join(output, 'predictions.csv'), 'utf8')).trimEnd().split('\n');
    assert.deepEqual(
      lines,
      files.map((f, i) => `${f},${i * 3}`),
    );
  });

  test('failed mini-batches count against --error-threshold', async () => {
    const input = path.join(set.scratch, 'threshold');
    await fs.mkdir(input, { recursive: true });
    for (const f of ['a.txt', 'b-raise.txt', 'c.txt', 'd.txt']) await fs.writeFile(path.join(input, f), f);
    const model = path.join(set.scratch, 'model.txt');
    await fs.writeFile(model, 'm');
    const run = await score(
      uniqueName('threshold'),
      '--model',
      model,
      '--input',
      input,
      '--output',
      path.join(set.scratch, 'out-threshold'),
      '--entry-script',
      path.join(BATCH_SCRIPTS, 'basic', 'batch_score.py'),
      '--mini-batch-size',
      '2',
      '--error-threshold',
      '1',
    );
    assert.notEqual(run.code, 0);
    assert.match(
      run.stderr + run.stdout,
      /2 input\(s\) could not be scored, over the error threshold \(1 input\(s\)\)/,
    );
  });

  test('the script flags without --entry-script, and a bad --output-action, are usage errors', async () => {
    const base = ['--model', modelPath, '--input', set.scratch, '--output', path.join(set.scratch, 'never')];
    const stray = await score(uniqueName('stray'), ...base, '--mini-batch-size', '4', '--output-action', 'append_row');
    assert.equal(stray.code, 2);
    assert.match(stray.stderr, /--mini-batch-size, --output-action go with --entry-script/);
    const bad = await score(uniqueName('bad'), ...base, '--entry-script', 'x.py', '--output-action', 'summary_only');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--output-action must be jsonl or append_row \(got summary_only\)/);
    const onnxOnly = await score(uniqueName('raw'), ...base, '--entry-script', 'x.py', '--raw-outputs');
    assert.equal(onnxOnly.code, 2);
    assert.match(onnxOnly.stderr, /--raw-outputs are for ONNX models/);
  });

  test('schedule create --entry-script: a triggered run scores with the script', async () => {
    const name = uniqueName('nightly-script');
    const input = path.join(set.scratch, 'sched-in');
    await fs.mkdir(input, { recursive: true });
    for (const f of ['a.txt', 'b.txt', 'c.txt']) await fs.writeFile(path.join(input, f), f);
    const model = path.join(set.scratch, 'sched-model.txt');
    await fs.writeFile(model, 'nightly');
    const output = path.join(set.scratch, 'sched-out', '{date}');
    const created = await runInferctl(
      [
        'schedule',
        'create',
        name,
        '--cron',
        '0 2 * * *',
        '--model',
        model,
        '--input',
        input,
        '--output',
        output,
        '--entry-script',
        path.join(BATCH_SCRIPTS, 'basic', 'batch_score.py'),
        '--mini-batch-size',
        '2',
        '--mini-batch-timeout',
        '30s',
        '--task-queue',
        set.controlQueue,
        '--gpu-queue',
        set.gpuQueue,
      ],
      { env: set.env },
    );
    assert.equal(created.code, 0, created.stderr);
    try {
      assert.equal((await runInferctl(['schedule', 'trigger', name], { env: set.env })).code, 0);
      const run = await eventually(
        async () => {
          const described = await runInferctl(['schedule', 'describe', name, '--json'], { env: set.env });
          const view = JSON.parse(described.stdout) as { recentRuns: Array<{ scheduledAt: string; status?: string }> };
          return view.recentRuns.find((r) => r.status === 'COMPLETED');
        },
        'the triggered run to complete',
        120_000,
      );
      const slot = path.join(set.scratch, 'sched-out', run.scheduledAt.slice(0, 10));
      const rows = await readJsonl<{ result: { file: string; model: string } }>(path.join(slot, 'predictions.jsonl'));
      assert.deepEqual(
        rows.map((r) => [r.result.file, r.result.model]),
        [
          ['a.txt', 'nightly'],
          ['b.txt', 'nightly'],
          ['c.txt', 'nightly'],
        ],
      );
    } finally {
      await runInferctl(['schedule', 'delete', name], { env: set.env });
    }
  });
});
