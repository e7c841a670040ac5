/**
 * `npm run bench` (`-- --quick` for a short run; `-- --scale [N]` for the million-input run, see
 * scale-bench.ts; `-- --script-only` for the script path's cells alone, see script-bench.ts): batch scoring throughput, side by side in one run, on a ResNet-50-shaped ONNX model
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
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { cores } from '../src/scoring/thread-tuning';
import { installWorkerRuntime } from '../worker/runtime';
import { RESULTS, WORK, fullWorkflow, gpuThreads, log, prepare, pythonPeer, ratio, runCase } from './batch-harness';
import type { CaseResult } from './batch-harness';
import { checkBenchArgs } from './bench-cli';
import { ensurePhotoCorpus } from './photo-corpus';
import { scaleBench } from './scale-bench';
import { cellsArg, scriptBench } from './script-bench';
import { useBenchPythonEnvs } from './script-cases';

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

const USAGE = `npm run bench -- [--quick] | --scale [N] | --script-only [--rounds N] [--cells l,s,c,s2]
Batch scoring throughput on a ResNet-50-shaped model, side by side with its limit and the Python peers;
--scale [N]: the million-input run (N inputs, default 1,000,000); --script-only: the scoring-script path's
cells alone. Writes bench/results/<date>.json and .md (bench/README.md).`;

async function main(): Promise<void> {
  checkBenchArgs(USAGE, {
    '--quick': 'switch',
    '--scale': 'optional-value',
    '--script-only': 'switch',
    '--rounds': 'value',
    '--cells': 'value',
  });
  installWorkerRuntime({ logLevel: 'WARN' });
  useBenchPythonEnvs(WORK); // before any worker starts: the script cases' environments
  const scaleAt = process.argv.indexOf('--scale');
  if (scaleAt >= 0) {
    const n = Number(process.argv[scaleAt + 1] ?? '');
    await scaleBench({ items: Number.isInteger(n) && n > 0 ? n : 1_000_000, work: WORK, results: RESULTS, log });
    return;
  }
  const quick = process.argv.includes('--quick');
  if (process.argv.includes('--script-only')) {
    const roundsAt = process.argv.indexOf('--rounds');
    const rounds = roundsAt >= 0 ? Number(process.argv[roundsAt + 1]) : undefined;
    const cells = cellsArg(process.argv);
    await scriptBench({
      quick,
      results: RESULTS,
      log,
      ...(rounds !== undefined && Number.isInteger(rounds) && rounds > 0 ? { rounds } : {}),
      ...(cells ? { cells } : {}),
    });
    return;
  }
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
