/**
 * Finding and stopping the local target's replica processes.
 * A replica is recognised by its command line, which contains the deployment directory; a recorded pid
 * is only trusted after that check, so a recycled pid never gets a signal meant for a replica.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';

const execFileAsync = promisify(execFile);

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** All processes whose command line contains `marker`, as pids (never this process). */
export async function findProcessesByMarker(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const { pid, args } of await listProcesses()) {
    if (pid !== process.pid && args.includes(marker)) found.push(pid);
  }
  return found;
}

async function listProcesses(): Promise<Array<{ pid: number; args: string }>> {
  if (process.platform === 'linux') {
    const entries = await fs.readdir('/proc');
    const out: Array<{ pid: number; args: string }> = [];
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const raw = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8');
        out.push({ pid: Number(entry), args: raw.split('\0').join(' ') });
      } catch {
        // The process exited while we looked.
      }
    }
    return out;
  }
  const { stdout } = await execFileAsync('ps', ['-axo', 'pid=,args=']);
  return stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), args: m[2] ?? '' }));
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(pid: number, graceMs = 5000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
    process.kill(pid, 'SIGCONT'); // a stopped (hung) process only acts on SIGTERM once continued
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await delay(50);
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    while (isAlive(pid)) await delay(20);
  }
}
