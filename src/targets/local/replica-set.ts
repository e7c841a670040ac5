/**
 * A set of local replicas: scoring-server processes started from one bundle, each in its own directory
 * (`<dir>/ready.json`, `<dir>/replica.log`), recorded in a JSON file as soon as each pid exists. The serving
 * set and a rollout's candidate set are both one of these; the gateway's routes file says how many of each
 * it routes to, and in what shares.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { readJsonFile, writeJsonFileAtomic } from '../../json-file';
import { v2ModelName } from '../../shared/deploy-types';
import type { DeploymentSpec, ImageResult } from '../../shared/target-types';
import type { RequestCounts } from '../target';
import { logTail, spawnDetachedNode } from './detached-process';
import type { LocalLayout } from './layout';
import { isAlive, markerEnv, processStartTime } from './processes';
import type { FoundProcess } from './processes';
import type { MirrorRoute } from './gateway-mirror';
import { spawnScriptReplica } from './script-replica';

const SERVER_MAIN = require.resolve('../../server/main');

/** The scoring server's request body limit; the seed's JPEGs are far smaller. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface ReplicaRecord {
  index: number;
  pid: number;
  digest: string;
  /** The process's start time (processes.ts): a recorded pid is only this replica while it matches. */
  startTime?: number;
}

export interface ReadyFile {
  pid: number;
  port: number;
  url: string;
}

/** What the gateway reads on every request (gateway.ts). */
export interface Routes {
  replicas: number;
  candidate?: { dir: string; replicas: number; weight: number };
  /** A mirror rollout: the candidate gets copies, never answers clients (gateway-mirror.ts). */
  mirror?: MirrorRoute;
}

/**
 * Starts one scoring server for `image` in `dir`, marked as a process of the set at `setDir` (the
 * deployment's directory, or its candidate/ directory) owned by `spec.ownerId`; resolves with its pid and
 * start time once it is spawned.
 */
export async function spawnReplica(
  layout: LocalLayout,
  spec: DeploymentSpec,
  image: ImageResult,
  dir: string,
  setDir = layout.dir,
): Promise<{ pid: number; startTime?: number }> {
  const marker = markerEnv({ deployment: layout.dir, set: setDir, ownerId: spec.ownerId });
  if (spec.script) {
    const pid = await spawnScriptReplica(layout, image, dir, marker);
    return { pid, startTime: await processStartTime(pid) };
  }
  await fs.mkdir(dir, { recursive: true });
  await fs.rm(path.join(dir, 'ready.json'), { force: true });
  const pid = await spawnDetachedNode(
    SERVER_MAIN,
    [
      '--model',
      path.join(image.imageRef, 'model.onnx'),
      '--api-key-file',
      layout.apiKeyFile,
      '--ready-file',
      path.join(dir, 'ready.json'),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--top-k',
      String(spec.topK),
      '--max-body-bytes',
      String(MAX_BODY_BYTES),
      '--model-name',
      v2ModelName(spec.modelPath),
      ...(spec.protocol === 'v2'
        ? ['--v2-only']
        : [
            '--preprocess',
            path.join(image.imageRef, 'preprocess.json'),
            '--labels',
            path.join(image.imageRef, 'model.labels.txt'),
          ]),
    ],
    path.join(dir, 'replica.log'),
    marker,
  );
  return { pid, startTime: await processStartTime(pid) };
}

export interface SetReadiness {
  readyReplicas: number;
  replicaUrls: string[];
  /** What is not ready yet, one phrase each. */
  waiting: string[];
  /** Set when a replica has exited: why, with the end of its log. */
  fatal?: string;
}

export async function setReadiness(records: ReplicaRecord[], dirOf: (index: number) => string): Promise<SetReadiness> {
  const report: SetReadiness = { readyReplicas: 0, replicaUrls: [], waiting: [] };
  for (const record of [...records].sort((a, b) => a.index - b.index)) {
    const dir = dirOf(record.index);
    const ready = await readJsonFile<ReadyFile>(path.join(dir, 'ready.json'));
    if (!isAlive(record.pid)) {
      const tail = await logTail(path.join(dir, 'replica.log'));
      return { ...report, fatal: `replica ${record.index} (pid ${record.pid}) exited: ${tail || 'no output'}` };
    }
    if (!ready) {
      report.waiting.push(`replica ${record.index} is loading the model`);
      continue;
    }
    report.replicaUrls.push(ready.url);
    if (await answers(`${ready.url}/readyz`)) report.readyReplicas++;
    else report.waiting.push(`replica ${record.index} at ${ready.url} does not answer /readyz yet`);
  }
  return report;
}

/** Sums the scoring-request counters of every recorded replica that answers its /metrics. */
export async function setCounts(
  records: ReplicaRecord[],
  dirOf: (index: number) => string,
  signal?: AbortSignal,
): Promise<RequestCounts> {
  const counts: RequestCounts = { total: 0, errors: 0, replicasRead: 0 };
  for (const record of records) {
    const ready = await readJsonFile<ReadyFile>(path.join(dirOf(record.index), 'ready.json'));
    if (!ready) continue;
    let text: string;
    try {
      const timeout = AbortSignal.timeout(2000);
      const res = await fetch(`${ready.url}/metrics`, {
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      if (!res.ok) continue;
      text = await res.text();
    } catch {
      if (signal?.aborted) throw signal.reason;
      continue; // a replica that is restarting; the next read counts it
    }
    const read = scoringCounts(text);
    counts.total += read.total;
    counts.errors += read.errors;
    counts.replicasRead++;
  }
  return counts;
}

/** The scoring-request counter in a replica's Prometheus text: every answer, and those with a 5xx code. */
export function scoringCounts(text: string): { total: number; errors: number } {
  let total = 0;
  let errors = 0;
  for (const m of text.matchAll(/^inferctl_server_scoring_requests_total\{code="(\d+)"\} (\d+(?:\.\d+)?)$/gm)) {
    const value = Number(m[2]);
    total += value;
    if (m[1]!.startsWith('5')) errors += value;
  }
  return { total, errors };
}

/** Changes part of the routes file, keeping the rest (a scale keeps the candidate's share, and back). */
export async function updateRoutes(
  layout: LocalLayout,
  change: { replicas?: number; candidate?: Routes['candidate'] | null; mirror?: MirrorRoute | null },
): Promise<void> {
  const current = (await readJsonFile<Routes>(layout.routesFile)) ?? { replicas: 0 };
  const next: Routes = { ...current, ...(change.replicas !== undefined ? { replicas: change.replicas } : {}) };
  if (change.candidate === null) delete next.candidate;
  else if (change.candidate) next.candidate = change.candidate;
  if (change.mirror === null) delete next.mirror;
  else if (change.mirror) next.mirror = change.mirror;
  await fs.mkdir(layout.gatewayDir, { recursive: true });
  await writeJsonFileAtomic(layout.routesFile, next);
}

export async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * True when a recorded replica is one of the set's live processes (`live`, from findOwnProcesses): the same
 * pid with the same start time, when the record has one (a pid reused by another process is not it).
 */
export function isRunning(record: { pid: number; startTime?: number }, live: readonly FoundProcess[]): boolean {
  return live.some((p) => p.pid === record.pid && (record.startTime === undefined || p.startTime === record.startTime));
}
