/**
 * One flag table per worker: `inferctl gpu-worker` and `node dist/worker/gpu.js` (and `inferctl worker` and
 * `node dist/worker/control.js`) take the same flags and honour the same INFERCTL_* variables, each named in
 * --help and in docs/cli.md; a flag beats its variable, which beats the default.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, test } from 'node:test';

import { freePort } from '../../src/temporal/dev-server';
import { CONTROL_WORKER_FLAGS } from '../../worker/control-flags';
import { GPU_WORKER_FLAGS } from '../../worker/gpu-flags';
import type { WorkerFlagTable } from '../../worker/worker-flags';
import { uniqueName } from '../helpers/workers';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'inferctl.js');

/** The two entries of each worker: the CLI command and the worker file. */
const WORKERS: Array<{ kind: string; table: WorkerFlagTable; entries: string[][] }> = [
  {
    kind: 'gpu',
    table: GPU_WORKER_FLAGS,
    entries: [[BIN, 'gpu-worker'], [path.join(ROOT, 'dist', 'worker', 'gpu.js')]],
  },
  {
    kind: 'control',
    table: CONTROL_WORKER_FLAGS,
    entries: [[BIN, 'worker'], [path.join(ROOT, 'dist', 'worker', 'control.js')]],
  },
];

/** Variables that are set in this process's environment would leak into the runs: none of the tables' own. */
function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const { table } of WORKERS) for (const f of table) delete env[f.env];
  return { ...env, ...extra };
}

function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { env: cleanEnv(env), timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Starts a worker, returns its output once it prints `polling`, and stops it (SIGTERM, then waits). */
async function startupOutput(argv: string[], env: NodeJS.ProcessEnv, whileUp?: () => Promise<void>): Promise<string> {
  const child = spawn(process.execPath, argv, { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const deadline = Date.now() + 60_000;
    while (!/worker polling/i.test(output)) {
      assert.equal(child.exitCode, null, `exited early:\n${output}`);
      assert.ok(Date.now() < deadline, `no startup line in 60 s:\n${output}`);
      await delay(50);
    }
    await whileUp?.();
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  }
  return output;
}

/**
 * Runs `start` with a port probed free. The worker's metrics exporter cannot take port 0 and report it, so
 * another process can take the port between the probe and the bind: the worker then exits with "Address
 * already in use", and `start` runs again on another port.
 */
async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort());
    } catch (err) {
      if (attempt >= 5 || !/Address already in use/.test(String(err))) throw err;
    }
  }
}

/** A value each row must refuse: not a number, not a boolean, not a level. */
const BAD = 'not-a-value';

describe('one flag table per worker, with one environment fallback', () => {
  for (const { kind, table, entries } of WORKERS) {
    for (const entry of entries) {
      const label = entry.map((a) => path.basename(a)).join(' ');

      test(`${label}: every checked INFERCTL_* variable of the ${kind} worker is read (a bad value is named)`, async () => {
        // Rows whose values are checked (numbers, booleans, a level); the free-text ones are proved below.
        const checked = table.filter((f) => !['task-queue', 'deployment-name', 'build-id'].includes(f.name));
        const r = await run(entry, Object.fromEntries(checked.map((f) => [f.env, BAD])));
        assert.equal(r.code, 2, `bad input exits 2: ${r.stderr}`);
        for (const f of checked) assert.match(r.stderr, new RegExp(`${f.env} must be`), `${f.env} is read`);
        assert.equal(r.stderr.trim().split('\n').length, 1, 'every problem on one line');
      });

      test(`${label}: a flag beats its variable`, async () => {
        const r = await run([...entry, '--metrics-port', '0'], { INFERCTL_METRICS_PORT: '9464' });
        assert.equal(r.code, 2);
        assert.match(r.stderr, /--metrics-port must be a whole number ≥ 1 \(got 0\)/);
        assert.doesNotMatch(r.stderr, /INFERCTL_METRICS_PORT/);
      });
    }

    test(`inferctl ${kind === 'gpu' ? 'gpu-worker' : 'worker'} --help and docs/cli.md name every variable`, async () => {
      const help = await run([BIN, kind === 'gpu' ? 'gpu-worker' : 'worker', '--help'], {});
      const docs = fs.readFileSync(path.join(ROOT, 'docs', 'cli.md'), 'utf8');
      for (const f of table) {
        assert.match(help.stdout.replace(/\s+/g, ' '), new RegExp(`--(no-)?${f.name}\\b[^]*?${f.env}\\b`));
        assert.ok(docs.includes(`\`${f.env}`), `docs/cli.md names ${f.env}`);
      }
    });
  }

  for (const entry of WORKERS[0]!.entries) {
    const label = entry.map((a) => path.basename(a)).join(' ');
    test(`${label}: the variables set the GPU worker's queue, threads and metrics port`, async () => {
      const queue = uniqueName('env-gpu');
      let metrics = '';
      const output = await onFreePort((port) =>
        startupOutput(
          [...entry, '--sharp-concurrency', '3'],
          {
            INFERCTL_GPU_TASK_QUEUE: queue,
            INFERCTL_INFERENCE_THREADS: '2',
            INFERCTL_INTRA_OP_THREADS: '3',
            INFERCTL_INTER_OP_THREADS: '2',
            INFERCTL_ALLOW_SPINNING: '1',
            INFERCTL_SHARP_CONCURRENCY: '2',
            INFERCTL_UV_THREADPOOL_SIZE: '5',
            INFERCTL_METRICS_PORT: String(port),
          },
          async () => {
            metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          },
        ),
      );
      assert.match(output, new RegExp(`polling "?${queue}"?`));
      assert.match(
        output,
        /2 inference thread\(s\), onnxruntime intra-op 3, inter-op 2, spinning on; libvips 3 per image; libuv pool 5/,
        'the variables, and the flag over INFERCTL_SHARP_CONCURRENCY',
      );
      assert.match(metrics, /^# HELP /m, 'metrics served on INFERCTL_METRICS_PORT');
    });
  }

  for (const entry of WORKERS[1]!.entries) {
    const label = entry.map((a) => path.basename(a)).join(' ');
    test(`${label}: the variables set the control worker's queue and version`, async () => {
      const queue = uniqueName('env-control');
      const deployment = uniqueName('env-deployment');
      const versioned = await startupOutput(entry, {
        INFERCTL_CONTROL_TASK_QUEUE: queue,
        INFERCTL_WORKER_DEPLOYMENT: deployment,
        INFERCTL_BUILD_ID: 'env-build-1',
        INFERCTL_MAKE_CURRENT: '0',
      });
      assert.match(versioned, new RegExp(`polling "?${queue}"?`));
      assert.match(
        versioned,
        new RegExp(`worker deployment ${deployment}, build id env-build-1 \\(${deployment}\\.env-build-1: not current`),
      );
      const unversioned = await startupOutput(entry, {
        INFERCTL_CONTROL_TASK_QUEUE: uniqueName('env-control'),
        INFERCTL_UNVERSIONED_WORKER: '1',
      });
      assert.match(unversioned, /unversioned \(no Worker Deployment\)/);
    });
  }
});
