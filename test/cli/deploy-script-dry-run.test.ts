/**
 * `inferctl deploy --entry-script … --dry-run` through bin/inferctl.js: nothing created, no worker needed;
 * the requirements with conda names mapped, the environment's hash, where script and model land; on aks the
 * Python image's Dockerfile (parsed as a builder parses it), its non-root user, and the key and TLS files
 * mounted 0440 as the ONNX server's are; with --gpu, the CUDA base and a warning for a CPU-only environment.
 * A script that does not compile is exit 2, as at validate. An az:// model is laid out by its last segment;
 * a blob URL carrying a SAS is exit 2.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { DockerfileParser } from 'dockerfile-ast';

import type { ScriptDryRunReport } from '../../src/cli/commands/script-dry-run';
import { PYTHON_SKIP, fixture } from '../helpers/script-fixtures';
import { runInferctl } from '../helpers/cli';

const inferctl = (args: string[], env: NodeJS.ProcessEnv) => runInferctl(args, { env });

describe('inferctl deploy --entry-script --dry-run', { skip: PYTHON_SKIP }, () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-script-dry-'));
    env = { ...process.env, INFERCTL_HOME: home, TEMPORAL_ADDRESS: '127.0.0.1:1' };
    delete env.INFERCTL_PYTHON_ENVS;
  });
  after(() => fs.rm(home, { recursive: true, force: true }));

  test('local: the environment it would build, with conda names mapped, and where everything lands', async () => {
    const conda = path.join(home, 'env.yml');
    await fs.writeFile(conda, 'dependencies:\n  - tensorflow-gpu = 2.16\n  - numpy\n  - pip:\n    - ujson\n');
    const run = await inferctl(
      [
        'deploy',
        '--entry-script',
        fixture('v2', 'score.py'),
        '--environment',
        conda,
        '--model',
        fixture('v2-model', 'colours'),
        '--dry-run',
        '--json',
      ],
      env,
    );
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as ScriptDryRunReport;
    assert.deepEqual(report.requirements, [
      'tensorflow==2.16.*',
      'numpy',
      'ujson',
      'azureml-inference-server-http==1.5.1',
    ]);
    assert.deepEqual(report.renamed, ['tensorflow-gpu → tensorflow']);
    assert.equal(report.environment.built, false);
    assert.ok(report.environment.dir.startsWith(path.join(home, 'local', '.python-envs')), report.environment.dir);
    assert.equal(report.app.AZUREML_MODEL_DIR, '<bundle>/app/azureml-models/colours/1');
    assert.equal(report.image, undefined);
    assert.deepEqual(await fs.readdir(home), ['env.yml'], 'nothing was created');
  });

  test('aks: the Python image’s Dockerfile, its non-root user, the key and TLS files mounted 0440', async () => {
    const run = await inferctl(
      [
        'deploy',
        '--entry-script',
        fixture('howto', 'score.py'),
        '--environment',
        fixture('howto', 'myenv.yml'),
        '--model',
        fixture('v2-model', 'colours'),
        '--model-name',
        'resnet50',
        '--target',
        'aks',
        '--dry-run',
        '--json',
      ],
      env,
    );
    assert.equal(run.code, 0, run.stderr);
    const { image } = JSON.parse(run.stdout) as ScriptDryRunReport;
    assert.ok(image);
    const dockerfile = DockerfileParser.parse(image.dockerfile);
    const instructions = dockerfile
      .getInstructions()
      .map((i): [string, string] => [i.getKeyword(), i.getArgumentsContent() ?? '']);
    const froms = instructions.filter(([k]) => k === 'FROM').map(([, a]) => a);
    assert.match(froms.at(-1)!, /^python:3\.\d+-slim-bookworm$/, 'the Python base of the environment’s minor version');
    assert.deepEqual(
      instructions.filter(([k]) => k === 'USER'),
      [['USER', '1000:1000']],
    );
    assert.ok(
      instructions.some(
        ([k, a]) => k === 'RUN' && /\/opt\/venv\/bin\/pip install .*-r \/opt\/venv\/requirements\.txt/.test(a),
      ),
    );
    assert.ok(instructions.some(([k, a]) => k === 'COPY' && a === 'bundle /var/azureml-app'));
    assert.deepEqual(image.args.slice(0, 7), [
      'dist/src/script/front-main.js',
      '--bundle',
      '/var/azureml-app',
      '--python',
      '/opt/venv/bin/python',
      '--api-key-file',
      '/etc/inferctl/api-key',
    ]);
    assert.ok(image.args.includes('--tls-cert'), 'HTTPS by default, as the ONNX server');
    assert.deepEqual(
      image.mounts.map((m) => [m.path, m.mode]),
      [
        ['/etc/inferctl/api-key', '0440'],
        ['/etc/inferctl-tls/tls.crt, tls.key', '0440'],
      ],
    );
    assert.equal(image.user, '1000:1000 (fsGroup 1000)');
  });

  test('aks --gpu: the CUDA base with the environment’s Python; a CPU-only environment is warned about; local refuses it', async () => {
    const dryRun = (environment: string, target = 'aks') =>
      inferctl(
        [
          'deploy',
          '--entry-script',
          fixture('v2', 'score.py'),
          '--environment',
          environment,
          '--model',
          fixture('v2-model', 'colours'),
          '--target',
          target,
          '--gpu',
          '--dry-run',
        ],
        env,
      );
    const cpuOnly = await dryRun(fixture('v2', 'requirements.txt'));
    assert.equal(cpuOnly.code, 0, cpuOnly.stderr);
    assert.match(
      cpuOnly.stdout,
      /The image ACR Tasks would build \(base nvcr\.io\/nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu22\.04\)/,
    );
    assert.match(cpuOnly.stdout, /FROM nvcr\.io\/nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu22\.04\n/);
    assert.match(cpuOnly.stdout, /apt-get install -y --no-install-recommends python3\.(\d+) python3\.\1-venv/);
    assert.match(cpuOnly.stdout, /RUN python3\.\d+ -m venv \/opt\/venv/);
    assert.match(cpuOnly.stdout, /Warning: the environment is CPU-only: nothing in it uses a GPU/);

    const requirements = path.join(home, 'gpu-requirements.txt');
    await fs.writeFile(requirements, 'azureml-inference-server-http==1.5.1\nonnxruntime-gpu==1.20.1\n');
    const gpu = await dryRun(requirements);
    assert.equal(gpu.code, 0, gpu.stderr);
    assert.match(gpu.stdout, /FROM nvcr\.io\/nvidia\/cuda:/);
    assert.doesNotMatch(gpu.stdout, /Warning:/);

    const local = await dryRun(requirements, 'local');
    assert.equal(local.code, 2);
    assert.match(local.stderr, /--gpu \(a CUDA base image for the script\) is for --target aks/);
  });

  test('a script that does not compile is exit 2, naming the line', async () => {
    const run = await inferctl(
      [
        'deploy',
        '--entry-script',
        fixture('syntax-error', 'score.py'),
        '--model',
        fixture('v2-model', 'colours'),
        '--dry-run',
      ],
      env,
    );
    assert.equal(run.code, 2);
    assert.match(run.stderr, /does not compile with Python 3\.\d+\.\d+:\n.*score\.py", line 5/);
  });

  test('an az:// model: where its folder lands (the worker lists and copies it), nothing read here; a bad URL is exit 2', async () => {
    const run = await inferctl(
      [
        'deploy',
        '--entry-script',
        fixture('v2', 'score.py'),
        '--model',
        'az://mlstore/models/v7/colours/',
        '--dry-run',
        '--json',
      ],
      env,
    );
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as ScriptDryRunReport;
    assert.equal(report.app.model, '<bundle>/app/azureml-models/colours/1/colours');
    const bad = await inferctl(
      ['deploy', '--entry-script', fixture('v2', 'score.py'), '--model', 'az://mlstore/models/x?sig=abc', '--dry-run'],
      env,
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /it carries a SAS token, which would be stored in the workflow history/);
  });
});
