import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';

/**
 * Starts a Node script as a detached process (its own process group) that outlives the worker that
 * started it, like a pod outlives the kubectl that created it. Output goes to `logFile`; `env` is added to
 * this process's environment (the marker that identifies it later: processes.ts).
 */
export async function spawnDetachedNode(
  script: string,
  args: string[],
  logFile: string,
  env: Record<string, string> = {},
): Promise<number> {
  const log = fs.openSync(logFile, 'a');
  try {
    const child = spawn(process.execPath, [script, ...args], {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, NODE_ENV: 'production', ...env },
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', reject);
    });
    child.unref();
    return pid;
  } finally {
    fs.closeSync(log);
  }
}

/** The last `lines` lines of a log file, or '' when there is none. */
export async function logTail(file: string, lines = 5): Promise<string> {
  try {
    const text = await fsp.readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
