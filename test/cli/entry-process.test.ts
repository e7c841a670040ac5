/**
 * bin/inferctl.js as a process: a stdout closed early ends it quietly (no EPIPE stack trace), and under a
 * `node` older than 22 the wrapper that hands over to the project's own Node never leaves the real
 * process behind: SIGTERM to the wrapper's pid reaches it, and SIGKILL of the wrapper stops it too.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, test } from 'node:test';

import { recordReliability } from '../helpers/reliability';
import { uniqueName } from '../helpers/workers';

const BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'inferctl.js');
/** The system's Node (20 on the test machines): the wrapper hands over from it. */
const OLD_NODE = '/usr/bin/node';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pids whose parent is `ppid`, from /proc/<pid>/stat (field 4). */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

describe('bin/inferctl.js as a process', () => {
  test('a stdout closed before the help is written ends the CLI quietly', async () => {
    let tried = 0;
    for (const args of [['--help'], ['deploy', '--help'], ['score', '--help']]) {
      tried++;
      const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy(); // the reader is gone before a byte is written, like `| head -0`
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', (c: number | null) => resolve(c)));
      assert.equal(stderr, '', `inferctl ${args.join(' ')}: nothing on stderr (got ${stderr})`);
      assert.equal(code, 0);
    }
    recordReliability({ test: 'EPIPE on a closed stdout', faultsInjected: tried, survived: true });
  });

  test('under an old node: SIGTERM and SIGKILL of the wrapper pid leave no worker running', async (t) => {
    const oldMajor = fs.existsSync(OLD_NODE)
      ? Number(/^v(\d+)/.exec(execFileSync(OLD_NODE, ['--version']).toString())?.[1])
      : 0;
    if (!(oldMajor > 0 && oldMajor < 22)) {
      t.skip(`${OLD_NODE} is not a Node older than 22`);
      return;
    }
    const survivors: number[] = [];
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const wrapper = spawn(OLD_NODE, [BIN, 'worker', '--task-queue', uniqueName('orphan')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      wrapper.stdout.on('data', (d: Buffer) => (output += d.toString()));
      wrapper.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise((resolve) => wrapper.on('exit', resolve));
      // The real worker: the wrapper's child, running the project's own Node, polling its task queue.
      const worker = await until('the worker under the wrapper', () => childrenOf(wrapper.pid!)[0]);
      await until(`the worker to poll (${output})`, () => (output.includes('worker polling') ? true : undefined));
      assert.match(fs.readFileSync(`/proc/${worker}/cmdline`, 'utf8'), /node_modules\/node\/bin\/node/);
      process.kill(wrapper.pid!, signal);
      await exited;
      const gone = await until(
        `worker ${worker} to exit after ${signal} of the wrapper`,
        () => (isAlive(worker) ? undefined : true),
        45_000,
      ).catch(() => false);
      if (!gone) {
        survivors.push(worker);
        process.kill(worker, 'SIGKILL');
      }
    }
    recordReliability({
      test: 'old-node wrapper killed',
      faultsInjected: 2,
      survived: survivors.length === 0,
      resourcesLeaked: survivors.length,
    });
    assert.deepEqual(survivors, [], 'no worker outlives its wrapper');
  });
});
