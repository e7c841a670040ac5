/**
 * The docs' command lines are tests: every ```bash block of README.md and docs/*.md that shows an
 * `inferctl` line runs here, in the docs' order, through bin/inferctl.js against the run's dev server,
 * with the workers the docs start (`inferctl worker &`, `inferctl gpu-worker … &`) started the same way.
 * Fixtures stand in for the files the examples name (FIXTURES, SUBSTITUTIONS below); each line must exit
 * as PROMISES says (0 unless told) and print what the docs promise. A block preceded by
 * `<!-- docs-test: skip (reason) -->` is listed with its reason, not run; a block with no inferctl line
 * is ignored (npm, python, curl).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { ensureDemoAssets } from '../../src/demo/demo-assets';
import { MULTI_INPUT_ANSWER, MULTI_INPUT_REQUEST, buildMultiInputModel } from '../inference-protocol/fixtures';
import { eventually, testClient } from '../helpers/workers';
import { INFERCTL_COMMAND, docBlocks } from './doc-blocks';
import type { DocBlock, DocCommand } from './doc-blocks';
import { PROMISES, SUBSTITUTIONS, promiseFor } from './doc-promises';

const REPO = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(REPO, 'bin', 'inferctl.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The files the examples name, made in the fixtures directory (the commands' working directory). */
async function makeFixtures(dir: string): Promise<void> {
  // ~/.inferctl/demo-assets is where `npm run demo` writes them; SUBSTITUTIONS points ~ here.
  const assets = await ensureDemoAssets(path.join(dir, '.inferctl', 'demo-assets'));
  const red = assets.samples.find((s) => s.label === 'red')!;
  await fs.copyFile(assets.modelPath, path.join(dir, 'tiny-cnn.onnx'));
  await fs.copyFile(assets.modelPath, path.join(dir, 'model.onnx'));
  await fs.copyFile(red.path, path.join(dir, 'red-0.jpg'));
  // v2.onnx: the same network under another graph name, so a new digest that answers the same.
  const bytes = Buffer.from(await fs.readFile(assets.modelPath));
  const at = bytes.indexOf('inferctl-tiny-colour-cnn');
  assert.ok(at > 0, 'the graph name is in the demo model');
  bytes.write('inferctl-tiny-colour-cn2', at);
  await fs.writeFile(path.join(dir, 'v2.onnx'), bytes);
  for (const images of ['images', path.join('data', 'today')]) {
    await fs.mkdir(path.join(dir, images), { recursive: true });
    for (const s of assets.samples) await fs.copyFile(s.path, path.join(dir, images, path.basename(s.path)));
  }
  // The Open Inference Protocol example: a model that is not an image classifier, its request and answer.
  await fs.writeFile(path.join(dir, 'tabular.onnx'), buildMultiInputModel());
  await fs.writeFile(path.join(dir, 'request.json'), JSON.stringify(MULTI_INPUT_REQUEST));
  await fs.writeFile(path.join(dir, 'expect.json'), JSON.stringify(MULTI_INPUT_ANSWER));
  // The scoring-script dry runs: the how-to's score.py and conda file, a batch script's source folder, model folders.
  const howto = path.join(REPO, 'test', 'fixtures', 'scripts', 'howto');
  await fs.copyFile(path.join(howto, 'score.py'), path.join(dir, 'score.py'));
  for (const env of ['myenv.yml', 'conda.yml']) await fs.copyFile(path.join(howto, 'myenv.yml'), path.join(dir, env));
  await fs.cp(path.join(REPO, 'test', 'fixtures', 'batch-scripts', 'basic'), path.join(dir, 'src'), {
    recursive: true,
  });
  for (const folder of ['model', 'resnet50']) {
    await fs.mkdir(path.join(dir, folder));
    await fs.copyFile(assets.modelPath, path.join(dir, folder, 'model.onnx'));
  }
}

/** The command as it runs here: fixtures substituted, `inferctl` the binary under test. */
function runnable(text: string, fixtures: string): string {
  let out = text.replace(/&$/, '').trim();
  for (const s of SUBSTITUTIONS) out = out.split(s.from).join(s.to.replace('<fixtures>', fixtures));
  return out.replace(new RegExp(INFERCTL_COMMAND.source, 'g'), `$1'${process.execPath}' '${BIN}'`);
}

function sh(command: string, cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { cwd, env: process.env, timeout: 180_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A process the docs leave running (`… &`); started once, kept for the blocks after it. */
async function background(command: string, cwd: string): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn('bash', ['-c', `exec ${command}`], { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 90_000;
  while (!/polling/.test(output)) {
    if (child.exitCode !== null) throw new Error(`\`${command}\` exited early:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`\`${command}\` did not start polling in 90 s (killed):\n${output}`);
    }
    await delay(100);
  }
  return { child, output: () => output };
}

/** The deployment names a deploy line starts: --name, else the model file's name. */
function deployedName(command: string): string | undefined {
  if (!/\binferctl deploy\b/.test(command) || /--dry-run/.test(command)) return undefined;
  const name = /(?:--name|-n)\s+(\S+)/.exec(command)?.[1];
  const model = /(?:--model|-m)\s+(\S+)/.exec(command)?.[1];
  return name ?? (model ? path.basename(model, '.onnx') : undefined);
}

const label = (b: DocBlock) => `${b.file}:${b.line}`;

describe('the command lines in README.md and docs/*.md', () => {
  const blocks = docBlocks(REPO);
  const shown = blocks.filter((b) => b.commands.some((c) => c.inferctl));
  const run = shown.filter((b) => !b.skip);
  const running = new Map<string, { child: ChildProcess; output: () => string }>();
  const deployed = new Set<string>();
  let fixtures: string;

  before(async () => {
    fixtures = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-docs-'));
    await makeFixtures(fixtures);
  });

  after(async () => {
    try {
      // What the examples leave serving (--ttl none, say) is torn down through the binary too.
      for (const name of deployed) await sh(runnable(`inferctl teardown ${name}`, fixtures), fixtures);
      for (const name of deployed) {
        assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).processMarker), [], `${name}: none left`);
      }
    } finally {
      for (const { child } of running.values()) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
      }
      await fs.rm(fixtures, { recursive: true, force: true });
    }
  });

  test('every block with an inferctl line is run or skipped with a reason', (t) => {
    assert.ok(run.length >= 5, `${run.length} blocks to run`);
    for (const b of shown.filter((s) => s.skip)) {
      assert.ok(b.skip!.trim().length > 3, `${label(b)} says why it is skipped`);
      t.diagnostic(`skipped ${label(b)}: ${b.skip}`);
    }
    for (const p of PROMISES) {
      const used = run.some((b) => b.file === p.file && b.commands.some((c) => c.inferctl && p.match.test(c.text)));
      assert.ok(used, `the promise for ${p.file} /${p.match.source}/ matches a line the docs still show`);
    }
  });

  for (const block of run) {
    test(`${label(block)}`, async (t) => {
      for (const command of block.commands) await runCommand(t, block, command);
      if (block.file === 'docs/schedules.md') await schedulesSettled();
    });
  }

  async function runCommand(t: { diagnostic: (m: string) => void }, block: DocBlock, command: DocCommand) {
    if (!command.inferctl) {
      t.diagnostic(`not run (not an inferctl line): ${command.text}`);
      return;
    }
    if (/\binferctl dev\b/.test(command.text)) {
      t.diagnostic(`provided by the test run: ${command.text} (its dev server is TEMPORAL_ADDRESS)`);
      return;
    }
    const line = runnable(command.text, fixtures);
    if (command.background) {
      if (!running.has(command.text)) running.set(command.text, await background(line, fixtures));
      t.diagnostic(`running: ${command.text}`);
      return;
    }
    const name = deployedName(command.text);
    if (name) deployed.add(name);
    const promise = promiseFor(block.file, command.text);
    const result = await sh(line, fixtures);
    const where = `${label(block)}: \`${command.text}\`\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
    assert.equal(result.code, promise?.code ?? 0, `exit code of ${where}`);
    for (const re of promise?.stdout ?? []) assert.match(result.stdout, re, `${re} (${promise!.why}) in ${where}`);
    promise?.check?.(result.stdout, fixtures);
    t.diagnostic(`ok: ${command.text}`);
    if (process.env.INFERCTL_DOCS_TEST_VERBOSE) t.diagnostic(result.stdout);
  }

  /** The schedule's runs (trigger, backfill) finish before the workers stop; their outputs are where it said. */
  async function schedulesSettled(): Promise<void> {
    const { client, close } = await testClient();
    try {
      await eventually(
        async () => {
          for await (const wf of client.workflow.list({ query: `ExecutionStatus = 'Running'` })) {
            if (/^score-nightly-\d{4}-\d{2}-\d{2}T/.test(wf.workflowId)) return undefined; // not schedule.test's
          }
          return true;
        },
        'the schedule’s runs to finish',
        180_000,
      );
    } finally {
      await close();
    }
    for (const day of ['2026-11-20', '2026-11-21', '2026-11-22']) {
      await fs.access(path.join(fixtures, 'data', 'scores', day, 'summary.json'));
    }
  }
});
