/**
 * `inferctl score --entry-script … --model az://… --target aks` through bin/inferctl.js, on the aks doubles and
 * Azurite: the control worker lists and copies the model folder (several blobs, nested too) as it does for
 * `deploy --entry-script --target aks` (script-model.ts), the worker image carries it under
 * azureml-models/<name>/<version>/, and the script's init() in the pod finds it through AZUREML_MODEL_DIR;
 * every input is scored once and the pool is removed. A model on an endpoint the operator did not name is
 * refused before the pool is asked for (no credential is sent there, nothing is created). The dry run takes
 * the az:// model without reading storage.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { BLOB_MODEL_TAG } from '../../../src/targets/aks/gpu-pool-dry-run';
import type { GpuPoolDryRunReport } from '../../../src/targets/aks/gpu-pool-dry-run';
import {
  aksSuiteWithAzurite,
  assertGpuPoolGone,
  podJobFolders,
  scriptJobArgs,
  seedUserCluster,
} from '../../helpers/aks-fixtures';
import { runInferctl } from '../../helpers/cli';
import { readJsonl } from '../../helpers/jsonl';
import { BATCH_SCRIPTS, PYTHON_SKIP } from '../../helpers/script-fixtures';
import { uniqueName } from '../../helpers/workers';

const SCRIPT = path.join(BATCH_SCRIPTS, 'blob-folder', 'batch_score.py');
const CLUSTER = 'team-blob';

const scoreArgs = (model: string, input: string, output: string, ...more: string[]) => [
  'score',
  '--target',
  'aks',
  '--cluster',
  CLUSTER,
  '--gpu-nodes',
  '1',
  ...scriptJobArgs(SCRIPT, { model, input, output }),
  ...more,
];

describe('inferctl score --entry-script --model az://… --target aks', { skip: PYTHON_SKIP }, () => {
  const { suite, azurite } = aksSuiteWithAzurite('aks-bscript-blob-tq');
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-aks-bscript-blob-'));
    await fs.chmod(dir, 0o755); // the pods run as the image's user (1000): they read the inputs, write the shards
    await seedUserCluster(suite, CLUSTER, { team: 'research' });
    await azurite.container('models');
    await azurite.put('models', 'v3/weights/weights.txt', 'weights-from-blobs');
    await azurite.put('models', 'v3/weights/meta/info.txt', 'v3');
    await azurite.put('models', 'v3/weights-old/weights.txt', 'a sibling prefix, not part of the model');
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  const score = (name: string, args: string[]) =>
    runInferctl([...args, '--name', name, '--task-queue', suite.taskQueue], { timeoutMs: 600_000 });

  test('the model folder is copied from the blobs into the worker image; init() in the pod reads it; pool removed', async () => {
    const name = uniqueName('bsblob');
    const files: Record<string, string> = {};
    for (let i = 0; i < 5; i++) files[`item-${i}.txt`] = 'z'.repeat(i + 1);
    const { input, output } = await podJobFolders(dir, name, files);
    const run = await score(
      name,
      scoreArgs(azurite.url('models', 'v3', 'weights'), input, output, '--shard-size', '2', '--mini-batch-size', '2'),
    );
    const said = run.stderr + run.stdout + suite.bed.kubelet.events.join('\n');
    assert.equal(run.code, 0, said);

    const rows = await readJsonl<{ index: number; result: { file: string; bytes: number; model: string } }>(
      path.join(output, 'predictions.jsonl'),
    );
    assert.deepEqual(
      rows.map((r) => r.index),
      [...Array(5).keys()],
      'each input exactly once',
    );
    for (const r of rows) {
      assert.equal(r.result.bytes, files[r.result.file]!.length, `${r.result.file} was read by the script`);
      // Both blobs, the nested one too, as laid out in the image: nothing of the sibling prefix.
      assert.equal(r.result.model, 'weights-from-blobs (v3)');
    }
    // The image the pod ran was built by the registry from the context carrying the copied model.
    const started = suite.bed.kubelet.events.find((e) => e.startsWith(`started inferctl-${name}-`));
    assert.ok(
      [...suite.bed.arm.images.values()].some((i) => started?.includes(`:${i.tag} `)),
      'the registry built the worker image the pod ran',
    );
    await assertGpuPoolGone(suite, CLUSTER, name, run.stdout);
  });

  test('a model on an endpoint the operator did not name: refused before the pool is asked for, no credential sent', async () => {
    const name = uniqueName('bsblobno');
    const { input, output } = await podJobFolders(dir, name, { 'a.txt': 'a' });
    const other = `http://127.0.0.1:${azurite.port + 1}/devstoreaccount1/models/v3/weights`;
    const poolPuts = () =>
      suite.bed.arm.requests.filter(
        (r) => r.method === 'PUT' && r.path.includes(`/managedClusters/${CLUSTER}/agentPools/`),
      ).length;
    const before = poolPuts();
    const run = await score(name, scoreArgs(other, input, output));
    const said = run.stderr + run.stdout;
    assert.equal(run.code, 1, said);
    assert.match(
      said,
      /names the endpoint http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1, which is not an Azure Blob Storage endpoint .* so no storage credential is sent there/,
    );
    assert.equal(poolPuts(), before, 'no agent pool was asked for');
    assert.deepEqual(suite.bed.arm.clusterPools(CLUSTER), ['system']);
    assert.deepEqual(await fs.readdir(output), [], 'nothing was written');
  });
});

describe('inferctl score --entry-script --model az://… --target aks --dry-run', { skip: PYTHON_SKIP }, () => {
  test('prints the worker image (its tag waits for the model copy) without reading storage; an ONNX az:// model is refused', async () => {
    const model = 'az://nosuchaccount/models/v3/weights';
    const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' };
    const run = await runInferctl(
      [...scoreArgs(model, os.tmpdir(), '/tmp/out'), '--name', 'dry', '--dry-run', '--json'],
      {
        env,
      },
    );
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const report = JSON.parse(run.stdout) as GpuPoolDryRunReport;
    assert.match(report.image, new RegExp(`/inferctl-gpu-worker:${BLOB_MODEL_TAG}$`));
    assert.ok(
      report.scriptImage?.dockerfile.includes('COPY bundle /var/azureml-app'),
      'the model travels in the bundle',
    );

    const onnx = await runInferctl(
      [
        'score',
        '--target',
        'aks',
        '--cluster',
        'c',
        '--gpu-nodes',
        '1',
        '--model',
        model,
        '--input',
        os.tmpdir(),
        '--output',
        '/tmp/out',
        '--dry-run',
      ],
      { env },
    );
    assert.equal(onnx.code, 2, onnx.stderr + onnx.stdout);
    assert.match(onnx.stderr, /--model must be a local ONNX file \(got az:\/\/nosuchaccount\/models\/v3\/weights\)/);
  });
});
