/**
 * `npm run bench:script-deploy` (issue #25 §3): how long `inferctl deploy --entry-script` takes from the
 * command to its first 200, the smoke query the command waits for, with the how-to's `score.py` and conda
 * file (test/fixtures/scripts/howto: azureml-core, onnxruntime, Pillow, …) on the local target.
 *   first build   an empty environment store (INFERCTL_PYTHON_ENVS): the environment is built from the conda
 *                 file with pip from PyPI (pip's own download cache as this machine has it: say so when citing)
 *   cached        the same deployment again (`--rounds N` times, default 3): the environment is found by its
 *                 content hash and reused; what remains is the Python server's start and the script's init()
 * Through bin/inferctl.js as a user runs it, against a Temporal dev server and a control worker started here;
 * each deployment is torn down (`inferctl teardown`) and must leave nothing. Writes
 * bench/results/script-deploy-<date>.json and .md, with each step's duration as the command printed it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { ensureDemoAssets } from '../src/demo/demo-assets';
import { LocalLayout } from '../src/targets/local/layout';
import { findProcessesByMarker } from '../src/targets/local/processes';
import { startDevServer } from '../src/temporal/dev-server';
import { runControlWorker } from '../worker/control';
import { installWorkerRuntime } from '../worker/runtime';
import { log, RESULTS, ROOT } from './batch-harness';
import { checkBenchArgs } from './bench-cli';

const INFERCTL = path.join(ROOT, 'bin', 'inferctl.js');
const HOWTO = path.join(ROOT, 'test', 'fixtures', 'scripts', 'howto');
const TASK_QUEUE = 'bench-script-deploy';

interface DeployRun {
  kind: 'first build' | 'cached';
  /** From the command's start to its exit once the smoke query answered 200 with the expected label. */
  seconds: number;
  /** Each step's duration as the command printed it (`✔ step (duration)`). */
  steps: Record<string, string>;
}

function inferctl(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [INFERCTL, ...args], { env, timeout: 900_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr });
    });
  });
}

async function deployOnce(
  kind: DeployRun['kind'],
  n: number,
  env: NodeJS.ProcessEnv,
  assets: { model: string; sample: string },
) {
  const name = `bench-script-${n}`;
  const started = performance.now();
  const deployed = await inferctl(
    [
      'deploy',
      ...['--entry-script', path.join(HOWTO, 'score.py'), '--source-dir', HOWTO],
      ...['--environment', path.join(HOWTO, 'myenv.yml')],
      ...['--model', assets.model, '--model-name', 'tiny-cnn'],
      ...['--smoke-sample', assets.sample, '--expect-label', 'blue'],
      ...['--name', name, '--task-queue', TASK_QUEUE],
    ],
    env,
  );
  const seconds = (performance.now() - started) / 1000;
  try {
    if (deployed.code !== 0 || !/✔ smokeQuery \([^)]+\): 200, top label "blue"/.test(deployed.out)) {
      throw new Error(`deploy ${name} did not answer 200 with "blue":\n${deployed.out}`);
    }
  } finally {
    const down = await inferctl(['teardown', name], env);
    if (down.code !== 0) throw new Error(`teardown ${name} failed:\n${down.out}`);
    const left = await findProcessesByMarker(new LocalLayout(name).processMarker);
    if (left.length > 0) throw new Error(`teardown ${name} left processes behind: ${left.join(', ')}`);
  }
  const steps: Record<string, string> = {};
  for (const m of deployed.out.matchAll(/✔ (\w+) \(([^)]+)\)/g)) steps[m[1]!] = m[2]!;
  log(`${kind}: ${seconds.toFixed(1)} s to the first 200 (${JSON.stringify(steps)})`);
  return { kind, seconds: Number(seconds.toFixed(2)), steps } satisfies DeployRun;
}

function markdown(runs: DeployRun[], at: Date): string {
  const stepNames = [...new Set(runs.flatMap((r) => Object.keys(r.steps)))];
  const cached = runs.filter((r) => r.kind === 'cached').map((r) => r.seconds);
  const median = [...cached].sort((a, b) => a - b)[Math.floor(cached.length / 2)];
  const first = runs.find((r) => r.kind === 'first build')!;
  return [
    `# \`inferctl deploy --entry-script\`: command to first 200 (${at.toISOString()})`,
    '',
    `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'CPU'}, node ${process.version}; load average at the end ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}.`,
    "The how-to's `score.py` and conda file (test/fixtures/scripts/howto) on the local target, through " +
      'bin/inferctl.js, each deployment torn down. "first build": an empty environment store, the environment ' +
      'built with pip from PyPI (pip\'s download cache as this machine had it); "cached": the environment found ' +
      'by its content hash.',
    '',
    `| run | seconds to the first 200 | ${stepNames.join(' | ')} |`,
    `| --- | ---: | ${stepNames.map(() => '---:').join(' | ')} |`,
    ...runs.map((r) => `| ${r.kind} | ${r.seconds} | ${stepNames.map((s) => r.steps[s] ?? '').join(' | ')} |`),
    '',
    `- The first environment build: ${first.seconds} s from the command to the first 200.`,
    `- With the environment cached: ${median} s (the median of ${cached.length}).`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  checkBenchArgs(
    'npm run bench:script-deploy -- [--rounds N]   (N cached deployments after the first build; default 3)',
    {
      '--rounds': 'value',
    },
  );
  const at = process.argv.indexOf('--rounds');
  const rounds = at >= 0 ? Number(process.argv[at + 1]) : 3;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a whole number, at least 1');
  installWorkerRuntime({ logLevel: 'WARN' });
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-bench-script-deploy-'));
  const places = { INFERCTL_HOME: path.join(scratch, 'home'), INFERCTL_PYTHON_ENVS: path.join(scratch, 'envs') };
  // The control worker runs the local target in this process: it must read the same places as the command.
  Object.assign(process.env, places);
  const server = await startDevServer({ dataDir: path.join(scratch, 'temporal'), headless: true, buildCli: true });
  process.env.TEMPORAL_ADDRESS = server.address;
  let stopWorker!: () => void;
  const worker = runControlWorker({ taskQueue: TASK_QUEUE, until: new Promise<void>((r) => (stopWorker = r)) });
  try {
    const assets = await ensureDemoAssets(path.join(scratch, 'demo'));
    const files = { model: assets.modelPath, sample: assets.samples.find((s) => s.label === 'blue')!.path };
    const env: NodeJS.ProcessEnv = { ...process.env };
    const runs: DeployRun[] = [await deployOnce('first build', 0, env, files)];
    for (let i = 1; i <= rounds; i++) runs.push(await deployOnce('cached', i, env, files));
    const now = new Date();
    const base = path.join(RESULTS, `script-deploy-${now.toISOString().slice(0, 16).replace(/:/g, '-')}`);
    await fs.mkdir(RESULTS, { recursive: true });
    await fs.writeFile(`${base}.json`, JSON.stringify({ at: now.toISOString(), runs }, null, 2) + '\n');
    await fs.writeFile(`${base}.md`, markdown(runs, now));
    log(`wrote ${base}.json and .md`);
  } finally {
    stopWorker();
    await worker;
    await server.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
