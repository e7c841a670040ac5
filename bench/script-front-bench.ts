/**
 * bench:serve's script path: a scoring script (the Azure ML v2-style fixture, test/fixtures/scripts/v2, under
 * azureml-inference-server-http 1.5.1 in gunicorn) behind inferctl's script front (src/script/front-main.ts,
 * the key checked in constant time, limits, metrics), against the same Python server reached directly on its
 * own loopback port: the front's added latency (p50, p99) and its throughput as a share of direct, at
 * concurrency 1 and 8, the two measured back to back per concurrency. The environment is built (or found) in
 * INFERCTL_PYTHON_ENVS, else ~/.cache/inferctl/test-script-envs (the tests' cache): the first run builds it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { LocalLayout } from '../src/targets/local/layout';
import { buildScriptImage } from '../src/targets/local/script-replica';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'scripts');
const FRONT_MAIN = path.join(ROOT, 'dist', 'src', 'script', 'front-main.js');
const ENVS = process.env.INFERCTL_PYTHON_ENVS ?? path.join(os.homedir(), '.cache', 'inferctl', 'test-script-envs');

export interface ScriptCell {
  path: 'front' | 'direct';
  concurrency: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

function log(line: string): void {
  process.stderr.write(`[serve-bench script] ${line}\n`);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * `concurrency` loops POSTing for `seconds`, each timing its own requests: a keep-alive agent, which reconnects
 * when gunicorn's sync worker closes the connection (it does after every answer), the same for both paths.
 * (autocannon's latencies are not comparable here: it counts a closed connection's reconnect in odd ways.)
 */
async function drive(url: string, key: string, concurrency: number, seconds: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const target = new URL(url);
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  const one = (index: number) =>
    new Promise<number>((resolve) => {
      const body = JSON.stringify({ index });
      const req = http.request(
        {
          hostname: target.hostname,
          port: target.port,
          path: '/score',
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${key}`,
            'content-type': 'application/json',
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
        const status = await one(i % 3);
        if (status === 200) latencies.push(performance.now() - t0);
        else errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    seconds: round(elapsed),
    requests: latencies.length,
    requestsPerSecond: round(latencies.length / elapsed),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    errors,
  };
}

/** The front started on the bundle; its URL and the Python server's (from the line the front prints). */
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
    const m = /script front on (http:\/\/[^,\s]+), Python server \(group \d+\) on (127\.0\.0\.1:\d+)/.exec(out);
    if (m) {
      const front = m[1]!;
      const ready = await fetch(`${front}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) return { child, front, direct: `http://${m[2]}` };
    }
    if (child.exitCode !== null) throw new Error(`the script front exited (${child.exitCode}): ${out}`);
    if (Date.now() > deadline) throw new Error(`the script was not ready within 180 s: ${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM'); // the front stops its Python group with it
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** Front and direct, back to back at each concurrency. */
export async function measureScriptFront(concurrencies: number[], seconds: number): Promise<ScriptCell[]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-serve-bench-script-'));
  const key = `bench-${process.pid}-${Date.now()}`;
  const keyFile = path.join(dir, 'key');
  let front: ChildProcess | undefined;
  const cells: ScriptCell[] = [];
  try {
    await fs.writeFile(keyFile, key, { mode: 0o600 });
    const layout = new LocalLayout('bench-script', path.join(dir, 'home'));
    log(`environment in ${ENVS} (built once), bundle…`);
    const image = await buildScriptImage(
      layout,
      {
        name: 'bench-script',
        target: 'local',
        ownerId: 'serve-bench',
        modelPath: path.join(FIXTURES, 'v2-model', 'colours'),
        replicas: 1,
        topK: 5,
        script: {
          entryScript: path.join(FIXTURES, 'v2', 'score.py'),
          environmentFile: path.join(FIXTURES, 'v2', 'requirements.txt'),
        },
      },
      ENVS,
      undefined,
      (line) => log(line),
    );
    const started = await startFront(image.imageRef, dir, keyFile);
    front = started.child;
    await drive(started.front, key, 8, Math.min(2, seconds)); // warm-up, both paths
    await drive(started.direct, key, 8, Math.min(2, seconds));
    for (const concurrency of concurrencies) {
      for (const [which, url] of [
        ['front', started.front],
        ['direct', started.direct],
      ] as const) {
        await new Promise((r) => setTimeout(r, 500));
        const cell: ScriptCell = { path: which, concurrency, ...(await drive(url, key, concurrency, seconds)) };
        log(JSON.stringify(cell));
        cells.push(cell);
      }
    }
  } finally {
    if (front) await stop(front);
    await fs.rm(dir, { recursive: true, force: true });
  }
  return cells;
}

/** The script path's table and its targets (front ≥ 0.95× direct throughput, < 2 ms added at p50). */
export function scriptMarkdown(cells: ScriptCell[]): string[] {
  const lines = [
    '',
    '## Scoring script: inferctl’s front vs azureml-inference-server-http reached directly',
    '',
    'The v2-style fixture script (test/fixtures/scripts/v2, JSON in and out) under azureml-inference-server-http ' +
      '1.5.1 (gunicorn, one sync worker), the front and direct measured back to back at each concurrency.',
    '',
    '| concurrency | path | req/s | p50 ms | p99 ms | errors |',
    '| ---: | --- | ---: | ---: | ---: | ---: |',
    ...cells.map(
      (c) => `| ${c.concurrency} | ${c.path} | ${c.requestsPerSecond} | ${c.p50Ms} | ${c.p99Ms} | ${c.errors} |`,
    ),
    '',
  ];
  for (const concurrency of new Set(cells.map((c) => c.concurrency))) {
    const front = cells.find((c) => c.concurrency === concurrency && c.path === 'front');
    const direct = cells.find((c) => c.concurrency === concurrency && c.path === 'direct');
    if (!front || !direct) continue;
    const ratio = Math.round((front.requestsPerSecond / direct.requestsPerSecond) * 100) / 100;
    const addedP50 = Math.round((front.p50Ms - direct.p50Ms) * 100) / 100;
    const addedP99 = Math.round((front.p99Ms - direct.p99Ms) * 100) / 100;
    lines.push(
      `- concurrency ${concurrency}: the front adds ${addedP50} ms at p50 (target < 2: ${addedP50 < 2 ? 'met' : 'not met'}) ` +
        `and ${addedP99} ms at p99; throughput ${ratio}× direct (target ≥ 0.95: ${ratio >= 0.95 ? 'met' : 'not met'}).`,
    );
  }
  return lines;
}
