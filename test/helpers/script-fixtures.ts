/**
 * The scoring-script tests' fixtures (test/fixtures/scripts/) and where their Python environments are
 * kept: ~/.cache/inferctl/test-script-envs (or INFERCTL_TEST_SCRIPT_ENVS), outside the clone like the
 * Temporal CLI, shared by every test file and run (INFERCTL_PYTHON_ENVS), so an environment is built from
 * PyPI once per content hash and reused, in CI's fresh clones as here. The how-to's environment (onnxruntime,
 * azureml-core) takes minutes to build the first time; the server-only one well under one.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { after, before } from 'node:test';

import { liveMembers } from '../../src/script/child-group';
import type { ChildRecord } from '../../src/script/child-group';
import { REPO_ROOT } from './python-venv';
import { startControlWorker, startGpuWorker, uniqueName } from './workers';
import type { WorkerProcess } from './workers';

export const SCRIPT_FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'scripts');
/** The batch scripts (init() and run(mini_batch)) of the script-job tests. */
export const BATCH_SCRIPTS = path.join(REPO_ROOT, 'test', 'fixtures', 'batch-scripts');
export const SCRIPT_ENVS =
  process.env.INFERCTL_TEST_SCRIPT_ENVS ?? path.join(os.homedir(), '.cache', 'inferctl', 'test-script-envs');

/** What the tests set on the workers: the shared environment cache, and a secret the script must not see. */
export const SCRIPT_WORKER_ENV = { INFERCTL_PYTHON_ENVS: SCRIPT_ENVS, INFERCTL_TEST_WORKER_SECRET: 'worker-only' };

/** Why the scoring-script tests cannot run here (no python3 to build environments with), or undefined. */
export const PYTHON_SKIP: string | undefined = (() => {
  try {
    execFileSync('python3', ['-c', 'import venv'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'python3 with venv not found on the PATH: install Python 3 to run the scoring-script tests';
  }
})();

export function fixture(...parts: string[]): string {
  return path.join(SCRIPT_FIXTURES, ...parts);
}

/** What scriptWorkers() gives a test file once its `before` has run. */
export interface ScriptWorkers {
  readonly controlQueue: string;
  readonly gpuQueue: string;
  /** The workers' environment (and the CLI's, for a test that passes it): SCRIPT_WORKER_ENV and `extraEnv()`. */
  env: NodeJS.ProcessEnv;
  /** A fresh folder for the file's tests, removed after them. */
  scratch: string;
}

/**
 * A control worker (and with `gpu`, a GPU worker) on fresh task queues with SCRIPT_WORKER_ENV, and a scratch
 * folder, started before the file's tests and stopped after them. Call it inside `describe`; `extraEnv` is
 * read in `before` (Azurite's environment is known only once it runs: call useAzurite() first).
 */
export function scriptWorkers(
  prefix: string,
  opts: { gpu?: boolean; extraEnv?: () => NodeJS.ProcessEnv } = {},
): ScriptWorkers {
  const workers: WorkerProcess[] = [];
  const set = { controlQueue: uniqueName(`${prefix}-control`), gpuQueue: uniqueName(`${prefix}-gpu`) } as ScriptWorkers;
  before(async () => {
    set.env = { ...process.env, ...SCRIPT_WORKER_ENV, ...opts.extraEnv?.() };
    set.scratch = await fs.mkdtemp(path.join(os.tmpdir(), `inferctl-${prefix}-`));
    workers.push(await startControlWorker(set.controlQueue, [], set.env));
    if (opts.gpu) workers.push(await startGpuWorker(set.gpuQueue, [], set.env));
  });
  after(async () => {
    for (const w of workers) await w.stop();
    if (set.scratch) await fs.rm(set.scratch, { recursive: true, force: true });
  });
  return set;
}

/** The Python server groups recorded under a deployment's directory, with their live members. */
export async function pythonGroups(deploymentDir: string): Promise<Array<ChildRecord & { live: number[] }>> {
  const found: Array<ChildRecord & { live: number[] }> = [];
  const replicas = path.join(deploymentDir, 'replicas');
  for (const entry of await fs.readdir(replicas).catch(() => [] as string[])) {
    const file = path.join(replicas, entry, 'python.json');
    const record = JSON.parse(await fs.readFile(file, 'utf8').catch(() => 'null')) as ChildRecord | null;
    if (record) found.push({ ...record, live: await liveMembers(record) });
  }
  return found;
}

/**
 * Processes whose environment names `dir` as their app root: what a test, as an outside observer, uses to
 * see that no Python server of a deployment is left (the product itself knows them by group and start time).
 */
export async function pythonServersUnder(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const environ = await fs.readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '');
    if (environ.split('\0').some((v) => v.startsWith('AML_APP_ROOT=') && v.includes(dir))) found.push(Number(entry));
  }
  return found;
}

/** The TCP ports a process listens on (IPv4 and IPv6), from its socket descriptors and /proc/net/tcp{,6}. */
export async function tcpListeningPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const target = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]!);
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (await fs.readFile(table, 'utf8').catch(() => '')).split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEX_IP:HEX_PORT; st 0A is LISTEN; the inode is the tenth column.
      if (f[3] === '0A' && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}
