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
import os from 'node:os';
import path from 'node:path';

import autocannon from 'autocannon';

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

async function drive(url: string, key: string, concurrency: number, seconds: number) {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: concurrency,
        duration: seconds,
        timeout: 60,
        requests: [1, 2, 3].map((index) => ({
          method: 'POST',
          path: '/score',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ index }),
        })),
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status === 200) latencies.push(ms);
    });
  });
  latencies.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    seconds: result.duration,
    requests: result['2xx'],
    requestsPerSecond: round(result['2xx'] / result.duration),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    errors: result.errors + result.non2xx,
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
