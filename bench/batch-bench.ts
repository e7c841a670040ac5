/**
 * `npm run bench` (`-- --quick` for a run under two minutes): batch scoring throughput, side by side
 * in one run, on a ResNet-50-shaped ONNX model generated here (224x224, seeded random weights: the same
 * work as the real one) and generated JPEGs:
 *   (a) bare onnxruntime-node inference on pre-decoded tensors (the ceiling),
 *   (b) the same decode → infer → write pipeline in one process, without Temporal,
 *   (c) the full batchScore workflow through a GPU worker process (on CPU here),
 *   (d) a Python peer: onnxruntime + Pillow in a plain loop, in its own venv (skipped without python3).
 * Writes bench/results/<date>.json and .md.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { Client, Connection } from '@temporalio/client';

import { writeSampleImages } from '../src/demo/sample-images';
import { buildResnet50Shaped } from '../src/demo/resnet50';
import { batchWorkflowId } from '../src/shared/batch-types';
import type { BatchScoreInput } from '../src/shared/batch-types';
import { startDevServer } from '../src/temporal/dev-server';
import { batchScore } from '../workflows/batch-score';
import type { BatchOutcome } from '../workflows/batch-score';
import { runControlWorker } from '../worker/control';
import { installWorkerRuntime } from '../worker/runtime';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const WORK = path.join(ROOT, 'bench', 'work');
const RESULTS = path.join(ROOT, 'bench', 'results');

interface CaseResult {
  case: string;
  items: number;
  seconds: number;
  itemsPerSecond: number;
  peakRssMb?: number;
  executionProvider?: string;
  note?: string;
}

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

async function prepare(items: number): Promise<{ model: string; images: string }> {
  await fs.mkdir(WORK, { recursive: true });
  const model = path.join(WORK, 'resnet50-shaped.onnx');
  if (!(await exists(model))) {
    log('generating the ResNet-50-shaped model (once)…');
    await fs.writeFile(`${model}.tmp`, buildResnet50Shaped({ seed: 50 }));
    await fs.rename(`${model}.tmp`, model);
  }
  const images = path.join(WORK, `images-${items}`);
  if (!(await exists(images))) {
    log(`generating ${items} JPEGs (once)…`);
    await writeSampleImages(`${images}.tmp`, items, { size: 256 });
    await fs.rename(`${images}.tmp`, images);
  }
  return { model, images };
}

async function runCase(args: string[]): Promise<CaseResult> {
  const { stdout } = await execFileAsync(process.execPath, [path.join(__dirname, 'batch-case.js'), ...args], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as CaseResult;
}

async function pythonPeer(model: string, images: string, batchSize: number): Promise<CaseResult> {
  const venv = path.join(ROOT, 'bench', '.venv');
  const python = path.join(venv, 'bin', 'python');
  try {
    await execFileAsync('python3', ['--version']);
  } catch {
    return { case: 'd', items: 0, seconds: 0, itemsPerSecond: 0, note: 'skipped: python3 not found' };
  }
  if (!(await exists(python))) {
    log('creating the Python peer venv (bench/.venv, once)…');
    await execFileAsync('python3', ['-m', 'venv', venv]);
    await execFileAsync(
      python,
      ['-m', 'pip', 'install', '--quiet', '-r', path.join(ROOT, 'bench', 'requirements.txt')],
      {
        maxBuffer: 16 << 20,
      },
    );
  }
  const out = path.join(WORK, 'peer-predictions.jsonl');
  const { stdout } = await execFileAsync(python, [
    path.join(ROOT, 'bench', 'peer_score.py'),
    '--model',
    model,
    '--images',
    images,
    '--batch-size',
    String(batchSize),
    '--output',
    out,
  ]);
  const r = JSON.parse(stdout.trim()) as {
    items: number;
    seconds: number;
    items_per_second: number;
    peak_rss_mb: number;
  };
  return {
    case: 'd',
    items: r.items,
    seconds: r.seconds,
    itemsPerSecond: r.items_per_second,
    peakRssMb: r.peak_rss_mb,
    executionProvider: 'cpu',
  };
}

function peakRssOf(pid: number): Promise<number | undefined> {
  return fs
    .readFile(`/proc/${pid}/status`, 'utf8')
    .then((s) => Number(/VmHWM:\s+(\d+) kB/.exec(s)?.[1]) / 1024)
    .catch(() => undefined);
}

async function fullWorkflow(
  model: string,
  images: string,
  opts: { batchSize: number; shardSize: number; concurrency: number },
) {
  const data = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-bench-'));
  const server = await startDevServer({ dataDir: data, headless: true, buildCli: true });
  process.env.TEMPORAL_ADDRESS = server.address;
  let stopWorker!: () => void;
  const control = runControlWorker({ until: new Promise<void>((r) => (stopWorker = r)) });
  const gpu = spawn(
    process.execPath,
    [path.join(ROOT, 'dist', 'worker', 'gpu.js'), '--max-concurrent-shards', String(opts.concurrency)],
    { env: { INFERCTL_LOG_LEVEL: 'WARN', ...process.env }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve) =>
    gpu.stdout.on('data', (d: Buffer) => d.toString().includes('polling') && resolve()),
  );
  const connection = await Connection.connect({ address: server.address });
  try {
    const client = new Client({ connection });
    const job = (name: string, inputPath: string): BatchScoreInput => ({
      name,
      modelPath: model,
      inputPath,
      outputDir: path.join(data, name),
      shardSize: opts.shardSize,
      batchSize: opts.batchSize,
      maxShardsInFlight: opts.concurrency,
      errorThreshold: 0,
      topK: 5,
    });
    const run = (input: BatchScoreInput) =>
      client.workflow.execute(batchScore, {
        taskQueue: 'inferctl-control',
        workflowId: batchWorkflowId(input.name),
        args: [input],
      });
    // Warm-up: a one-image job loads the model into the worker, as the other cases load it before timing.
    const warm = path.join(data, 'warm-up');
    await fs.mkdir(warm);
    await fs.copyFile(path.join(images, (await fs.readdir(images))[0]!), path.join(warm, 'one.jpg'));
    await run(job('warm-up', warm));

    const started = performance.now();
    const outcome: BatchOutcome = await run(job(`bench-${Date.now().toString(36)}`, images));
    const seconds = (performance.now() - started) / 1000;
    const peakRssMb = await peakRssOf(gpu.pid!);
    // What Temporal adds: wall time not covered by shard activities doing work (listing, scheduling,
    // heartbeats, summary), spread over the shards.
    const summary = JSON.parse(await fs.readFile(path.join(outcome.outputDir, 'summary.json'), 'utf8')) as {
      shardTimings: Array<{ wallMs: number }>;
    };
    const busyMs = summary.shardTimings.reduce((n, s) => n + s.wallMs, 0) / opts.concurrency;
    const orchestrationMsPerShard = (seconds * 1000 - busyMs) / outcome.shards;
    const result: CaseResult = {
      case: 'c',
      items: outcome.itemsOk,
      seconds,
      itemsPerSecond: outcome.itemsOk / seconds,
      peakRssMb,
      executionProvider: outcome.executionProvider,
    };
    return { result, shards: outcome.shards, orchestrationMsPerShard };
  } finally {
    await connection.close();
    gpu.kill('SIGTERM');
    stopWorker();
    await control;
    await server.stop();
    await fs.rm(data, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  installWorkerRuntime({ logLevel: 'WARN' });
  const quick = process.argv.includes('--quick');
  const items = quick ? 96 : 768;
  const batchSize = 16;
  const shardSize = quick ? 32 : 128;
  const concurrency = 2;
  const { model, images } = await prepare(items);
  const common = ['--model', model, '--images', images, '--batch-size', String(batchSize)];

  // Each case runs `rounds` times, interleaved (a b c d, a b c d, …), and the best round counts: this
  // machine is shared, and the fastest round is the one least disturbed by others.
  const rounds = quick ? 1 : 2;
  const best = (runs: CaseResult[]) => runs.reduce((x, y) => (y.itemsPerSecond > x.itemsPerSecond ? y : x));
  const runs: Record<'a' | 'b' | 'c' | 'd', CaseResult[]> = { a: [], b: [], c: [], d: [] };
  let shards = 0;
  const orchestration: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    log(`round ${round}/${rounds}: (a) bare inference on ${items} pre-decoded images…`);
    runs.a.push({ ...(await runCase(['--case', 'bare', ...common])), case: 'a' });
    log(`round ${round}/${rounds}: (b) in-process pipeline…`);
    const pipelineArgs = [
      '--shard-size',
      String(shardSize),
      '--concurrency',
      String(concurrency),
      '--out',
      path.join(WORK, 'pipeline-out'),
    ];
    runs.b.push({ ...(await runCase(['--case', 'pipeline', ...common, ...pipelineArgs])), case: 'b' });
    log(`round ${round}/${rounds}: (c) the batchScore workflow through a GPU worker…`);
    const full = await fullWorkflow(model, images, { batchSize, shardSize, concurrency });
    runs.c.push(full.result);
    shards = full.shards;
    orchestration.push(full.orchestrationMsPerShard);
    log(`round ${round}/${rounds}: (d) the Python peer…`);
    runs.d.push(await pythonPeer(model, images, batchSize));
  }
  const [a, b, c, d] = [best(runs.a), best(runs.b), best(runs.c), best(runs.d)];

  const ratio = (x: CaseResult, y: CaseResult) =>
    y.itemsPerSecond > 0 ? Number((x.itemsPerSecond / y.itemsPerSecond).toFixed(3)) : null;
  const report = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
    },
    model: 'ResNet-50-shaped, 224x224, 1000 classes, seeded random weights',
    items,
    batchSize,
    shardSize,
    concurrency,
    shards,
    rounds,
    cases: { a, b, c, d },
    allRounds: runs,
    ratios: { cOverB: ratio(c, b), cOverA: ratio(c, a), cOverD: ratio(c, d) },
    orchestrationMsPerShard: Number(Math.min(...orchestration).toFixed(1)),
    cMinusBMsPerShard: Number((((c.seconds - b.seconds) * 1000) / shards).toFixed(1)),
    targets: { cOverB: '≥ 0.95', cOverD: '≥ 1.5' },
  };
  await fs.mkdir(RESULTS, { recursive: true });
  const stamp = report.date.slice(0, 10) + (quick ? '-quick' : '');
  await fs.writeFile(path.join(RESULTS, `${stamp}.json`), JSON.stringify(report, null, 2) + '\n');
  const row = (label: string, r: CaseResult) =>
    `| ${label} | ${r.items} | ${r.seconds.toFixed(2)} | ${r.itemsPerSecond.toFixed(2)} | ${r.peakRssMb?.toFixed(0) ?? '–'} | ${r.note ?? r.executionProvider ?? ''} |`;
  const md = [
    `# Batch scoring benchmark, ${report.date} (${report.mode})`,
    '',
    `${report.model}; ${items} JPEGs (256x256), batch ${batchSize}, shards of ${shardSize}, ${concurrency} in flight; ${report.machine.cpus} CPUs (${report.machine.cpu}), ${report.machine.node}.`,
    '',
    '| case | items | seconds | items/s | peak RSS (MB) | provider / note |',
    '|---|---|---|---|---|---|',
    row('(a) bare onnxruntime-node, pre-decoded', a),
    row('(b) decode → infer → write, one process', b),
    row('(c) batchScore workflow + GPU worker', c),
    row('(d) Python peer (onnxruntime + Pillow)', d),
    '',
    `Best of ${rounds} interleaved round(s) per case. c/b = ${report.ratios.cOverB} (target ≥ 0.95), c/a = ${report.ratios.cOverA}, c/d = ${report.ratios.cOverD} (target ≥ 1.5); orchestration ≈ ${report.orchestrationMsPerShard} ms per shard.`,
    '',
  ].join('\n');
  await fs.writeFile(path.join(RESULTS, `${stamp}.md`), md);
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
