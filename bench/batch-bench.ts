/**
 * `npm run bench` (`-- --quick` for a short run; `-- --scale [N]` for the million-input run, see
 * scale-bench.ts): batch scoring throughput, side by side in one run, on a ResNet-50-shaped ONNX model
 * generated here (224x224, seeded random weights: the same work as the real one), for two corpora:
 * camera-sized photos (4032x3024 JPEG q90 with photographic detail, photo-corpus.ts) and 256x256 JPEGs.
 * Per corpus:
 *   (a) bare onnxruntime-node inference on pre-decoded tensors (I: wall ms per image, C threads),
 *   (D) decode + preprocess alone, one image at a time on one thread (D: core ms per image),
 *   (b) the same decode → infer → write pipeline in one process, without Temporal,
 *   (c) the full batchScore workflow through a GPU worker process (on CPU here),
 *   (d) Python peers in their own venv: onnxruntime + Pillow with Image.draft (d1), and naive (d2),
 *   (s) `score --entry-script`, a script doing the same work; (l) it in a plain Python loop (script-cases.ts),
 * and the sum-of-parts limit on C cores, C / (D + C·I) items per ms: no pipeline can beat it, since each
 * image needs D core-ms of decode and C·I core-ms of inference. Writes bench/results/<date>.json and .md.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { Client, Connection } from '@temporalio/client';

import { writeSampleImages } from '../src/demo/sample-images';
import { cores } from '../src/scoring/thread-tuning';
import { buildResnet50Shaped } from '../src/demo/resnet50';
import { batchWorkflowId } from '../src/shared/batch-types';
import type { BatchScoreInput } from '../src/shared/batch-types';
import { startDevServer } from '../src/temporal/dev-server';
import { batchScore } from '../workflows/batch-score';
import type { BatchOutcome } from '../workflows/batch-score';
import { runControlWorker } from '../worker/control';
import { installWorkerRuntime } from '../worker/runtime';
import { ensurePhotoCorpus } from './photo-corpus';
import { startGpuWorker } from './gpu-worker-process';
import { scaleBench } from './scale-bench';
import { BENCH_SCRIPT_DIR, benchScript, modelFolder, useBenchPythonEnvs } from './script-cases';

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
  inferMsPerImage?: number;
  decodeCoreMsPerImage?: number;
  threading?: Record<string, unknown>;
}

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

const exists = (p: string): Promise<boolean> => fs.stat(p).then(Boolean, () => false);

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

async function pythonPeer(
  model: string,
  images: string,
  batchSize: number,
  mode: 'draft' | 'naive' | 'script',
): Promise<CaseResult> {
  const venv = path.join(ROOT, 'bench', '.venv');
  const python = path.join(venv, 'bin', 'python');
  try {
    await execFileAsync('python3', ['--version']);
  } catch {
    return { case: mode, items: 0, seconds: 0, itemsPerSecond: 0, note: 'skipped: python3 not found' };
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
  const script = mode === 'script' ? ['--script', path.join(BENCH_SCRIPT_DIR, 'batch_score.py')] : [];
  const { stdout } = await execFileAsync(python, [
    path.join(ROOT, 'bench', 'peer_score.py'),
    ...script,
    '--model',
    mode === 'script' ? await modelFolder(model, WORK) : model,
    '--images',
    images,
    '--batch-size',
    String(batchSize),
    '--output',
    out,
    '--mode',
    mode,
  ]);
  const r = JSON.parse(stdout.trim()) as {
    items: number;
    seconds: number;
    items_per_second: number;
    peak_rss_mb: number;
  };
  return {
    case: mode,
    items: r.items,
    seconds: r.seconds,
    itemsPerSecond: r.items_per_second,
    peakRssMb: r.peak_rss_mb,
    executionProvider: 'cpu',
  };
}

/** The GPU worker's startup line saying which thread settings it runs with. */
let gpuThreads = '';

function peakRssOf(pid: number): Promise<number | undefined> {
  return fs
    .readFile(`/proc/${pid}/status`, 'utf8')
    .then((s) => Number(/VmHWM:\s+(\d+) kB/.exec(s)?.[1]) / 1024)
    .catch(() => undefined);
}

async function fullWorkflow(
  model: string,
  images: string,
  opts: { batchSize: number; shardSize: number; concurrency: number; script?: boolean },
) {
  const data = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-bench-'));
  const server = await startDevServer({ dataDir: data, headless: true, buildCli: true });
  process.env.TEMPORAL_ADDRESS = server.address;
  let stopWorker!: () => void;
  const control = runControlWorker({ until: new Promise<void>((r) => (stopWorker = r)) });
  const started = await startGpuWorker(opts.concurrency);
  const gpu = started.gpu;
  gpuThreads ||= started.threads;
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
      ...(opts.script ? { script: benchScript(opts.batchSize) } : {}),
    });
    const run = (input: BatchScoreInput) =>
      client.workflow.execute(batchScore, {
        taskQueue: 'inferctl-control',
        workflowId: batchWorkflowId(input.name),
        args: [input],
      });
    // Warm-up: a job of one image per slot loads the model into the worker (a script: one process per
    // slot, its environment built), as the other cases load it before timing.
    const warm = path.join(data, 'warm-up-in'); // not the warm-up job's output directory, which must be empty
    await fs.mkdir(warm);
    const first = path.join(images, (await fs.readdir(images))[0]!);
    for (let i = 0; i < opts.concurrency; i++) await fs.copyFile(first, path.join(warm, `one-${i}.jpg`));
    await run({ ...job('warm-up', warm), shardSize: 1 });

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
      case: opts.script ? 's' : 'c',
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

interface CorpusReport {
  corpus: string;
  items: number;
  shardSize: number;
  shards: number;
  cases: Record<'a' | 'decode' | 'b' | 'c' | 'draft' | 'naive' | 's' | 'loop', CaseResult>;
  /** C / (D + C·I), items/s. */
  limitItemsPerSecond: number;
  decodeCoreMsPerImage: number;
  inferMsPerImage: number;
  orchestrationMsPerShard: number;
  ratios: Record<string, number | null>;
}

const ratio = (x: number, y: number) => (y > 0 ? Number((x / y).toFixed(3)) : null);

/** Every case on one corpus, back to back, so that the machine's load hits them alike. */
async function measureCorpus(
  corpus: string,
  model: string,
  images: string,
  opts: { batchSize: number; shardSize: number; concurrency: number },
): Promise<CorpusReport> {
  const common = ['--model', model, '--images', images, '--batch-size', String(opts.batchSize)];
  log(`${corpus}: (a) bare inference on pre-decoded tensors…`);
  const a = { ...(await runCase(['--case', 'bare', ...common])), case: 'a' };
  log(`${corpus}: (D) decode alone, one thread…`);
  const decode = { ...(await runCase(['--case', 'decode', ...common])), case: 'decode' };
  log(`${corpus}: (b) in-process pipeline…`);
  const out = path.join(WORK, 'pipeline-out');
  const pipelineArgs = [
    '--shard-size',
    String(opts.shardSize),
    '--concurrency',
    String(opts.concurrency),
    '--out',
    out,
  ];
  const b = { ...(await runCase(['--case', 'pipeline', ...common, ...pipelineArgs])), case: 'b' };
  log(`${corpus}: (c) the batchScore workflow through a GPU worker…`);
  const full = await fullWorkflow(model, images, opts);
  log(`${corpus}: (d1) Python peer, Pillow draft mode…`);
  const draft = await pythonPeer(model, images, opts.batchSize, 'draft');
  log(`${corpus}: (d2) Python peer, naive Pillow…`);
  const naive = await pythonPeer(model, images, opts.batchSize, 'naive');
  log(`${corpus}: (s) inferctl score --entry-script, the same work as a script…`);
  const s = (await fullWorkflow(model, images, { ...opts, script: true })).result;
  log(`${corpus}: (l) the same script in a plain Python loop…`);
  const loop = { ...(await pythonPeer(model, images, opts.batchSize, 'script')), case: 'l' };
  const c = full.result;
  const C = cores();
  const D = decode.decodeCoreMsPerImage ?? 0;
  const I = a.inferMsPerImage ?? 0;
  const limit = (1000 * C) / (D + C * I);
  return {
    corpus,
    items: c.items,
    shardSize: opts.shardSize,
    shards: full.shards,
    cases: { a, decode, b, c, draft, naive, s, loop },
    limitItemsPerSecond: Number(limit.toFixed(2)),
    decodeCoreMsPerImage: Number(D.toFixed(1)),
    inferMsPerImage: Number(I.toFixed(1)),
    orchestrationMsPerShard: Number(full.orchestrationMsPerShard.toFixed(1)),
    ratios: {
      cOverLimit: ratio(c.itemsPerSecond, limit),
      cOverDraft: ratio(c.itemsPerSecond, draft.itemsPerSecond),
      cOverNaive: ratio(c.itemsPerSecond, naive.itemsPerSecond),
      cOverB: ratio(c.itemsPerSecond, b.itemsPerSecond),
      draftOverLimit: ratio(draft.itemsPerSecond, limit),
      scriptOverLoop: ratio(s.itemsPerSecond, loop.itemsPerSecond),
      scriptOverC: ratio(s.itemsPerSecond, c.itemsPerSecond),
    },
  };
}

function corpusMarkdown(r: CorpusReport): string[] {
  const row = (label: string, x: CaseResult) =>
    `| ${label} | ${x.items} | ${x.seconds.toFixed(2)} | ${x.itemsPerSecond.toFixed(2)} | ${x.peakRssMb?.toFixed(0) ?? '–'} | ${x.note ?? x.executionProvider ?? ''} |`;
  const met = (v: number | null | undefined, target: number) =>
    v === null || v === undefined ? 'n/a' : v >= target ? 'met' : 'NOT met';
  return [
    `## ${r.corpus}: ${r.items} images, shards of ${r.shardSize} (${r.shards})`,
    '',
    '| case | items | seconds | items/s | peak RSS (MB) | provider / note |',
    '|---|---|---|---|---|---|',
    row('(a) bare onnxruntime-node, pre-decoded', r.cases.a),
    row('(D) decode + preprocess alone, one thread', r.cases.decode),
    row('(b) decode → infer → write, one process', r.cases.b),
    row('(c) `inferctl score`: workflow + GPU worker', r.cases.c),
    row('(d1) Python: onnxruntime + Pillow draft mode', r.cases.draft),
    row('(d2) Python: onnxruntime + Pillow, naive', r.cases.naive),
    row('(s) `inferctl score --entry-script`: the same work as a script', r.cases.s),
    row('(l) that script in a plain Python loop', r.cases.loop),
    '',
    `Sum-of-parts limit on ${cores()} cores: D = ${r.decodeCoreMsPerImage} core-ms/image, I = ${r.inferMsPerImage} ms/image ` +
      `→ C/(D + C·I) = **${r.limitItemsPerSecond} items/s**. Orchestration ≈ ${r.orchestrationMsPerShard} ms per shard.`,
    '',
    '| ratio | measured | target | |',
    '|---|---|---|---|',
    `| c / limit | ${r.ratios.cOverLimit} | ≥ 0.9 | ${met(r.ratios.cOverLimit, 0.9)} |`,
    `| c / d1 (Pillow draft) | ${r.ratios.cOverDraft} | ≥ 1.3 | ${met(r.ratios.cOverDraft, 1.3)} |`,
    `| c / d2 (Pillow naive) | ${r.ratios.cOverNaive} | ≥ 2 | ${met(r.ratios.cOverNaive, 2)} |`,
    `| c / b (no Temporal) | ${r.ratios.cOverB} | ≥ 0.95 | ${met(r.ratios.cOverB, 0.95)} |`,
    `| d1 / limit | ${r.ratios.draftOverLimit} | | |`,
    `| s / l (script: inferctl over a plain loop) | ${r.ratios.scriptOverLoop} | ≥ 0.9 | ${met(r.ratios.scriptOverLoop, 0.9)} |`,
    `| s / c (script over the ONNX path) | ${r.ratios.scriptOverC} | | |`,
    '',
  ];
}

async function main(): Promise<void> {
  installWorkerRuntime({ logLevel: 'WARN' });
  useBenchPythonEnvs(WORK); // before any worker starts: the script cases' environments
  const scaleAt = process.argv.indexOf('--scale');
  if (scaleAt >= 0) {
    const n = Number(process.argv[scaleAt + 1] ?? '');
    await scaleBench({ items: Number.isInteger(n) && n > 0 ? n : 1_000_000, work: WORK, results: RESULTS, log });
    return;
  }
  const quick = process.argv.includes('--quick');
  const photoCount = quick ? 24 : 96;
  const smallCount = quick ? 96 : 384;
  const batchSize = 16;
  const concurrency = 2;
  const { model, images } = await prepare(smallCount);
  const photoDir = await ensurePhotoCorpus(WORK, photoCount, log);
  const reports = [
    await measureCorpus('camera-sized photos (4032x3024 JPEG q90)', model, photoDir, {
      batchSize,
      shardSize: quick ? 12 : 48,
      concurrency,
    }),
    await measureCorpus('256x256 JPEGs', model, images, { batchSize, shardSize: quick ? 32 : 128, concurrency }),
  ];
  const report = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    machine: {
      cpus: os.cpus().length,
      cores: cores(),
      cpu: os.cpus()[0]?.model,
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      loadAverage: os.loadavg(),
    },
    model: 'ResNet-50-shaped, 224x224, 1000 classes, seeded random weights',
    batchSize,
    concurrency,
    threading: { pipeline: reports[0]!.cases.b.threading, gpuWorker: gpuThreads },
    corpora: reports,
    targets: { cOverLimit: '≥ 0.9', cOverDraft: '≥ 1.3', cOverNaive: '≥ 2', cOverB: '≥ 0.95', scriptOverLoop: '≥ 0.9' },
  };
  await fs.mkdir(RESULTS, { recursive: true });
  const stamp = report.date.slice(0, 16).replace(':', '-') + (quick ? '-quick' : '');
  await fs.writeFile(path.join(RESULTS, `batch-${stamp}.json`), JSON.stringify(report, null, 2) + '\n');
  const md = [
    `# Batch scoring benchmark, ${report.date} (${report.mode})`,
    '',
    `${report.model}; batch ${batchSize}, ${concurrency} shards in flight; ${report.machine.cpus} CPUs ` +
      `(${report.machine.cpu}), ${report.machine.node}; load average at the end ${report.machine.loadAverage.map((l) => l.toFixed(1)).join(' ')} ` +
      '(a shared machine: compare the ratios, measured back to back, not the absolute figures). One round per case.',
    '',
    `Threads: pipeline ${JSON.stringify(report.threading.pipeline)}; GPU worker: ${gpuThreads}.`,
    '',
    ...reports.flatMap(corpusMarkdown),
  ].join('\n');
  await fs.writeFile(path.join(RESULTS, `batch-${stamp}.md`), md);
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
