/**
 * A scoring script's model as an az:// blob prefix, through bin/inferctl.js, on Azurite and the real
 * azureml-inference-server-http: a model folder of several blobs (nested too) deployed on local, found by
 * both Model.get_model_path (v1) and AZUREML_MODEL_DIR (v2); the same prefix scored in batch
 * (`score --entry-script --model az://…`); and what is refused at validate, before anything is created: an
 * endpoint the operator did not name (no credential is sent there), blob names that cannot be paths, an
 * empty prefix, an az:// ONNX model (scripts only).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { writeSampleImages } from '../../src/demo/sample-images';
import { listModelBlobs } from '../../src/storage/blob-tree';
import { LocalLayout } from '../../src/targets/local/layout';
import { useAzurite } from '../helpers/azurite';
import { runInferctl } from '../helpers/cli';
import { readJsonl } from '../helpers/jsonl';
import { BATCH_SCRIPTS, PYTHON_SKIP, fixture, pythonServersUnder, scriptWorkers } from '../helpers/script-fixtures';
import { demoAssets, uniqueName } from '../helpers/workers';

describe('a scoring script’s model as an az:// blob prefix', { skip: PYTHON_SKIP }, () => {
  const azurite = useAzurite();
  const set = scriptWorkers('blob-script', { gpu: true, extraEnv: () => azurite.env });
  const inferctl = (args: string[]) => runInferctl(args, { env: set.env, timeoutMs: 600_000 });

  before(async () => {
    const assets = await demoAssets();
    await azurite.container('models');
    // The model folder: the ONNX file, its labels and a nested file; a sibling prefix shares its name's start.
    await azurite.put('models', 'tiny-cnn/model.onnx', await fs.readFile(assets.modelPath));
    await azurite.put('models', 'tiny-cnn/labels.txt', await fs.readFile(assets.labelsPath));
    await azurite.put('models', 'tiny-cnn/meta/info.json', '{"name": "tiny-cnn from blobs"}');
    await azurite.put('models', 'tiny-cnn-old/model.onnx', 'not part of the model');
    await azurite.put('models', 'evil/ok.txt', 'fine');
    // Blob Storage (Azurite as Azure) reads a backslash in a name as '/': this blob is evil/sub/../../escape.txt.
    await azurite.put('models', 'evil/sub\\..\\..\\escape.txt', 'a name that climbs out of the folder');
  });

  test('deployed on local: Model.get_model_path and AZUREML_MODEL_DIR find the folder; smoke-checked; torn down', async () => {
    const assets = await demoAssets();
    const blue = assets.samples.find((s) => s.label === 'blue')!;
    const name = uniqueName('blobhowto');
    const deployed = await inferctl([
      'deploy',
      '--entry-script',
      fixture('blob-folder', 'score.py'),
      '--environment',
      fixture('howto', 'myenv.yml'),
      '--model',
      azurite.url('models', 'tiny-cnn'),
      '--smoke-sample',
      blue.path,
      '--expect-label',
      'blue',
      '--name',
      name,
      '--task-queue',
      set.controlQueue,
    ]);
    const layout = new LocalLayout(name);
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
      assert.match(
        deployed.stdout,
        /✔ validate \([^)]+\): scoring script: score\.py on Python 3\.\d+\.\d+, 6 requirement\(s\); model azureml-models\/tiny-cnn\/1\/tiny-cnn from 3 blob\(s\), \d+ bytes/,
      );
      assert.match(deployed.stdout, /✔ smokeQuery \([^)]+\): 200, top label "blue"/);
      assert.match(deployed.stdout, /"model": "tiny-cnn from blobs"/);
      // The bundle holds the three blobs under the model's folder, and nothing of the sibling prefix.
      const bundles = await fs.readdir(layout.bundlesDir).catch(() => [] as string[]);
      const found: string[] = [];
      for (const b of bundles) {
        const root = path.join(layout.bundlesDir, b, 'app', 'azureml-models', 'tiny-cnn', '1');
        for (const f of await fs.readdir(root, { recursive: true }).catch(() => [] as string[])) found.push(f);
      }
      assert.deepEqual(found.sort(), [
        'tiny-cnn',
        'tiny-cnn/labels.txt',
        'tiny-cnn/meta',
        'tiny-cnn/meta/info.json',
        'tiny-cnn/model.onnx',
      ]);
    } finally {
      const down = await inferctl(['teardown', name]);
      assert.equal(down.code, 0, down.stderr);
    }
    assert.deepEqual(await pythonServersUnder(layout.dir), [], 'no Python server is left');
  });

  test('refused at validate, nothing created: an unnamed endpoint, a name that climbs out of the folder, an empty prefix', async () => {
    const other = `http://127.0.0.1:${azurite.port + 1}/devstoreaccount1/models/tiny-cnn`;
    const cases: Array<[string[], RegExp]> = [
      [
        ['--entry-script', fixture('v2', 'score.py'), '--model', other],
        /names the endpoint http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1, which is not an Azure Blob Storage endpoint .* so no storage credential is sent there/,
      ],
      [
        ['--entry-script', fixture('v2', 'score.py'), '--model', azurite.url('models', 'evil')],
        /The model az:\/\/devstoreaccount1\/models\/evil cannot be copied to the worker: blob "evil\/sub\/\.\.\/\.\.\/escape\.txt" has a "\.\." segment/,
      ],
      [
        ['--entry-script', fixture('v2', 'score.py'), '--model', azurite.url('models', 'nothing-here')],
        /No model at az:\/\/devstoreaccount1\/models\/nothing-here: no blob of that name and none under it/,
      ],
    ];
    for (const [args, message] of cases) {
      const name = uniqueName('blobrefused');
      const run = await inferctl(['deploy', ...args, '--name', name, '--task-queue', set.controlQueue]);
      const output = run.stderr + run.stdout;
      assert.equal(run.code, 2, `${args.join(' ')}: ${output}`); // bad input
      assert.match(output, message);
      assert.match(output, /failed \(validate: /);
      assert.match(output, /Nothing was created/);
      assert.doesNotMatch(output, /provision|buildImage/);
    }
  });

  test('an az:// ONNX model is a usage error: blob models are for scoring scripts', async () => {
    const run = await inferctl(['deploy', '--model', azurite.url('models', 'tiny-cnn', 'model.onnx')]);
    assert.equal(run.code, 2, run.stderr + run.stdout);
    assert.match(run.stderr, /An az:\/\/ model is for a scoring script \(--entry-script\); download the ONNX model/);
  });

  test('the name checks and the size limit hold on the listing, before a byte is downloaded', async () => {
    await assert.rejects(
      listModelBlobs(azurite.url('models', 'tiny-cnn'), { ...azurite.env, INFERCTL_MAX_MODEL_BYTES: '100' }),
      /tiny-cnn cannot be copied to the worker: it is \d+ bytes in 3 blob\(s\), over this worker's limit of 100 \(INFERCTL_MAX_MODEL_BYTES\)/,
    );
    await azurite.put('models', 'clash/a', 'a file');
    await azurite.put('models', 'clash/a/b', 'and a folder');
    await assert.rejects(
      listModelBlobs(azurite.url('models', 'clash'), azurite.env),
      /"a" is both a blob and a folder/,
    );
    const listing = await listModelBlobs(azurite.url('models', 'tiny-cnn'), azurite.env);
    assert.deepEqual(
      listing.blobs.map((b) => b.relative),
      ['labels.txt', 'meta/info.json', 'model.onnx'],
    );
  });

  test('scored in batch: score --entry-script --model az://… lays the folder out for the script', async () => {
    const input = path.join(set.scratch, 'images');
    const samples = await writeSampleImages(input, 6);
    const output = path.join(set.scratch, 'out');
    const source = path.join(BATCH_SCRIPTS, 'folder-model');
    const run = await inferctl([
      'score',
      '--name',
      uniqueName('blobbatch'),
      '--task-queue',
      set.controlQueue,
      '--gpu-queue',
      set.gpuQueue,
      '--model',
      azurite.url('models', 'tiny-cnn'),
      '--input',
      input,
      '--output',
      output,
      '--entry-script',
      path.join(source, 'batch_score.py'),
      '--environment',
      fixture('howto', 'myenv.yml'),
      '--mini-batch-size',
      '3',
    ]);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const rows = await readJsonl<{ path: string; result: { label: string; model: string } }>(
      path.join(output, 'predictions.jsonl'),
    );
    const truth = new Map(samples.map((s) => [s.path, s.label]));
    assert.equal(rows.length, 6);
    for (const r of rows) {
      assert.equal(r.result.label, truth.get(r.path), r.path);
      assert.equal(r.result.model, 'tiny-cnn from blobs');
    }
  });
});
