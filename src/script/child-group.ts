/**
 * The Python server a script replica's front starts, known by what only it carries: the process group the
 * front created for it (spawned detached, its pid is the group's id) and the leader's start time, written to
 * a record file beside the replica's ready file the moment it exists. Stopping it signals that group, and
 * only while a process in it started no earlier than the recorded leader: a recycled pid or group id never
 * receives a signal meant for a replica, and no command line is matched.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';

import { readJsonFile, writeJsonFileAtomic } from '../json-file';

const execFileAsync = promisify(execFile);

export interface ChildRecord {
  /** The group leader (the server's first process) and the group id. */
  pgid: number;
  /** The leader's start time as the system counts it (Linux: clock ticks since boot; elsewhere `ps`'s lstart). */
  startTime: string;
  /** The front that started it (its pid). */
  owner?: number;
}

interface ProcessEntry {
  pid: number;
  pgid: number;
  startTime: string;
}

/** Every process with its group and start time. */
async function listProcesses(): Promise<ProcessEntry[]> {
  if (process.platform === 'linux') {
    const out: ProcessEntry[] = [];
    for (const entry of await fs.readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined);
      if (!stat) continue;
      // Fields after the command name (which may hold spaces and parentheses): state is field 3.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue; // exited, waiting for its parent to reap it: nothing to stop
      out.push({ pid: Number(entry), pgid: Number(fields[2]), startTime: fields[19] ?? '' });
    }
    return out;
  }
  const { stdout } = await execFileAsync('ps', ['-axo', 'pid=,pgid=,lstart=']);
  return stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.+?)\s*$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), pgid: Number(m[2]), startTime: m[3]! }));
}

function later(a: string, b: string): boolean {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return BigInt(a) >= BigInt(b);
  return Date.parse(a) >= Date.parse(b);
}

/** The start time of `pid`, or undefined once it is gone. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  return (await listProcesses()).find((p) => p.pid === pid)?.startTime;
}

/** Records the group a front just created; call before anything else can fail. */
export async function recordChild(file: string, pid: number, owner = process.pid): Promise<ChildRecord> {
  const startTime = await processStartTime(pid);
  const record: ChildRecord = { pgid: pid, startTime: startTime ?? '', owner };
  await writeJsonFileAtomic(file, record);
  return record;
}

/** The pids of the recorded group still running: members of the group that started no earlier than its leader. */
export async function liveMembers(record: ChildRecord): Promise<number[]> {
  if (!record.startTime) return [];
  return (await listProcesses())
    .filter((p) => p.pgid === record.pgid && later(p.startTime, record.startTime))
    .map((p) => p.pid);
}

/**
 * SIGTERM to the recorded group, SIGKILL after `graceMs`; resolves once none of it runs. Returns the pids
 * that were running. Safe to repeat, and a no-op for a record whose group is gone.
 */
export async function stopChildGroup(record: ChildRecord, graceMs = 5000): Promise<number[]> {
  const members = await liveMembers(record);
  if (members.length === 0) return [];
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-record.pgid, sig);
    } catch {
      // gone
    }
  };
  signal('SIGTERM');
  signal('SIGCONT');
  const deadline = Date.now() + graceMs;
  while ((await liveMembers(record)).length > 0) {
    if (Date.now() >= deadline) signal('SIGKILL');
    await delay(50);
  }
  return members;
}

/** Stops the group recorded in `file`, if any; the pids that were running. */
export async function stopRecordedChild(file: string, graceMs?: number): Promise<number[]> {
  const record = await readJsonFile<ChildRecord>(file);
  return record ? stopChildGroup(record, graceMs) : [];
}
