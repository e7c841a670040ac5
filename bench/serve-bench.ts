/**
 * `npm run bench:serve` (`-- --quick` for fewer, shorter cells): the scoring server under load, dynamic
 * batching on (the replica defaults) and off (--no-batching) side by side in one run. Each
 * configuration is a real replica process (`node dist/src/server/main.js`, key file 0600 in a temp dir)
 * on loopback, for the ResNet-50-shaped model (224x224, generated into bench/work once) and the tiny
 * colour CNN; this process drives it with autocannon, keep-alive connections at concurrency 1, 8, 32
 * and 64, posting real JPEGs in turn. Per cell: requests/s (2xx), p50/p95/p99 latency, errors (failed
 * or non-2xx requests), the average executed batch size and the mean time a request waited in the batcher
 * (from the replica's /metrics), and /healthz's
 * p99 while the cell runs (probed every 100 ms from a process of its own, healthz-probe.ts: inference runs
 * off the replica's main thread, so it must keep answering). Next to them, the same images decoded and inferred in one process
 * without HTTP (batch-case.js --case pipeline), what a replica at concurrency 32 is compared with. Each
 * concurrency's on and off cells are measured in alternating halves (on off off on), each after both replicas
 * have finished what earlier parts left them, so neither pays for the other's stragglers.
 * Then the scoring-script path (script-front-bench.ts): inferctl's front against the same
 * azureml-inference-server-http reached directly, at concurrency 1 and 8, for a trivial script and the how-to's
 * JPEG + ResNet-50 one (script-front-cases.ts; `--script-only` runs just that part, `--no-script` skips it,
 * `--script trivial|howto-resnet50` runs one script; `--front-nice N` adds the front-nice experiment, `--script-concurrency 8` runs one concurrency; `--model-only NAME`, `--concurrency 1,8`, `--seconds N` narrow a run). Writes bench/results/serve-<date>.json and .md.
 */
import { execFile, fork } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import autocannon from 'autocannon';

import { makeColourJpeg } from '../src/demo/sample-images';
import { fileExists } from '../src/file-exists';
import { checkBenchArgs } from './bench-cli';
import { measureScriptFront } from './script-front-bench';
import type { ScriptCell } from './script-front-bench';
import { scriptBenchCases } from './script-front-cases';
import { scriptMarkdown } from './script-front-report';
import { buildResnet50Shaped } from '../src/demo/resnet50';
import { TINY_CNN_LABELS, buildTinyCnn } from '../src/demo/tiny-cnn';
import { SERVER_MAIN, log, replicaMetrics, startReplica, stopReplica, waitIdle } from './serve-replica';
import type { Replica } from './serve-replica';

const ROOT = path.resolve(__dirname, '..', '..');
const WORK = path.join(ROOT, 'bench', 'work');
const RESULTS = path.join(ROOT, 'bench', 'results');
const KEY = `bench-${Date.now()}-${process.pid}`;

interface Cell {
  model: string;
  batching: 'on' | 'off';
  concurrency: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  errors: number;
  avgBatchSize: number;
  /** Mean time a request waited in the batcher before its inference started (batching on), ms. */
  meanQueueDelayMs: number;
  healthzP99Ms: number;
  /** /healthz probes that got no 200 (refused, reset, or an error status). */
  healthzFailures: number;
  /** The replica's own main-thread event-loop delay during the cell (its /metrics), p99 and max. */
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
}

/** bench/work/resnet50-shaped.onnx, generated once. */
async function resnet50Model(): Promise<string> {
  await fs.mkdir(WORK, { recursive: true });
  const resnet = path.join(WORK, 'resnet50-shaped.onnx');
  if (!(await fileExists(resnet))) {
    log('generating the ResNet-50-shaped model (once)…');
    await fs.writeFile(`${resnet}.tmp`, buildResnet50Shaped({ seed: 50 }));
    await fs.rename(`${resnet}.tmp`, resnet);
  }
  return resnet;
}

async function prepareModels(): Promise<Array<{ name: string; file: string }>> {
  const resnet = await resnet50Model();
  const tiny = path.join(WORK, 'tiny-cnn.onnx');
  await fs.writeFile(tiny, buildTinyCnn());
  return [
    { name: 'resnet50-shaped', file: resnet },
    { name: 'tiny-cnn', file: tiny },
  ];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function drive(url: string, bodies: Buffer[], concurrency: number, seconds: number) {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: concurrency,
        duration: seconds,
        timeout: 60,
        requests: bodies.map((body) => ({
          method: 'POST',
          path: '/score',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'image/jpeg' },
          body,
        })),
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status === 200) latencies.push(ms);
    });
  });
  latencies.sort((a, b) => a - b);
  return { result, latencies };
}

/** The /healthz prober, in its own process (healthz-probe.ts), for the length of one cell. */
function startHealthzProbe(url: string) {
  const child = fork(path.join(__dirname, 'healthz-probe.js'), [url, '100'], { stdio: 'inherit' });
  const result = new Promise<{ latencies: number[]; failures: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { latencies: number[]; failures: number }));
    child.once('exit', (code) => reject(new Error(`the /healthz probe exited (${code}) without its figures`)));
  }).then(({ latencies, failures }) => ({ latencies: [...latencies].sort((a, b) => a - b), failures }));
  return { stop: () => child.send('stop'), result };
}

/** One part of a cell: `concurrency` connections for `seconds` against one replica, with its raw figures. */
async function cellPart(replica: Replica, bodies: Buffer[], concurrency: number, seconds: number) {
  const before = await replicaMetrics(replica.url);
  const probe = startHealthzProbe(replica.url);
  const { result, latencies } = await drive(replica.url, bodies, concurrency, seconds).finally(() => probe.stop());
  const health = await probe.result;
  const after = await replicaMetrics(replica.url);
  return { result, latencies, health, before, after };
}

type CellPart = Awaited<ReturnType<typeof cellPart>>;

/** A cell from its parts (the halves measured apart, see measure()). */
function mergeCell(model: string, batching: 'on' | 'off', concurrency: number, parts: CellPart[]): Cell {
  const round = (n: number) => Math.round(n * 10) / 10;
  const sum = (f: (p: CellPart) => number) => parts.reduce((total, p) => total + f(p), 0);
  const seconds = sum((p) => p.result.duration);
  const requests = sum((p) => p.result['2xx']);
  const latencies = parts.flatMap((p) => p.latencies).sort((a, b) => a - b);
  const health = parts.flatMap((p) => p.health.latencies).sort((a, b) => a - b);
  const batches = sum((p) => p.after.count - p.before.count);
  const queued = sum((p) => p.after.queueDelayCount - p.before.queueDelayCount);
  return {
    model,
    batching,
    concurrency,
    seconds: round(seconds),
    requests,
    requestsPerSecond: round(requests / seconds),
    p50Ms: round(percentile(latencies, 50)),
    p95Ms: round(percentile(latencies, 95)),
    p99Ms: round(percentile(latencies, 99)),
    errors: sum((p) => p.result.errors + p.result.non2xx),
    avgBatchSize: Math.round((sum((p) => p.after.sum - p.before.sum) / batches) * 100) / 100,
    meanQueueDelayMs:
      queued > 0 ? Math.round((sum((p) => p.after.queueDelaySum - p.before.queueDelaySum) / queued) * 1e5) / 100 : NaN,
    healthzP99Ms: round(percentile(health, 99)),
    healthzFailures: sum((p) => p.health.failures),
    eventLoopDelayP99Ms: round(Math.max(...parts.map((p) => p.after.loopDelayP99Ms))),
    eventLoopDelayMaxMs: round(Math.max(...parts.map((p) => p.after.loopDelayMaxMs))),
  };
}

/**
 * Both replicas of a model run at once (the idle one costs only memory). Each concurrency's two cells are
 * measured in halves, on off off on (or off on on off, alternating), each after both replicas are idle, so
 * that the machine's other load, and its drift, falls on both alike.
 */
async function measure(
  model: { name: string; file: string },
  dir: string,
  bodies: Buffer[],
  concurrencies: number[],
  seconds: number,
  loadAverages: number[],
): Promise<Cell[]> {
  const replicas: Array<[batching: 'on' | 'off', Replica]> = [];
  const cells: Cell[] = [];
  try {
    replicas.push(['on', await startReplica(model.file, dir, true)]);
    replicas.push(['off', await startReplica(model.file, dir, false)]);
    for (const [, replica] of replicas) await drive(replica.url, bodies, 8, Math.min(2, seconds)); // warm-up
    for (const [index, concurrency] of concurrencies.entries()) {
      const first = index % 2 === 0 ? replicas : [...replicas].reverse();
      const parts = new Map<'on' | 'off', CellPart[]>([
        ['on', []],
        ['off', []],
      ]);
      loadAverages.push(os.loadavg()[0]!);
      for (const [batching, replica] of [...first, ...[...first].reverse()]) {
        await waitIdle(replicas.map(([, r]) => r));
        parts.get(batching)!.push(await cellPart(replica, bodies, concurrency, seconds / 2));
      }
      for (const [batching] of replicas) {
        const measured = mergeCell(model.name, batching, concurrency, parts.get(batching)!);
        log(JSON.stringify(measured));
        cells.push(measured);
      }
    }
  } finally {
    await Promise.all(replicas.map(([, replica]) => stopReplica(replica)));
  }
  return cells;
}

/** The same images decoded and inferred in one process, no HTTP: batch-case.js's pipeline, items/s. */
async function singleProcess(model: string, bodies: Buffer[], dir: string): Promise<number> {
  const images = path.join(dir, `images-${path.basename(model)}`);
  await fs.mkdir(images, { recursive: true });
  for (let i = 0; i < bodies.length * 8; i++)
    await fs.writeFile(path.join(images, `${i}.jpg`), bodies[i % bodies.length]!);
  const args = ['--case', 'pipeline', '--model', model, '--images', images, '--batch-size', '8'];
  args.push('--shard-size', '32', '--concurrency', '2', '--out', path.join(dir, 'pipeline-out'));
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(__dirname, 'batch-case.js'), ...args]);
  return (JSON.parse(stdout.trim().split('\n').pop()!) as { itemsPerSecond: number }).itemsPerSecond;
}

function markdown(
  cells: Cell[],
  settings: Record<string, unknown>,
  loadAverages: number[],
  baselines: Record<string, number>,
): string {
  const busiest = Math.max(...loadAverages);
  const cpus = os.cpus().length;
  const lines = [
    `# Scoring server: dynamic batching on vs off (${new Date().toISOString()})`,
    '',
    `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, node ${process.version}, CPU execution provider, loopback.`,
    `Settings: ${JSON.stringify(settings)}. Load: autocannon in the bench process; the replica is its own process; /healthz is probed every 100 ms from a third process.`,
    `1-minute load average before the run, then before each cell (the bench's own load included): ` +
      `${loadAverages.map((l) => l.toFixed(1)).join(', ')}.`,
    // The bench keeps about 4 threads busy itself (autocannon, the replica's event loop, onnxruntime's pool).
    ...(busiest > cpus + 4
      ? [
          '',
          `**The machine was busy with other work (load average up to ${busiest.toFixed(1)} on ${cpus} CPUs): ` +
            'these figures mix in that contention; compare them with care and rerun on a quiet machine.**',
        ]
      : []),
    '',
    '| model | concurrency | batching | req/s | p50 ms | p95 ms | p99 ms | errors | avg batch | queue delay ms (mean) | /healthz p99 ms | /healthz failed | loop delay p99 / max ms |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...cells.map(
      (c) =>
        `| ${c.model} | ${c.concurrency} | ${c.batching} | ${c.requestsPerSecond} | ${c.p50Ms} | ${c.p95Ms} | ${c.p99Ms} | ${c.errors} | ${c.avgBatchSize} | ${Number.isNaN(c.meanQueueDelayMs) ? '' : c.meanQueueDelayMs} | ${c.healthzP99Ms} | ${c.healthzFailures} | ${c.eventLoopDelayP99Ms} / ${c.eventLoopDelayMaxMs} |`,
    ),
    '',
    `Single process, no HTTP (decode + infer, batches of 8): ${Object.entries(baselines)
      .map(([m, v]) => `${m} ${v.toFixed(1)} items/s`)
      .join(', ')}.`,
    '',
  ];
  const met = (ok: boolean) => (ok ? 'met' : 'not met');
  for (const c of cells.filter((x) => x.batching === 'on')) {
    const off = cells.find((x) => x.model === c.model && x.concurrency === c.concurrency && x.batching === 'off');
    if (!off) continue;
    const r = Math.round((c.requestsPerSecond / off.requestsPerSecond) * 100) / 100;
    lines.push(`- ${c.model} at concurrency ${c.concurrency}: on/off ${r} (target ≥ 0.95: ${met(r >= 0.95)}).`);
  }
  for (const c of cells.filter((x) => x.concurrency === 32 && x.batching === 'on' && baselines[x.model])) {
    const r = Math.round((c.requestsPerSecond / baselines[c.model]!) * 100) / 100;
    lines.push(`- ${c.model} at concurrency 32: ${r}× the single process (target ≥ 0.9: ${met(r >= 0.9)}).`);
  }
  for (const c of cells.filter((x) => x.concurrency === 64 && x.model === 'resnet50-shaped')) {
    lines.push(
      `- ${c.model} at concurrency 64, batching ${c.batching}: /healthz p99 ${c.healthzP99Ms} ms (target < 50: ${met(c.healthzP99Ms < 50)}); the replica's own event-loop delay p99 ${c.eventLoopDelayP99Ms} ms, max ${c.eventLoopDelayMaxMs} ms.`,
    );
  }
  for (const model of new Set(cells.map((c) => c.model))) {
    const at = (batching: string) =>
      cells.find((c) => c.model === model && c.concurrency === 32 && c.batching === batching);
    const on = at('on');
    const off = at('off');
    if (!on || !off) continue;
    const ratio = Math.round((on.requestsPerSecond / off.requestsPerSecond) * 100) / 100;
    lines.push(
      `- ${model} at concurrency 32: batching on ${ratio}× the throughput of off (target ≥ 2× on a GPU; on CPU, ` +
        `onnxruntime already uses every core for one image, so batching can only save overhead); p99 ${on.p99Ms} ms on vs ${off.p99Ms} ms off (target: no worse: ` +
        `${on.p99Ms <= off.p99Ms ? 'met' : 'not met'}).`,
    );
  }
  return `${lines.join('\n')}\n`;
}

const USAGE = `npm run bench:serve -- [--quick] [--concurrency 1,8,32,64] [--seconds N] [--model-only NAME]
  [--script-only | --no-script] [--script trivial|howto-resnet50] [--script-concurrency 1,8] [--front-nice N]
The scoring server under load, dynamic batching on and off side by side, then the scoring-script front
against azureml-inference-server-http reached directly; writes bench/results/serve-<date>.json and .md.
The flags are described at the top of bench/serve-bench.ts and in bench/README.md.`;

async function main(): Promise<void> {
  checkBenchArgs(USAGE, {
    '--quick': 'switch',
    '--script-only': 'switch',
    '--no-script': 'switch',
    '--concurrency': 'value',
    '--seconds': 'value',
    '--model-only': 'value',
    '--script': 'value',
    '--front-nice': 'value',
    '--script-concurrency': 'value',
  });
  const quick = process.argv.includes('--quick');
  const scriptOnly = process.argv.includes('--script-only');
  const withScript = !process.argv.includes('--no-script');
  const flag = (name: string) =>
    process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined;
  const concurrencies = flag('--concurrency')?.split(',').map(Number) ?? (quick ? [1, 32] : [1, 8, 32, 64]);
  const seconds = Number(flag('--seconds') ?? (quick ? 3 : 5));
  if (!(await fileExists(SERVER_MAIN))) throw new Error(`${SERVER_MAIN} is missing; run npm run build first.`);
  const only = flag('--model-only');
  const models = scriptOnly ? [] : (await prepareModels()).filter((m) => only === undefined || m.name === only);
  const bodies = await Promise.all(
    Array.from({ length: 16 }, (_, i) =>
      makeColourJpeg(TINY_CNN_LABELS[i % TINY_CNN_LABELS.length]!, { seed: i, size: 256 }),
    ),
  );
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-serve-bench-'));
  const cells: Cell[] = [];
  const loadAverages: number[] = [os.loadavg()[0]!];
  const baselines: Record<string, number> = {};
  try {
    await fs.writeFile(path.join(dir, 'key'), KEY, { mode: 0o600 });
    for (const model of models) {
      log(`${model.name}: single process…`);
      baselines[model.name] = await singleProcess(model.file, bodies, dir);
      log(`${model.name}…`);
      cells.push(...(await measure(model, dir, bodies, concurrencies, seconds, loadAverages)));
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  const onlyScript = flag('--script');
  const scriptCases = withScript
    ? scriptBenchCases({
        rounds: seconds,
        resnet50: onlyScript === 'trivial' ? '' : await resnet50Model(),
        jpegs: bodies,
      }).filter((c) => onlyScript === undefined || c.name === onlyScript)
    : [];
  const frontNice = flag('--front-nice');
  const scriptConcurrencies = flag('--script-concurrency')?.split(',').map(Number) ?? [1, 8];
  const scriptCells: ScriptCell[] = await measureScriptFront(scriptCases, scriptConcurrencies, {
    frontNice: frontNice === undefined ? undefined : Number(frontNice),
  });
  const settings = {
    quick,
    secondsPerCell: seconds,
    concurrencies,
    batchingOn: 'replica defaults (max batch 8, 2000 µs)',
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  await fs.mkdir(RESULTS, { recursive: true });
  const base = path.join(RESULTS, `serve-${stamp}`);
  await fs.writeFile(
    `${base}.json`,
    `${JSON.stringify({ date: new Date().toISOString(), settings, loadAverages, baselines, cells, scriptCells }, null, 2)}\n`,
  );
  const md = `${markdown(cells, settings, loadAverages, baselines)}${scriptMarkdown(scriptCells, scriptCases).join('\n')}\n`;
  await fs.writeFile(`${base}.md`, md);
  process.stdout.write(md);
  log(`wrote ${base}.json and .md`);
}

main().catch((err: unknown) => {
  process.stderr.write(`serve-bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
