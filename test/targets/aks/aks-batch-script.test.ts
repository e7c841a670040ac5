/**
 * `inferctl score --entry-script … --target aks --cluster C --gpu-nodes N` through bin/inferctl.js, on the
 * aks doubles: the job adds its GPU pool to the user's cluster, the worker image is built in the registry
 * double from the script's context (gpu-worker-image.ts: the online script image's environment, bundle and
 * user, with the GPU worker in place of the front), the kubelet stand-in assembles it as its Dockerfile
 * says (the venv and pip install inside the image) and runs the worker as the image's non-root user; the
 * worker runs the shards through one long-lived Python process per scoring slot, with the local path's
 * exactly-once rows. Every path removes the pool: a job over good and broken inputs, the pod's Python
 * process SIGKILLed mid-shard (the shard retried in the pod, no row lost or duplicated), and a script whose
 * init() raises (the job fails at once, not retried, with the traceback read by the worker in the pod).
 * The dry run (no testbed) prints the worker image's Dockerfile and the pool's cost.
 *
 * The inputs and outputs are local folders, which the pods reach only because the kubelet stand-in has no
 * mount namespace (made readable and writable for the pods' user 1000 here); on AKS they are az://.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { DockerfileParser } from 'dockerfile-ast';

import type { ShardRecord } from '../../../src/shared/batch-types';
import type { GpuPoolDryRunReport } from '../../../src/targets/aks/gpu-pool-dry-run';
import { assertGpuPoolGone, podJobFolders, scriptJobArgs, seedUserCluster } from '../../helpers/aks-fixtures';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { runInferctl } from '../../helpers/cli';
import { readJsonl } from '../../helpers/jsonl';
import { recordReliability, rowAccounting } from '../../helpers/reliability';
import { BATCH_SCRIPTS, PYTHON_SKIP, fixture, pythonServersUnder } from '../../helpers/script-fixtures';
import { eventually, uniqueName } from '../../helpers/workers';

const CLUSTER = 'team-batch';

interface Row {
  index: number;
  path: string;
  result: { file: string; bytes: number; model: string; pid: number; inits: number; secret: string | null };
}

describe('inferctl score --entry-script --target aks', { skip: PYTHON_SKIP }, () => {
  const suite = aksSuite('aks-bscript-tq');
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-aks-bscript-'));
    await fs.chmod(dir, 0o755); // the pods run as the image's user (1000): they read the inputs, write the shards
    await seedUserCluster(suite, CLUSTER, { team: 'research' });
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  const score = (name: string, ...args: string[]) =>
    runInferctl(
      [
        'score',
        '--target',
        'aks',
        '--cluster',
        CLUSTER,
        '--gpu-nodes',
        '1',
        '--name',
        name,
        '--task-queue',
        suite.taskQueue,
        ...args,
      ],
      { timeoutMs: 600_000 },
    );

  async function job(name: string, files: Record<string, string>) {
    const { input, output } = await podJobFolders(dir, name, files);
    const model = path.join(dir, name, 'model.txt');
    await fs.writeFile(model, 'weights-v7');
    return { input, output, model };
  }

  const assertPoolGone = (name: string, said: string) => assertGpuPoolGone(suite, CLUSTER, name, said);

  test('good and broken inputs: every input once in predictions.jsonl or errors.jsonl, one Python process per slot, pool removed', async () => {
    const name = uniqueName('bsaks');
    const files: Record<string, string> = {};
    for (let i = 0; i < 9; i++) files[`item-${i}.txt`] = 'x'.repeat(i + 1);
    files['bad-raise-1.txt'] = 'broken';
    files['bad-raise-2.txt'] = 'broken';
    const { input, output, model } = await job(name, files);
    const run = await score(
      name,
      ...scriptJobArgs(path.join(BATCH_SCRIPTS, 'basic', 'batch_score.py'), { model, input, output }),
      '--source-dir',
      path.join(BATCH_SCRIPTS, 'basic'),
      '--shard-size',
      '4',
      '--mini-batch-size',
      '1',
      '--error-threshold',
      '5',
    );
    const said = run.stderr + run.stdout + suite.bed.kubelet.events.join('\n');
    assert.equal(run.code, 0, said);

    const rows = await readJsonl<Row>(path.join(output, 'predictions.jsonl'));
    const errors = await readJsonl<{ index: number; path: string; reason: string; message: string }>(
      path.join(output, 'errors.jsonl'),
    );
    const names = (list: Array<{ path: string }>) => list.map((r) => path.basename(r.path)).sort();
    assert.deepEqual(
      names(rows),
      Object.keys(files)
        .filter((f) => !f.includes('raise'))
        .sort(),
      'every good input exactly once',
    );
    assert.deepEqual(names(errors), ['bad-raise-1.txt', 'bad-raise-2.txt'], 'every broken input exactly once');
    assert.deepEqual(
      [...rows, ...errors].map((r) => r.index).sort((a, b) => a - b),
      [...Array(11).keys()],
      'each index once across both files',
    );
    for (const e of errors) {
      assert.equal(e.reason, 'run-raised');
      assert.match(e.message, /ValueError: cannot score bad-raise-\d\.txt/);
    }
    for (const r of rows) {
      assert.equal(r.result.bytes, files[r.result.file]!.length, `${r.result.file} was read by the script`);
      // The model as laid out in the image (AZUREML_MODEL_DIR), read by init().
      assert.equal(r.result.model, 'weights-v7');
      assert.equal(r.result.secret, null, 'nothing of the worker’s reaches the script');
    }
    // One scoring slot on one pod: one long-lived Python process scored every shard, init() once.
    assert.deepEqual([...new Set(rows.map((r) => `${r.result.pid}/${r.result.inits}`))].length, 1);
    assert.deepEqual([...new Set(rows.map((r) => r.result.inits))], [1]);

    // The worker ran the image's bundle as the image's user, from the registry's build of the script's context.
    const started = suite.bed.kubelet.events.find((e) => e.startsWith(`started inferctl-${name}-`));
    assert.match(started ?? said, /as 1000:1000 \(groups 1000\)/);
    const record = [...suite.bed.arm.images.values()].find((i) => started?.includes(`:${i.tag} `));
    assert.ok(record, 'the registry built the worker image the pod ran');
    assert.match(run.stdout, /Removed: /);
    await assertPoolGone(name, run.stdout);
  });

  test('the Python process in the pod SIGKILLed mid-shard: the shard is retried there, no row lost or duplicated', async () => {
    const name = uniqueName('bskill');
    const total = 16;
    const files: Record<string, string> = {};
    for (let i = 0; i < total; i++) files[`item-${String(i).padStart(2, '0')}.txt`] = 'y'.repeat(i + 1);
    const { input, output, model } = await job(name, files);
    await fs.writeFile(model, 'sleep=0.25'); // each run() takes a quarter of a second: the kill lands mid-shard
    const running = score(
      name,
      ...scriptJobArgs(path.join(BATCH_SCRIPTS, 'basic', 'batch_score.py'), { model, input, output }),
      '--shard-size',
      String(total),
      '--mini-batch-size',
      '2',
      '--keep-shards',
    );
    const partial = path.join(output, 'shards', 'shard-000000.attempt-1.partial', 'predictions.jsonl');
    await eventually(
      async () => ((await fs.stat(partial).catch(() => undefined))?.size ?? 0) > 0 || undefined,
      'attempt 1 to write rows in the pod',
      300_000,
    );
    // The pod's Python process: the kubelet stand-in runs it on this machine, its app root in the image.
    const [pid] = await pythonServersUnder('/var/azureml-app/app');
    assert.ok(pid, 'the worker in the pod runs the script in a Python process of its own');
    process.kill(pid, 'SIGKILL');
    const run = await running;
    assert.equal(run.code, 0, run.stderr + run.stdout);

    const rows = await readJsonl<Row>(path.join(output, 'predictions.jsonl'));
    const indices = rows.map((r) => r.index);
    const accounting = rowAccounting(indices, total);
    recordReliability({
      test: 'aks script batch: the Python process in the GPU-worker pod SIGKILLed mid-shard',
      faultsInjected: 1,
      survived: rows.length === total,
      ...accounting,
    });
    assert.deepEqual(indices, [...Array(total).keys()], 'each input exactly once, in order');
    assert.deepEqual(accounting, { rowsLost: 0, rowsDuplicated: 0 });
    const done = JSON.parse(
      await fs.readFile(path.join(output, 'shards', 'shard-000000', 'done.json'), 'utf8'),
    ) as ShardRecord;
    assert.equal(done.attempts, 2, 'the shard was retried once');
    assert.ok(
      rows.some((r) => r.result.pid !== pid),
      'rows after the kill come from a new process',
    );
    await assertPoolGone(name, run.stdout);
  });

  test('init() raising: the job fails at once with the traceback, not retried, and the pool is removed', async () => {
    const name = uniqueName('bsinit');
    const { input, output, model } = await job(name, { 'a.txt': 'a', 'b.txt': 'b' });
    const run = await score(
      name,
      ...scriptJobArgs(path.join(BATCH_SCRIPTS, 'init-raises', 'batch_score.py'), { model, input, output }),
    );
    const said = run.stderr + run.stdout;
    assert.equal(run.code, 1, said);
    assert.match(said, /init\(\) raised/);
    assert.match(
      said,
      /FileNotFoundError: no model at \S*\/var\/azureml-app\/app\/azureml-models\/model\.txt\/1\/missing\.onnx/,
    );
    assert.match(said, /The GPU pool and its pods were removed/);
    await assertPoolGone(name, said);

    // The shard failed on its first attempt, non-retryable: init() raising is the script's, not a fault.
    const history = await suite.client.workflow.getHandle(`score-${name}-batch`).fetchHistory();
    const events = history.events ?? [];
    const failed = events.filter((e) => e.activityTaskFailedEventAttributes);
    assert.ok(failed.length >= 1, 'a shard failed');
    for (const e of failed) {
      const attrs = e.activityTaskFailedEventAttributes!;
      assert.equal(attrs.failure?.applicationFailureInfo?.nonRetryable, true);
      assert.equal(attrs.failure?.applicationFailureInfo?.type, 'ScriptInitFailed');
      const started = events.find(
        (s) => String(s.eventId) === String(attrs.startedEventId),
      )?.activityTaskStartedEventAttributes;
      assert.equal(started?.attempt, 1, 'one attempt');
    }
  });
});

describe('inferctl score --entry-script --target aks --dry-run', { skip: PYTHON_SKIP }, () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-aks-bscript-dry-'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  const dryRun = async (environment: string, ...more: string[]) => {
    const model = path.join(dir, 'weights');
    await fs.mkdir(model, { recursive: true });
    await fs.writeFile(path.join(model, 'w.bin'), 'weights');
    return runInferctl(
      [
        'score',
        '--target',
        'aks',
        '--cluster',
        'team',
        '--gpu-nodes',
        '2',
        '--entry-script',
        path.join(BATCH_SCRIPTS, 'basic', 'batch_score.py'),
        '--environment',
        environment,
        '--model',
        model,
        '--input',
        dir,
        '--output',
        path.join(dir, 'out'),
        '--name',
        'dry',
        '--dry-run',
        ...more,
      ],
      { env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' } },
    );
  };

  test('prints the worker image’s Dockerfile (slim Python for a CPU-only environment, with a note) and the cost', async () => {
    const run = await dryRun(fixture('v2', 'requirements.txt'));
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /Dry run: nothing is created/);
    assert.match(run.stdout, /the scoring script's worker image on python:3\.\d+-slim-bookworm/);
    assert.match(run.stdout, /note: the environment is CPU-only/);
    assert.match(
      run.stdout,
      /Dockerfile:\n {4}# Built by inferctl: a batch job's GPU worker running the scoring script/,
    );
    assert.match(run.stdout, /^ {4}COPY src\/script\/batch_driver\.py \.\/src\/script\/batch_driver\.py$/m);
    assert.match(run.stdout, /^ {4}USER 1000:1000$/m);
    assert.match(run.stdout, /for 1 h of job +\$\d+\.\d\d/);
    assert.deepEqual(await fs.readdir(dir), ['weights'], 'nothing was created');
  });

  test('--json: a GPU environment gets the CUDA base; the pods run the bundle as the image’s user', async () => {
    const requirements = path.join(dir, 'requirements.txt');
    await fs.writeFile(requirements, 'onnxruntime-gpu\nnumpy\n');
    const run = await dryRun(requirements, '--json');
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const report = JSON.parse(run.stdout) as GpuPoolDryRunReport;
    const image = report.scriptImage!;
    assert.equal(image.base, 'nvcr.io/nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04');
    assert.deepEqual(image.warnings, []);
    const instructions = DockerfileParser.parse(image.dockerfile).getInstructions();
    const lines = instructions.map((i) => i.toString().trim());
    assert.ok(lines.includes('USER 1000:1000'), 'a non-root user');
    assert.ok(lines.includes('COPY bundle /var/azureml-app'), 'the bundle, as the online image');
    assert.ok(lines.some((l) => /^RUN \/opt\/venv\/bin\/pip install .* -r \/opt\/venv\/requirements\.txt$/.test(l)));
    assert.ok(!lines.some((l) => l.startsWith('EXPOSE')), 'the worker listens on nothing');
    const deployment = report.kubernetesObjects.find((o) => o.kind === 'Deployment') as unknown as {
      spec: { template: { spec: { containers: Array<{ args: string[] }> } } };
    };
    const args = deployment.spec.template.spec.containers[0]!.args;
    assert.deepEqual(args.slice(-4), [
      '--script-bundle',
      '/var/azureml-app',
      '--script-python',
      '/opt/venv/bin/python',
    ]);
  });
});
