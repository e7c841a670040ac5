/**
 * Runs `bin/inferctl.js` as a user would, in a child process on the test run's Node. Never rejects: the
 * exit code is in the result, so a test asserts on it like on stdout and stderr.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';

export const INFERCTL_BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'inferctl.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  /** The whole environment of the command (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Killed after this long (default 120 s); a killed command answers code 1. */
  timeoutMs?: number;
}

export function runInferctl(args: string[], opts: CliRunOptions = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [INFERCTL_BIN, ...args],
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** `rollout`'s mirror flags: `--mirror PCT --compare …` (100 and top1 unless given), `--min-agreement`, `--min-pairs`, `--bake`. */
export function mirrorFlags(o: {
  percent?: number;
  compare?: string;
  minAgreement?: number;
  minPairs: number;
  bake: string;
}): string[] {
  return [
    ...['--mirror', String(o.percent ?? 100), '--compare', o.compare ?? 'top1'],
    ...(o.minAgreement === undefined ? [] : ['--min-agreement', String(o.minAgreement)]),
    ...['--min-pairs', String(o.minPairs), '--bake', o.bake],
  ];
}

/** The loopback endpoint `inferctl deploy` printed for a local deployment (`Endpoint: [POST ]http://127.0.0.1:N/score`). */
export function localEndpoint(deployStdout: string): string {
  const endpoint = /Endpoint: (?:POST )?(http:\/\/127\.0\.0\.1:\d+)\/score/.exec(deployStdout)?.[1];
  assert.ok(endpoint, deployStdout);
  return endpoint;
}
