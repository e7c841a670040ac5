/**
 * `npm run demo` (the README's first quick-start line, after `npm ci`): it deploys, smoke-queries and tears
 * down on its own dev server, its terminal shows the steps only, and the worker's log lines go to the file
 * it names at the start and at the end.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const DEMO = path.resolve(__dirname, '..', '..', 'scripts', 'demo.js');

test('the demo shows its steps, and the worker log goes to the file it names', async () => {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-demo-run-'));
  // Its own dev server, as on a fresh machine: not the test run's (whose default task queue other tests use).
  const env: NodeJS.ProcessEnv = { ...process.env, INFERCTL_HOME: home };
  for (const key of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'INFERCTL_UI_URL', 'INFERCTL_LOG_LEVEL'])
    delete env[key];
  try {
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [DEMO], { env, timeout: 300_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
    });
    const where = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
    assert.equal(run.code, 0, where);
    const logFile = path.join(home, 'demo-worker.log');
    const named = run.stdout.split('\n').filter((l) => l.includes(logFile));
    assert.ok(named.length >= 2, `the log file is named at the start and at the end: ${where}`);
    assert.match(named[0]!, /worker log: /);
    assert.match(run.stdout, /==> Done\. No replica process was left behind\./);
    assert.match(run.stdout, /Smoke answer: red /);
    for (const text of [run.stdout, run.stderr]) {
      assert.doesNotMatch(
        text,
        /\[(TRACE|DEBUG|INFO|WARN|ERROR)\]|sdkComponent/,
        `no worker log line in the terminal: ${where}`,
      );
    }
    const log = await fs.readFile(logFile, 'utf8');
    assert.match(log, /\[WARN\] Deployment ends soon: its TTL runs out \{.*sdkComponent: 'workflow'/);
    assert.ok(
      log.split('\n').every((l) => l === '' || /^\d{4}-\d{2}-\d{2}T[\d:.]+Z \[[A-Z]+\] /.test(l)),
      'one line per log entry',
    );
  } finally {
    await fs.rm(home, { recursive: true, force: true });
  }
});
