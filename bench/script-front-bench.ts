/**
 * bench:serve's script path: each scoring script of script-front-cases.ts (a trivial one and the how-to's
 * JPEG + ResNet-50 shape, under azureml-inference-server-http 1.5.1 in gunicorn) behind inferctl's script front (src/script/front-main.ts,
 * the key checked in constant time, limits, metrics; its Python server on a Unix socket of its own), against
 * azureml-inference-server-http reached directly, at concurrency 1 and 8. Three paths, each served by one sync
 * gunicorn worker (the front's default and azmlinfsrv's, WORKER_COUNT=1):
 *   front        a client → the front (loopback TCP, keep-alive) → its Python server (Unix socket);
 *   direct       a client → a second Python server started with the front's own command line
 *                (python-server.ts) bound to a loopback port instead, as azmlinfsrv serves: what a client
 *                reaches without inferctl;
 *   direct-unix  a client → the front's own Python server through its socket: what the front's hop costs
 *                by itself.
 * The same client code drives each path, and the paths alternate in short slices within each concurrency
 * (the order rotating each round), so the machine's other load falls on all of them alike. Per path: CPU
 * milliseconds per request of the front and of the Python server's processes (from /proc), next to req/s and
 * latency. The environment is built (or found) in INFERCTL_PYTHON_ENVS, else ~/.cache/inferctl/test-script-envs
 * (the tests' cache): the first run builds it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { SCRIPT_MANIFEST } from '../src/script/bundle-manifest';
import type { ScriptManifest } from '../src/script/bundle-manifest';
import { pythonServerCommand, spawnPythonServer } from '../src/script/python-server';
import { LocalLayout } from '../src/targets/local/layout';
import { buildScriptImage } from '../src/targets/local/script-replica';
import { freePort } from '../src/temporal/dev-server';
import type { ScriptBenchCase } from './script-front-cases';

const ROOT = path.resolve(__dirname, '..', '..');
const FRONT_MAIN = path.join(ROOT, 'dist', 'src', 'script', 'front-main.js');
const ENVS = process.env.INFERCTL_PYTHON_ENVS ?? path.join(os.homedir(), '.cache', 'inferctl', 'test-script-envs');

export type ScriptPath = 'front' | 'direct' | 'direct-unix';

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
  /** CPU time per answered request: the front's process, and the Python server's processes on this path. */
  frontCpuMsPerRequest: number;
  pythonCpuMsPerRequest: number;
}

/** Where a path's client connects: a loopback port or a Unix socket. */
type Endpoint = { port: number } | { socketPath: string };

function log(line: string): void {
  process.stderr.write(`[serve-bench script] ${line}\n`);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
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

interface Slice {
  seconds: number;
  latencies: number[];
  errors: number;
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
  let errors = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  const where =
    'socketPath' in endpoint ? { socketPath: endpoint.socketPath } : { host: '127.0.0.1', port: endpoint.port };
  const one = (index: number) =>
    new Promise<number>((resolve) => {
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
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', () => resolve(0));
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let i = worker; performance.now() < end; i++) {
        const t0 = performance.now();
        const status = await one(i);
        if (status === 200) latencies.push(performance.now() - t0);
        else errors++;
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latencies, errors };
}

/** The front started on the bundle; its URL, and its Python server's group and socket (from the line it prints). */
async function startFront(bundle: string, dir: string, keyFile: string) {
  const readyFile = path.join(dir, 'ready.json');
  const child: ChildProcess = spawn(
    process.execPath,
    [
      FRONT_MAIN,
      '--bundle',
      bundle,
      '--api-key-file',
      keyFile,
      '--ready-file',
      readyFile,
      '--child-record',
      path.join(dir, 'python.json'),
      '--python-log',
      path.join(dir, 'python.log'),
      '--port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 180_000;
  for (;;) {
    const m = /script front on http:\/\/127\.0\.0\.1:(\d+), Python server \(group (\d+)\) on unix:(\S+)/.exec(out);
    if (m) {
      const port = Number(m[1]);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) return { child, port, pythonGroup: Number(m[2]), socketPath: m[3]! };
    }
    if (child.exitCode !== null) throw new Error(`the script front exited (${child.exitCode}): ${out}`);
    if (Date.now() > deadline) throw new Error(`the script was not ready within 180 s: ${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The direct path's Python server: the front's command line, bound to a loopback port; answering once init() ran. */
async function startDirect(bundle: string, dir: string) {
  const manifest = JSON.parse(await fs.readFile(path.join(bundle, SCRIPT_MANIFEST), 'utf8')) as ScriptManifest;
  const port = await freePort();
  const command = pythonServerCommand({
    bundle,
    manifest,
    python: manifest.python,
    bind: `127.0.0.1:${port}`,
    workers: 1,
    noControlSocket: manifest.noControlSocket ?? false,
  });
  const child = spawnPythonServer(command, path.join(dir, 'direct.log'));
  const deadline = Date.now() + 180_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { child, port };
    if (child.exitCode !== null) throw new Error(`the direct Python server exited (${child.exitCode}); see ${dir}`);
    if (Date.now() > deadline) throw new Error('the direct Python server did not answer within 180 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stop(child: ChildProcess, group = false): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  const signal = (s: NodeJS.Signals) => (group ? process.kill(-child.pid!, s) : child.kill(s));
  signal('SIGTERM'); // the front stops its Python group with it
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (child.exitCode === null && child.signalCode === null) signal('SIGKILL');
}

/** Each case's three paths, alternating in slices of the case's length, its rounds per concurrency. */
export async function measureScriptFront(cases: ScriptBenchCase[], concurrencies: number[]): Promise<ScriptCell[]> {
  const cells: ScriptCell[] = [];
  for (const benchCase of cases) cells.push(...(await measureCase(benchCase, concurrencies)));
  return cells;
}

async function measureCase(benchCase: ScriptBenchCase, concurrencies: number[]): Promise<ScriptCell[]> {
  const { sliceSeconds, rounds, bodies } = benchCase;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-serve-bench-script-'));
  const key = `bench-${process.pid}-${Date.now()}`;
  const keyFile = path.join(dir, 'key');
  let front: ChildProcess | undefined;
  let direct: ChildProcess | undefined;
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
    const started = await startFront(image.imageRef, dir, keyFile);
    front = started.child;
    const directServer = await startDirect(image.imageRef, dir);
    direct = directServer.child;
    const paths: Array<{ path: ScriptPath; endpoint: Endpoint; pythonGroup: number }> = [
      { path: 'front', endpoint: { port: started.port }, pythonGroup: started.pythonGroup },
      { path: 'direct', endpoint: { port: directServer.port }, pythonGroup: direct.pid! },
      { path: 'direct-unix', endpoint: { socketPath: started.socketPath }, pythonGroup: started.pythonGroup },
    ];
    const agent = new http.Agent({ keepAlive: true });
    for (const p of paths) await drive(p.endpoint, agent, key, bodies, 8, 1); // warm-up
    for (const concurrency of concurrencies) {
      const totals = new Map<ScriptPath, { slice: Slice; front: number; python: number }>();
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < paths.length; i++) {
          const p = paths[(round + i) % paths.length]!;
          const python = groupMembers(p.pythonGroup);
          const cpu = () => ({ front: cpuMs(front!.pid!), python: python.reduce((sum, pid) => sum + cpuMs(pid), 0) });
          const before = cpu();
          const slice = await drive(p.endpoint, agent, key, bodies, concurrency, sliceSeconds);
          const after = cpu();
          const total = totals.get(p.path) ?? { slice: { seconds: 0, latencies: [], errors: 0 }, front: 0, python: 0 };
          total.slice.seconds += slice.seconds;
          total.slice.latencies.push(...slice.latencies);
          total.slice.errors += slice.errors;
          total.front += after.front - before.front;
          total.python += after.python - before.python;
          totals.set(p.path, total);
        }
      }
      for (const p of paths) {
        const { slice, front: frontCpu, python } = totals.get(p.path)!;
        const latencies = [...slice.latencies].sort((a, b) => a - b);
        const round2 = (n: number) => Math.round(n * 100) / 100;
        const cell: ScriptCell = {
          script: benchCase.name,
          path: p.path,
          concurrency,
          seconds: round2(slice.seconds),
          requests: latencies.length,
          requestsPerSecond: round2(latencies.length / slice.seconds),
          p50Ms: round2(percentile(latencies, 50)),
          p99Ms: round2(percentile(latencies, 99)),
          errors: slice.errors,
          frontCpuMsPerRequest: round2(frontCpu / latencies.length),
          pythonCpuMsPerRequest: round2(python / latencies.length),
        };
        log(JSON.stringify(cell));
        cells.push(cell);
      }
    }
    agent.destroy();
  } finally {
    if (front) await stop(front);
    if (direct) await stop(direct, true);
    await fs.rm(dir, { recursive: true, force: true });
  }
  return cells;
}
