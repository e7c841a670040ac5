/**
 * CPU seconds a process and its descendants have used (Linux /proc): user + system of each live process,
 * plus what its reaped children used. On a shared machine wall time depends on the neighbours' load; the
 * CPU a case spends per item is its cost whatever the load, so the benchmarks report both.
 */
import fs from 'node:fs/promises';
import os from 'node:os';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

interface Stat {
  pid: number;
  ppid: number;
  ticks: number;
}

async function stat(pid: number): Promise<Stat | undefined> {
  const text = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  // After "pid (comm)": state ppid … utime(14) stime(15) cutime(16) cstime(17), numbered from the pid.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number) => Number(f[i - 3]);
  return { pid, ppid: n(4), ticks: n(14) + n(15) + n(16) + n(17) };
}

/** CPU seconds of `pid` and every process below it, now; undefined where /proc cannot be read. */
export async function treeCpuSeconds(pid: number): Promise<number | undefined> {
  if (os.platform() !== 'linux') return undefined;
  const pids = (await fs.readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
  const all = (await Promise.all(pids.map(stat))).filter((s): s is Stat => s !== undefined);
  const children = new Map<number, Stat[]>();
  for (const s of all) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  const root = all.find((s) => s.pid === pid);
  if (!root) return undefined;
  let ticks = 0;
  for (const stack = [root]; stack.length > 0;) {
    const s = stack.pop()!;
    ticks += s.ticks;
    stack.push(...(children.get(s.pid) ?? []));
  }
  return ticks / TICKS_PER_SECOND;
}
