/**
 * bench:serve's replicas: a scoring server process (`node dist/src/server/main.js`) on loopback with batching on
 * or off, its figures from /metrics, and the wait until it is idle.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';

import { fileExists } from '../src/file-exists';

const ROOT = path.resolve(__dirname, '..', '..');
export const SERVER_MAIN = path.join(ROOT, 'dist', 'src', 'server', 'main.js');

export function log(line: string): void {
  process.stderr.write(`[serve-bench] ${line}\n`);
}

export interface Replica {
  url: string;
  child: ChildProcess;
}

export async function startReplica(model: string, dir: string, batching: boolean): Promise<Replica> {
  const keyFile = path.join(dir, 'key');
  const readyFile = path.join(dir, `ready-${batching ? 'on' : 'off'}-${Date.now()}.json`);
  const args = [SERVER_MAIN, '--model', model, '--api-key-file', keyFile, '--ready-file', readyFile, '--port', '0'];
  if (!batching) args.push('--no-batching');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 120_000;
  while (!(await fileExists(readyFile))) {
    if (child.exitCode !== null)
      throw new Error(`The replica exited with code ${child.exitCode}; see its stderr above.`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('The replica was not ready within 120 s.');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const { url } = JSON.parse(await fs.readFile(readyFile, 'utf8')) as { url: string };
  return { url, child };
}

export async function stopReplica(replica: Replica): Promise<void> {
  if (replica.child.exitCode !== null) return;
  const exited = new Promise((r) => replica.child.once('exit', r));
  replica.child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (replica.child.exitCode === null) replica.child.kill('SIGKILL');
}

/**
 * The replica's batch totals and its main thread's event-loop delay since the previous scrape (each
 * scrape starts a new window: the one before a cell resets it, the one after reads the cell's).
 */
export async function replicaMetrics(url: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    sum: value('inferctl_server_batch_size_sum'),
    count: value('inferctl_server_batch_size_count'),
    queueDelaySum: value('inferctl_server_queue_delay_seconds_sum'),
    queueDelayCount: value('inferctl_server_queue_delay_seconds_count'),
    loopDelayP99Ms: value('inferctl_server_event_loop_delay_seconds\\{stat="p99"\\}') * 1000,
    loopDelayMaxMs: value('inferctl_server_event_loop_delay_seconds\\{stat="max"\\}') * 1000,
  };
}

/**
 * Waits until no replica is still inferring what a previous part left it: autocannon stops mid-request, and a
 * request already decoded or inferring when its client went away still finishes (a replica drops only those
 * whose batch has not gone yet), taking CPU from the next part. Idle is every replica's inference count
 * unchanged over a window of twice its mean inference time so far (at least 500 ms).
 */
export async function waitIdle(replicas: Replica[]): Promise<void> {
  const scrape = async () =>
    Promise.all(
      replicas.map(async (r) => {
        const text = await (await fetch(`${r.url}/metrics`)).text();
        const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
        return {
          count: value('inferctl_server_inference_seconds_count'),
          sum: value('inferctl_server_inference_seconds_sum'),
        };
      }),
    );
  const deadline = Date.now() + 120_000;
  let last = await scrape();
  while (Date.now() < deadline) {
    const meanSeconds = Math.max(...last.map((m) => (m.count > 0 ? m.sum / m.count : 0)));
    await new Promise((r) => setTimeout(r, Math.max(500, 2_000 * meanSeconds)));
    const now = await scrape();
    if (now.every((m, i) => m.count === last[i]!.count)) return;
    last = now;
  }
  log('the replicas were still inferring after 120 s; measuring anyway');
}
