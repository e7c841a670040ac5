/**
 * bench:serve's script path: each scoring script of script-front-cases.ts (a trivial one and the how-to's
 * JPEG + ResNet-50 shape, under azureml-inference-server-http 1.5.1 in gunicorn) behind inferctl's script front (src/script/front-main.ts,
 * the key checked in constant time, limits, metrics; its Python server on a Unix socket of its own), against
 * azureml-inference-server-http reached directly, at concurrency 1 and 8. Five paths, each served by one sync
 * gunicorn worker (the front's default and azmlinfsrv's, WORKER_COUNT=1):
 *   front        a client → the front (loopback TCP, keep-alive) → its Python server (Unix socket);
 *   direct       a client → a second Python server started with the front's own command line
 *                (python-server.ts) bound to a loopback port instead, as azmlinfsrv serves: what a client
 *                reaches without inferctl;
 *   direct-unix  a client → the front's own Python server through its socket: what the front's hop costs
 *                by itself;
 *   relay        a client → a byte relay (script-relay.ts: loopback TCP joined to the same socket, no HTTP
 *                parsing, no key) → the front's own Python server: the floor of any front in Node on this hop;
 *   http-relay   a client → a bare node:http proxy (script-relay.ts --http: keep-alive to the client, a
 *                connection per request to the same socket, as the front; no key, limits or counters);
 *   front-nice   with --front-nice N only, an experiment: the same front, its main thread at nice N during its
 *                own slices (back to 0 after; the Python server keeps 0), to tell whether what the front adds
 *                to a saturated worker is the CPU it takes from inference.
 * The same client code drives each path, and the paths alternate in short slices within each concurrency
 * (the order rotating each round), so the machine's other load falls on all of them alike. Per path: CPU
 * milliseconds per request of the front and of the Python server's processes (from /proc), next to req/s and
 * latency, and the Python side's own run() time per request (azureml-inference-server-http's
 * x-ms-run-fn-exec-ms header, which every path passes on). Each non-direct path is compared with direct with a
 * 95 % interval from a block bootstrap over rounds (script-front-stats.ts).
 * The environment is built (or found) in INFERCTL_PYTHON_ENVS, else ~/.cache/inferctl/test-script-envs (the
 * tests' cache): the first run builds it. The processes it starts: script-front-processes.ts.
 */
import type { ChildProcess } from 'node:child_process';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { LocalLayout } from '../src/targets/local/layout';
import { buildScriptImage } from '../src/targets/local/script-replica';
import type { ScriptBenchCase } from './script-front-cases';
import { startDirect, startFront, startRelay, stop } from './script-front-processes';
import { compareRounds, percentile } from './script-front-stats';
import type { PairedComparison, SliceSample } from './script-front-stats';

const ENVS = process.env.INFERCTL_PYTHON_ENVS ?? path.join(os.homedir(), '.cache', 'inferctl', 'test-script-envs');

export type ScriptPath = 'front' | 'direct' | 'direct-unix' | 'relay' | 'http-relay' | 'front-nice';

export interface ScriptCell {
  /** The script (script-front-cases.ts). */
  script: ScriptBenchCase['name'];
  path: ScriptPath;
  concurrency: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** CPU time per answered request: the front's process, the relay's (either), and the Python server's on this path. */
  frontCpuMsPerRequest: number;
  relayCpuMsPerRequest: number;
  pythonCpuMsPerRequest: number;
  /** The Python side's run() time per request (x-ms-run-fn-exec-ms): p50 and mean, ms. */
  runP50Ms: number;
  runMeanMs: number;
  /** Slices per path (rounds) and each slice's length. */
  rounds: number;
  sliceSeconds: number;
  /** This path against direct, with 95 % intervals over rounds (absent on direct itself). */
  vsDirect?: PairedComparison;
}

/** Where a path's client connects: a loopback port or a Unix socket. */
type Endpoint = { port: number } | { socketPath: string };

function log(line: string): void {
  process.stderr.write(`[serve-bench script] ${line}\n`);
}

/** CPU milliseconds (user + system) a process has used so far, from /proc; 0 once it is gone. */
function cpuMs(pid: number): number {
  try {
    const stat = fsSync.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks of 1/100 s (USER_HZ)
  } catch {
    return 0;
  }
}

/** The processes of a process group (gunicorn's arbiter and its workers), from /proc. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of fsSync.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fsSync.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) members.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

interface Slice extends SliceSample {
  errors: number;
  /** The Python side's run() time of each answered request, ms. */
  runMs: number[];
}

/**
 * `concurrency` loops POSTing for `seconds`, each timing its own requests: a keep-alive agent, which reconnects
 * when gunicorn's sync worker closes the connection (it does after every answer), the same for every path.
 * (autocannon's latencies are not comparable here: it counts a closed connection's reconnect in odd ways.)
 */
async function drive(
  endpoint: Endpoint,
  agent: http.Agent,
  key: string,
  bodies: ScriptBenchCase['bodies'],
  concurrency: number,
  seconds: number,
): Promise<Slice> {
  const latencies: number[] = [];
  const runMs: number[] = [];
  let errors = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  const where =
    'socketPath' in endpoint ? { socketPath: endpoint.socketPath } : { host: '127.0.0.1', port: endpoint.port };
  const one = (index: number) =>
    new Promise<{ status: number; run: number }>((resolve) => {
      const { body, contentType } = bodies[index % bodies.length]!;
      const req = http.request(
        {
          ...where,
          path: '/score',
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${key}`,
            'content-type': contentType,
            'content-length': body.length,
          },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, run: Number(res.headers['x-ms-run-fn-exec-ms'] ?? NaN) }),
          );
        },
      );
      req.on('error', () => resolve({ status: 0, run: NaN }));
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let i = worker; performance.now() < end; i++) {
        const t0 = performance.now();
        const { status, run } = await one(i);
        if (status === 200) {
          latencies.push(performance.now() - t0);
          if (Number.isFinite(run)) runMs.push(run);
        } else errors++;
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latencies, errors, runMs };
}

/** Each case's paths, alternating in slices of the case's plan (length and rounds per concurrency). */
export async function measureScriptFront(
  cases: ScriptBenchCase[],
  concurrencies: number[],
  opts: { frontNice?: number } = {},
): Promise<ScriptCell[]> {
  const cells: ScriptCell[] = [];
  for (const benchCase of cases) cells.push(...(await measureCase(benchCase, concurrencies, opts.frontNice)));
  return cells;
}

interface PathSpec {
  path: ScriptPath;
  endpoint: Endpoint;
  pythonGroup: number;
  /** The front's main thread's nice value during this path's slices (front-nice). */
  nice?: number;
}

interface PathTotals {
  slices: Slice[];
  front: number;
  relay: number;
  python: number;
}

/** One concurrency: every path's slices, the order rotating each round; then a cell per path. */
async function measureConcurrency(
  benchCase: ScriptBenchCase,
  paths: PathSpec[],
  pids: { front: number; relay: number; httpRelay: number },
  agent: http.Agent,
  key: string,
  concurrency: number,
): Promise<ScriptCell[]> {
  const { sliceSeconds, rounds } = benchCase.plan(concurrency);
  const totals = new Map<ScriptPath, PathTotals>(
    paths.map((p) => [p.path, { slices: [], front: 0, relay: 0, python: 0 }]),
  );
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < paths.length; i++) {
      const p = paths[(round + i) % paths.length]!;
      const python = groupMembers(p.pythonGroup);
      const cpu = () => ({
        front: cpuMs(pids.front),
        relay: p.path === 'http-relay' ? cpuMs(pids.httpRelay) : cpuMs(pids.relay),
        python: python.reduce((sum, pid) => sum + cpuMs(pid), 0),
      });
      const before = cpu();
      if (p.nice !== undefined) os.setPriority(pids.front, p.nice);
      const slice = await drive(p.endpoint, agent, key, benchCase.bodies, concurrency, sliceSeconds).finally(() => {
        if (p.nice !== undefined) os.setPriority(pids.front, 0);
      });
      const after = cpu();
      const total = totals.get(p.path)!;
      total.slices.push(slice);
      total.front += after.front - before.front;
      total.relay += after.relay - before.relay;
      total.python += after.python - before.python;
    }
  }
  const round2 = (n: number) => Math.round(n * 100) / 100;
  const direct = totals.get('direct')!.slices;
  return paths.map((p) => {
    const { slices, front, relay, python } = totals.get(p.path)!;
    const seconds = slices.reduce((sum, s) => sum + s.seconds, 0);
    const latencies = slices.flatMap((s) => s.latencies).sort((a, b) => a - b);
    const runMs = slices.flatMap((s) => s.runMs).sort((a, b) => a - b);
    const cell: ScriptCell = {
      script: benchCase.name,
      path: p.path,
      concurrency,
      seconds: round2(seconds),
      requests: latencies.length,
      requestsPerSecond: round2(latencies.length / seconds),
      p50Ms: round2(percentile(latencies, 50)),
      p99Ms: round2(percentile(latencies, 99)),
      errors: slices.reduce((sum, s) => sum + s.errors, 0),
      frontCpuMsPerRequest: round2(front / latencies.length),
      relayCpuMsPerRequest: round2(relay / latencies.length),
      pythonCpuMsPerRequest: round2(python / latencies.length),
      runP50Ms: round2(percentile(runMs, 50)),
      runMeanMs: round2(runMs.reduce((sum, r) => sum + r, 0) / runMs.length),
      rounds,
      sliceSeconds,
      ...(p.path === 'direct' ? {} : { vsDirect: compareRounds(slices, direct) }),
    };
    log(JSON.stringify(cell));
    return cell;
  });
}

async function measureCase(
  benchCase: ScriptBenchCase,
  concurrencies: number[],
  frontNice: number | undefined,
): Promise<ScriptCell[]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-serve-bench-script-'));
  const key = `bench-${process.pid}-${Date.now()}`;
  const keyFile = path.join(dir, 'key');
  const children: Array<{ child: ChildProcess; group: boolean }> = [];
  const cells: ScriptCell[] = [];
  try {
    await fs.writeFile(keyFile, key, { mode: 0o600 });
    const layout = new LocalLayout('bench-script', path.join(dir, 'home'));
    log(`${benchCase.name}: environment in ${ENVS} (built once), bundle…`);
    const image = await buildScriptImage(
      layout,
      {
        name: 'bench-script',
        target: 'local',
        ownerId: 'serve-bench',
        modelPath: benchCase.modelPath,
        replicas: 1,
        topK: 5,
        script: benchCase.script,
      },
      ENVS,
      undefined,
      (line) => log(line),
    );
    const front = await startFront(image.imageRef, dir, keyFile);
    children.push({ child: front.child, group: false });
    const direct = await startDirect(image.imageRef, dir);
    children.push({ child: direct.child, group: true });
    const relay = await startRelay(front.socketPath, false);
    children.push({ child: relay.child, group: false });
    const httpRelay = await startRelay(front.socketPath, true);
    children.push({ child: httpRelay.child, group: false });
    const paths: PathSpec[] = [
      { path: 'front', endpoint: { port: front.port }, pythonGroup: front.pythonGroup },
      { path: 'direct', endpoint: { port: direct.port }, pythonGroup: direct.child.pid! },
      { path: 'direct-unix', endpoint: { socketPath: front.socketPath }, pythonGroup: front.pythonGroup },
      { path: 'relay', endpoint: { port: relay.port }, pythonGroup: front.pythonGroup },
      { path: 'http-relay', endpoint: { port: httpRelay.port }, pythonGroup: front.pythonGroup },
    ];
    if (frontNice !== undefined) {
      try {
        os.setPriority(front.child.pid!, frontNice);
        os.setPriority(front.child.pid!, 0); // lowering it back needs CAP_SYS_NICE: find out now
      } catch (err) {
        throw new Error(`--front-nice needs the right to lower a nice value again (CAP_SYS_NICE): ${String(err)}`);
      }
      paths.push({
        path: 'front-nice',
        endpoint: { port: front.port },
        pythonGroup: front.pythonGroup,
        nice: frontNice,
      });
    }
    const agent = new http.Agent({ keepAlive: true });
    for (const p of paths) await drive(p.endpoint, agent, key, benchCase.bodies, 8, 1); // warm-up
    const pids = { front: front.child.pid!, relay: relay.child.pid!, httpRelay: httpRelay.child.pid! };
    for (const concurrency of concurrencies) {
      cells.push(...(await measureConcurrency(benchCase, paths, pids, agent, key, concurrency)));
    }
    agent.destroy();
  } finally {
    for (const { child, group } of children.reverse()) await stop(child, group);
    await fs.rm(dir, { recursive: true, force: true });
  }
  return cells;
}
