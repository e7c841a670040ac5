/**
 * A newcomer's first session, through `bin/inferctl.js` against the run's dev server: deploy returns as soon
 * as it has printed its last line; exit codes mean one thing everywhere (0 done, 1 failed, 2 bad input);
 * `--json` on score status; jobs and ended deployments can be found and read; the small things.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { writeSampleImages } from '../../src/demo/sample-images';
import { freePort } from '../../src/temporal/dev-server';
import { demoAssets, eventually, startControlWorker, startGpuWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';
import { runInferctl } from '../helpers/cli';
import type { CliRun } from '../helpers/cli';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'inferctl.js');

type Run = CliRun;

const inferctl = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runInferctl(args, { env: { ...process.env, ...env }, timeoutMs: 180_000 });

/** Runs the command and measures how long the process lived after the last thing it printed. */
function timedRun(args: string[]): Promise<Run & { lingerMs: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let lastOutput = Date.now();
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      lastOutput = Date.now();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      lastOutput = Date.now();
    });
    child.once('exit', (code) => resolve({ code: code ?? 1, stdout, stderr, lingerMs: Date.now() - lastOutput }));
  });
}

describe('a newcomer’s first session', () => {
  const controlQueue = uniqueName('newcomer-control');
  const gpuQueue = uniqueName('newcomer-gpu');
  const workers: WorkerProcess[] = [];
  let scratch: string;
  let assets: Awaited<ReturnType<typeof demoAssets>>;

  before(async () => {
    assets = await demoAssets();
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-newcomer-'));
    workers.push(await startControlWorker(controlQueue), await startGpuWorker(gpuQueue));
  });
  after(async () => {
    for (const w of workers) await w.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  test('deploy exits right after its last line; status, list and teardown read well before and after', async (t) => {
    const name = uniqueName('first');
    const deployed = await timedRun([
      'deploy',
      '--model',
      assets.modelPath,
      '--name',
      name,
      '--ttl',
      '1h',
      '--task-queue',
      controlQueue,
    ]);
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.match(deployed.stdout, new RegExp(`Stop sooner: inferctl teardown ${name}\\n$`));
    t.diagnostic(`deploy exited ${deployed.lingerMs} ms after its last line`);
    // It used to hold the terminal ~19 s more: the result's long poll was left open.
    assert.ok(deployed.lingerMs < 2500, `deploy exited ${deployed.lingerMs} ms after its last line`);
    assert.match(
      deployed.stdout,
      /validate.*preprocessing from the model's metadata "inferctl\.preprocess", labels from/,
    );

    const listed = await inferctl(['list']);
    assert.equal(listed.code, 0, listed.stderr);
    const lines = listed.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^NAME +STATUS +STAGE +TARGET +ENDPOINT +COST +STARTED +ENDED$/, 'a header row');
    assert.match(listed.stdout, new RegExp(`^${name} +running +serving +local +http://127\\.0\\.0\\.1:\\d+ `, 'm'));

    const down = await inferctl(['teardown', name]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /Torn down: (\d+) resource\(s\) removed\.\n( {2}removed .+\n)+$/);
    const count = Number(/Torn down: (\d+)/.exec(down.stdout)?.[1]);
    assert.equal(down.stdout.match(/^ {2}removed /gm)?.length, count, 'each removed resource named');

    const status = await inferctl(['status', name]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^${name}: completed at \\S+ \\(teardown requested\\), stage done`));
    assert.match(status.stdout, /was at http:\/\/127\.0\.0\.1:\d+ \(removed\)/);
    assert.doesNotMatch(status.stdout, /serving/, 'an ended deployment is not shown serving');

    await eventually(async () => {
      const all = await inferctl(['list', '--all']);
      // … its cost (the ledger's total, e.g. `USD 0.00`), start and end.
      return new RegExp(`^${name} +completed +done +local +[A-Z]{3} [\\d.]+ +\\S+ +\\S+$`, 'm').test(all.stdout)
        ? true
        : undefined;
    }, 'the ended deployment in list --all, with its stage and end');
  });

  test('a corrupt model is bad input (2) in deploy and model inspect; list --stage failed finds it; status exits 1', async () => {
    const corrupt = path.join(scratch, 'corrupt.onnx');
    await fs.writeFile(corrupt, Buffer.from('not an onnx model at all'));
    const name = uniqueName('corrupt');
    const deployed = await inferctl(['deploy', '--model', corrupt, '--name', name, '--task-queue', controlQueue]);
    assert.equal(deployed.code, 2, `deploy: ${deployed.stderr}`);
    assert.match(deployed.stderr, /not a valid ONNX model/);
    const inspected = await inferctl(['model', 'inspect', corrupt]);
    assert.equal(inspected.code, 2, `model inspect: ${inspected.stderr}`);

    const found = await eventually(async () => {
      const failed = await inferctl(['list', '--stage', 'failed', '--json']);
      const rows = JSON.parse(failed.stdout) as Array<{ name: string; execution: string; stage: string }>;
      return rows.find((r) => r.name === name);
    }, 'the failed deployment in list --stage failed');
    assert.deepEqual([found.execution, found.stage], ['FAILED', 'failed']);

    const status = await inferctl(['status', name, '--json']);
    assert.equal(status.code, 1, 'the status of a failed deployment is a failure');
    const view = JSON.parse(status.stdout) as { execution: string; failure: string };
    assert.equal(view.execution, 'FAILED');
    assert.match(view.failure, /not a valid ONNX model/);
  });

  test('score list, score status with --json and its files, exit 1 for a failed job, a hint for a missing one', async () => {
    const input = path.join(scratch, 'images');
    await writeSampleImages(input, 5);
    await fs.writeFile(path.join(input, 'broken.jpg'), Buffer.from('not a jpeg'));
    await fs.writeFile(path.join(input, 'labels.txt'), 'not an image, by its name');
    const job = (name: string, ...more: string[]) => [
      'score',
      '--model',
      assets.modelPath,
      '--input',
      input,
      '--output',
      path.join(scratch, name),
      '--name',
      name,
      '--task-queue',
      controlQueue,
      '--gpu-queue',
      gpuQueue,
      ...more,
    ];
    const okName = uniqueName('tolerant');
    const scored = await inferctl(job(okName));
    assert.equal(scored.code, 0, scored.stderr);
    assert.match(scored.stdout, /^Scored 5 of 6 inputs \(1 failed\)/m, 'labels.txt is not an input');
    assert.match(
      scored.stdout,
      /^Skipped 1 file\(s\) whose names are not images \(--all-files scores every file\)\.$/m,
    );
    const failName = uniqueName('strict');
    // --all-files: labels.txt is scored too (and fails, as broken.jpg does).
    const strict = await inferctl(job(failName, '--error-threshold', '0', '--all-files'));
    assert.equal(strict.code, 1, `a job that fails is a failure: ${strict.stderr}`);

    const status = await inferctl(['score', 'status', okName]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`score-${okName}: completed, 5/6 scored, 1 failed`));
    assert.match(status.stdout, /errors: +\S+errors\.jsonl \(1 input\(s\) that could not be scored/);
    assert.match(status.stdout, /summary: +\S+summary\.json/);
    assert.match(status.stdout, /Skipped 1 file\(s\)/);
    const json = await inferctl(['score', 'status', okName, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const view = JSON.parse(json.stdout) as { summary: { errorsFile: string; summaryFile: string } };
    assert.match(view.summary.summaryFile, /summary\.json$/);

    const failed = await inferctl(['score', 'status', failName, '--json']);
    assert.equal(failed.code, 1, 'a failed job’s status does not exit 0');
    assert.equal((JSON.parse(failed.stdout) as { execution: string }).execution, 'FAILED');

    const missing = await inferctl(['score', 'status', uniqueName('nosuchjob')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /No batch job named .* See the jobs with: inferctl score list/);

    await eventually(async () => {
      const listed = await inferctl(['score', 'list']);
      const ok = new RegExp(`^${okName} +completed +\\S+ +\\d/6 `, 'm').test(listed.stdout);
      const bad = new RegExp(`^${failName} +failed `, 'm').test(listed.stdout);
      return /^NAME +STATUS +STAGE +ITEMS +MODEL +STARTED +ENDED$/m.test(listed.stdout) && ok && bad ? true : undefined;
    }, 'both jobs in score list, under a header');
    const listed = JSON.parse((await inferctl(['score', 'list', '--json'])).stdout) as Array<{ name: string }>;
    assert.ok(listed.some((j) => j.name === okName));
  });

  test('an output path that is a file is said to be a file, not a permissions problem', async () => {
    const file = path.join(scratch, 'results.txt');
    await fs.writeFile(file, 'a file, not a directory');
    const input = path.join(scratch, 'few');
    await writeSampleImages(input, 2);
    const run = await inferctl([
      'score',
      '--model',
      assets.modelPath,
      '--input',
      input,
      '--output',
      file,
      '--task-queue',
      controlQueue,
      '--gpu-queue',
      gpuQueue,
    ]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /must be a directory, but it is a file/);
    assert.doesNotMatch(run.stderr, /permissions/);
  });

  test('dev on another port names the TEMPORAL_ADDRESS the worker needs', async () => {
    const [port, uiPort] = [await freePort(), await freePort()];
    const child = spawn(
      process.execPath,
      [BIN, 'dev', '--port', String(port), '--ui-port', String(uiPort), '--data-dir', path.join(scratch, 'dev')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await eventually(
        () => Promise.resolve(/Next, in another terminal/.test(output) ? true : undefined),
        'dev ready',
        120_000,
      );
      assert.match(output, new RegExp(`export TEMPORAL_ADDRESS=127\\.0\\.0\\.1:${port}; then inferctl worker`));
    } finally {
      child.kill('SIGINT');
      await exited;
    }
  });

  test('help shows defaults with their units and where rollout runs', async () => {
    const deploy = (await inferctl(['deploy', '--help'])).stdout.replace(/\s+/g, ' ');
    assert.match(deploy, /--ttl <duration\|none> .*\(default: 1h\)/);
    const rollout = (await inferctl(['rollout', '--help'])).stdout.replace(/\s+/g, ' ');
    assert.match(rollout, /--bake <duration> .*\(default: 5m\)/);
    assert.match(rollout, /--canary <percent> .*\(default: 10%\)/);
    assert.match(rollout, /Local and aks targets/);
  });

  test('npx inferctl prints no npm warning about the project config', async (t) => {
    const npx = await new Promise<Run>((resolve) =>
      execFile(
        'npx',
        ['--no-install', 'inferctl', '--version'],
        { cwd: ROOT, timeout: 60_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      ),
    );
    if (npx.code !== 0 && /ENOENT|not found/.test(npx.stderr + String(npx.code))) {
      t.skip('npx is not installed here');
      return;
    }
    assert.equal(npx.code, 0, npx.stderr);
    assert.match(npx.stdout, /^\d+\.\d+\.\d+/);
    assert.doesNotMatch(npx.stderr, /Unknown (project|user|env) config/);
  });
});
