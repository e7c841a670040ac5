/**
 * Finding and stopping the local target's own processes (replicas and gateways).
 *
 * A process is inferctl's only by what another process cannot carry by accident: the environment marker
 * it was started with (INFERCTL_LOCAL_DEPLOYMENT, INFERCTL_LOCAL_SET and INFERCTL_LOCAL_OWNER, read from
 * /proc/<pid>/environ and compared whole) and its entry script as argv[1] (the scoring server's or the
 * gateway's own file). A command line that merely mentions the deployment's directory (`tail -f` of a log,
 * a load test given the key file, an editor) is never matched. Each pid is signalled only while its start
 * time (/proc/<pid>/stat) is still the one seen when it was found, so a recycled pid is never signalled.
 * Discovery reads /proc (Linux); elsewhere only the pids a deployment recorded are known.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/** The environment a local process is started with, so that it can be found again (markerEnv). */
export const LOCAL_PROCESS_ENV = {
  deployment: 'INFERCTL_LOCAL_DEPLOYMENT',
  set: 'INFERCTL_LOCAL_SET',
  owner: 'INFERCTL_LOCAL_OWNER',
} as const;

/** The entry scripts of the local target's processes (compiled paths): scoring server, script front, gateway. */
export const LOCAL_ENTRY_SCRIPTS = [
  require.resolve('../../server/main'),
  require.resolve('../../script/front-main'),
  require.resolve('./gateway-main'),
];

export interface LocalProcessIdentity {
  /** The deployment's directory. */
  deployment: string;
  /** The replica set's directory: the deployment's for the serving set and the gateway, candidate/ for a rollout's. */
  set: string;
  /** The workflow that owns the deployment. */
  ownerId: string;
}

/** The variables that mark a process as one of `identity`'s. */
export function markerEnv(identity: LocalProcessIdentity): Record<string, string> {
  return {
    [LOCAL_PROCESS_ENV.deployment]: identity.deployment,
    [LOCAL_PROCESS_ENV.set]: identity.set,
    [LOCAL_PROCESS_ENV.owner]: identity.ownerId,
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or undefined when gone. */
export async function processStartTime(pid: number): Promise<number | undefined> {
  if (process.platform !== 'linux') return isAlive(pid) ? 0 : undefined;
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may itself hold spaces or ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** True while `pid` is the very process that was seen with `startTime` (undefined: any live process). */
export async function isSameProcess(pid: number, startTime: number | undefined): Promise<boolean> {
  const now = await processStartTime(pid);
  return now !== undefined && (startTime === undefined || now === startTime);
}

/**
 * True while `pid` is the process seen with `startTime`, started from `entry` (argv[1]) with `identity`'s
 * marker, compared whole: what a recorded pid must still be before it is taken for ours (a pid the system
 * gave to another process since, with its own start time or no marker, is not). Elsewhere than Linux, only
 * the pid and start time are known.
 */
export async function isOwnProcess(
  pid: number,
  startTime: number | undefined,
  identity: LocalProcessIdentity,
  entry: string,
): Promise<boolean> {
  if (process.platform !== 'linux') return isSameProcess(pid, startTime);
  const seen = await inspect(pid, [entry]);
  if (!seen || (startTime !== undefined && seen.startTime !== startTime)) return false;
  const marked = Object.entries(markerEnv(identity)).every(([key, value]) => seen.env.get(key) === value);
  return marked && (await isSameProcess(pid, seen.startTime));
}

/**
 * What `pid` carries that says whose it is: its start time and environment, read only when its entry script
 * (argv[1]) is one of `entries`; undefined otherwise, or when it is gone or another user's. The caller checks
 * the start time again after its own comparison (a pid recycled meanwhile).
 */
async function inspect(
  pid: number,
  entries: readonly string[],
): Promise<{ startTime: number; env: Map<string, string> } | undefined> {
  try {
    const startTime = await processStartTime(pid);
    const argv = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    if (startTime === undefined || !entries.includes(argv[1] ?? '')) return undefined;
    return { startTime, env: parseEnviron(await fs.readFile(`/proc/${pid}/environ`, 'utf8')) };
  } catch {
    return undefined; // it exited while we looked, or is another user's (its environ cannot be read): not ours
  }
}

export interface FoundProcess {
  pid: number;
  startTime: number;
}

/**
 * The local target's own processes whose deployment (or replica set) directory is `marker`'s (a layout's
 * processMarker or candidateMarker: the directory and a trailing separator), compared whole; with
 * `ownerId`, only those of that owner. Never this process.
 */
export async function findOwnProcesses(marker: string, opts: { ownerId?: string } = {}): Promise<FoundProcess[]> {
  if (process.platform !== 'linux') return [];
  const dir = marker.endsWith(path.sep) ? marker.slice(0, -1) : marker;
  const found: FoundProcess[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const seen = await inspect(pid, LOCAL_ENTRY_SCRIPTS);
    if (!seen) continue;
    const { startTime, env } = seen;
    const ours = env.get(LOCAL_PROCESS_ENV.deployment) === dir || env.get(LOCAL_PROCESS_ENV.set) === dir;
    if (!ours || (opts.ownerId !== undefined && env.get(LOCAL_PROCESS_ENV.owner) !== opts.ownerId)) continue;
    // Still the same process after reading it (not a pid recycled meanwhile).
    if (await isSameProcess(pid, startTime)) found.push({ pid, startTime });
  }
  return found;
}

/** findOwnProcesses, as pids. */
export async function findProcessesByMarker(marker: string, opts: { ownerId?: string } = {}): Promise<number[]> {
  return (await findOwnProcesses(marker, opts)).map((p) => p.pid);
}

function parseEnviron(raw: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

/**
 * SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. With `startTime`, every signal
 * is sent only while the pid is still that process.
 */
export async function stopProcess(pid: number, graceMs = 5000, startTime?: number): Promise<void> {
  const same = () => isSameProcess(pid, startTime);
  if (!(await same())) return;
  try {
    process.kill(pid, 'SIGTERM');
    process.kill(pid, 'SIGCONT'); // a stopped (hung) process only acts on SIGTERM once continued
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while ((await same()) && Date.now() < deadline) await delay(50);
  if (await same()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    while (await same()) await delay(20);
  }
}
