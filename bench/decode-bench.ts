/**
 * `npm run bench:decode` (`-- --quick` for a smoke run of every case in about a minute or two: fewer images,
 * no sweep of the decode modes; `-- --decode fast|draft|exact` for the decode in use, default the spec's
 * default; `-- --rounds N` to run c and the peers N times in turns and keep each one's best; `-- --corpus
 * photos|small` and `-- --regime a|b` for one corpus or one regime only, without the decode modes' sweep;
 * `-- --photos N` for regime (a)'s photo count; `-- --shard-size N` and `-- --shards-in-flight N` for (b)'s shard
 * layout: shards of N, and a job window wider than the GPU worker's slots, the shards past them queued): batch
 * throughput in the two regimes of issue #28, side by side in one run, on camera-sized photos (4032x3024 JPEG
 * q90, photo-corpus.ts) and on 256x256 JPEGs. Regime (a) on photos scores 240 of them in 4 shards of 60: with
 * 96 in 2 shards the job took about 2 seconds, and the start, the per-shard round trips and the tail where one
 * shard ends first weighed heavily; (b) keeps 96 (its job is 7 s). Regime (a) on 256x256 JPEGs scores 2,048 of
 * them in 8 shards of 256 (4 per shard slot): with 384 in 3 shards a job took about a second, the per-job and per-shard fixed
 * costs were a third of it and the third shard ran alone; jobs of millions of inputs in shards of 1,000 (the
 * default) see neither.
 *   (a) inference nearly free, as on a GPU: the demo's tiny model (64x64 input). The limit is decode:
 *       C / D, with D the decode in use's core-ms per image; next to it C / (D + I_cpu), I_cpu the tiny
 *       model's own CPU per image here (on a GPU node it runs on the GPU), and the GPU worker's CPU per item. Cases: D, the in-process pipeline (b), the
 *       batchScore workflow through a GPU worker process (c), and the Python peers: onnxruntime + Pillow
 *       with Image.draft in one process, and the same with two decode processes (as a DataLoader with
 *       num_workers=2); the peers run the same tiny model in onnxruntime (Python). Also Pillow draft's own
 *       D (one process, decode alone), which bounds the two-process peer at C / D_Pillow.
 *   (b) the ResNet-50-shaped model on the CPU: the limit is C / (D + C·I), I the bare inference wall-ms per
 *       image with C threads. Cases: bare inference, D, the workflow (c), the same job again on the same GPU
 *       worker (c again: its decode split known from c, src/batch/split-registry.ts), the Pillow-draft peer
 *       (and its D).
 * Also D for each decode mode (exact, fast, draft), next to their agreement figures (docs/preprocessing.md).
 * Each target is printed next to the cell it applies to (decode-report.ts). Writes
 * bench/results/decode-<date>-<decode>[-quick].json and .md.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { ensureDemoAssets } from '../src/demo/demo-assets';
import { cores } from '../src/scoring/thread-tuning';
import { DECODE_MODES } from '../src/shared/preprocess-types';
import type { DecodeMode } from '../src/shared/preprocess-types';
import { installWorkerRuntime } from '../worker/runtime';
import {
  RESULTS,
  ROOT,
  WORK,
  fullWorkflow,
  gpuThreads,
  log,
  prepare,
  pythonPeer,
  ratio,
  runCase,
} from './batch-harness';
import type { CaseResult } from './batch-harness';
import { checkBenchArgs } from './bench-cli';
import { DECODE_BENCH_FLAGS, decodeBenchArgs, photoCount, USAGE } from './decode-args';
import { corpusMarkdown } from './decode-report';
import type { CorpusReport, RegimeReport } from './decode-report';
import { ensurePhotoCorpus } from './photo-corpus';

const BATCH = 16;
const CONCURRENCY = 2;
const execFileAsync = promisify(execFile);

/** Pillow-draft's D: the Python peer opening and preprocessing each image in turn, one process (after pythonPeer made bench/.venv). */
async function pillowDecode(model: string, images: string): Promise<CaseResult> {
  const python = path.join(ROOT, 'bench', '.venv', 'bin', 'python');
  const args = ['--model', model, '--images', images, '--mode', 'draft', '--decode-only', '--output', '/dev/null'];
  const { stdout } = await execFileAsync(python, [path.join(ROOT, 'bench', 'peer_score.py'), ...args]);
  const r = JSON.parse(stdout.trim()) as {
    items: number;
    seconds: number;
    items_per_second: number;
    decode_core_ms_per_image: number;
    peak_rss_mb: number;
  };
  return {
    case: 'Dpil',
    items: r.items,
    seconds: r.seconds,
    itemsPerSecond: r.items_per_second,
    peakRssMb: r.peak_rss_mb,
    decodeCoreMsPerImage: r.decode_core_ms_per_image,
  };
}

/**
 * `rounds` runs of each timed case, taken in turns (c, then each peer, then c again…), the fastest of each
 * kept: on a shared machine the load comes and goes, and a case's best round is the one least disturbed.
 */
async function inTurns(rounds: number, cases: Record<string, () => Promise<CaseResult>>) {
  const best: Record<string, CaseResult> = {};
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(cases)) {
      const r = await run();
      const seen = best[name];
      if (!seen || r.itemsPerSecond > seen.itemsPerSecond) best[name] = r;
    }
  }
  if (rounds > 1)
    for (const r of Object.values(best)) r.note = [r.note, `best of ${rounds}`].filter(Boolean).join('; ');
  return { best };
}

/** The faster of two runs of a case (either may be missing). */
function bestOf(seen: CaseResult | undefined, r: CaseResult | undefined): CaseResult | undefined {
  return !seen || (r && r.itemsPerSecond > seen.itemsPerSecond) ? (r ?? seen) : seen;
}

/** What Temporal added (wall time not covered by shard activities at work, per shard: batch-harness.ts). */
function orchestrationNote(full: { shards: number; orchestrationMsPerShard: number }): string {
  return `${full.shards} shards; orchestration ${full.orchestrationMsPerShard.toFixed(0)} ms/shard`;
}

interface RegimeOptions {
  model: string;
  images: string;
  decode: DecodeMode;
  shardSize: number;
  rounds: number;
  /** (b): the job's window of shards in flight, when more than the worker's slots (`--shards-in-flight`). */
  inFlight?: number;
}

async function regimeA(o: RegimeOptions): Promise<RegimeReport> {
  const common = ['--model', o.model, '--images', o.images, '--batch-size', String(BATCH), '--decode', o.decode];
  log('(a) D: decode alone, one thread…');
  const d = { ...(await runCase(['--case', 'decode', ...common])), case: 'D' };
  log("(a) the tiny model's own inference CPU, on pre-decoded tensors…");
  const bare = { ...(await runCase(['--case', 'bare', ...common])), case: 'bare' };
  log("(a) sharp's fixed cost: decode calls on JPEGs already at the model's input size…");
  const floor = { ...(await runCase(['--case', 'floor', ...common])), case: 'floor' };
  log('(a) b: the in-process pipeline…');
  const b = {
    ...(await runCase([
      '--case',
      'pipeline',
      ...common,
      '--shard-size',
      String(o.shardSize),
      '--concurrency',
      String(CONCURRENCY),
      '--out',
      path.join(WORK, 'pipeline-out'),
    ])),
    case: 'b',
  };
  let decodeSplit = '';
  log(`(a) c and the peers (Pillow draft, one process and two), ${o.rounds} round(s) in turns…`);
  const { best } = await inTurns(o.rounds, {
    c: async () => {
      const full = await fullWorkflow(o.model, o.images, {
        batchSize: BATCH,
        shardSize: o.shardSize,
        concurrency: CONCURRENCY,
        preprocess: { decode: o.decode },
      });
      decodeSplit = full.decodeSplit;
      return { ...full.result, note: orchestrationNote(full) };
    },
    draft: () => pythonPeer(o.model, o.images, BATCH, 'draft'),
    draft2: () => pythonPeer(o.model, o.images, BATCH, 'draft', 2),
  });
  log('(a) Pillow draft D: decode alone, one process…');
  const dpil = await pillowDecode(o.model, o.images);
  const D = d.decodeCoreMsPerImage ?? 0;
  const limit = (1000 * cores()) / D;
  const Icpu = bare.inferCoreMsPerImage ?? 0;
  const cpuLimit = (1000 * cores()) / (D + Icpu);
  const { c, draft, draft2 } = best as Record<'c' | 'draft' | 'draft2', CaseResult>;
  if (c.cpuSecondsPerItem !== undefined) {
    c.note = `${c.note}; the GPU worker's CPU ${(c.cpuSecondsPerItem * 1000).toFixed(2)} core-ms/item (D ${D.toFixed(2)})`;
    if (c.controlCpuSecondsPerItem !== undefined) {
      // Where the cores went: the GPU worker's and the control plane's CPU over the job's wall time.
      const busy = (s: number) => ((s * c.items) / c.seconds).toFixed(2);
      c.note +=
        `, the control plane's ${(c.controlCpuSecondsPerItem * 1000).toFixed(2)}; cores busy: ` +
        `${busy(c.cpuSecondsPerItem)} GPU worker + ${busy(c.controlCpuSecondsPerItem)} control plane of ${cores()}`;
    }
  }
  return {
    regime: 'a',
    model: "the demo's tiny CNN (64x64 input): inference nearly free",
    peers:
      "the same tiny model in onnxruntime (Python) on the main process's batches; Pillow `Image.draft` + resize + numpy to decode",
    cases: { D: d, Dpil: dpil, floor, bare, b, c, draft, draft2 },
    floorCoreMsPerImage: Number((floor.floorCoreMsPerImage ?? 0).toFixed(2)),
    decodeCoreMsPerImage: Number(D.toFixed(1)),
    inferCoreMsPerImage: Number(Icpu.toFixed(2)),
    cpuLimitItemsPerSecond: Number(cpuLimit.toFixed(2)),
    pillowDecodeCoreMsPerImage: Number((dpil.decodeCoreMsPerImage ?? 0).toFixed(1)),
    limitItemsPerSecond: Number(limit.toFixed(2)),
    decodeSplit,
    ratios: {
      cOverLimit: ratio(c.itemsPerSecond, limit),
      cOverCpuLimit: ratio(c.itemsPerSecond, cpuLimit),
      cOverTwoProcessPeer: ratio(c.itemsPerSecond, draft2.itemsPerSecond),
      cOverDraft: ratio(c.itemsPerSecond, draft.itemsPerSecond),
      cOverB: ratio(c.itemsPerSecond, b.itemsPerSecond),
      pillowDOverD: ratio(dpil.decodeCoreMsPerImage ?? 0, D),
    },
    targets: [
      { ratio: 'cOverLimit', atLeast: 0.9, of: 'the limit C/D' },
      { ratio: 'cOverTwoProcessPeer', atLeast: 1.2, of: 'the two-process peer' },
    ],
  };
}

async function regimeB(o: RegimeOptions): Promise<RegimeReport> {
  const common = ['--model', o.model, '--images', o.images, '--batch-size', String(BATCH), '--decode', o.decode];
  log('(b) bare inference on pre-decoded tensors…');
  const a = { ...(await runCase(['--case', 'bare', ...common])), case: 'bare' };
  log('(b) D: decode alone, one thread…');
  const d = { ...(await runCase(['--case', 'decode', ...common])), case: 'D' };
  let decodeSplit = '';
  let cAgain: CaseResult | undefined;
  log(`(b) c (twice on one worker) and the Pillow-draft peer, ${o.rounds} round(s) in turns…`);
  const { best } = await inTurns(o.rounds, {
    c: async () => {
      const full = await fullWorkflow(o.model, o.images, {
        batchSize: BATCH,
        shardSize: o.shardSize,
        concurrency: CONCURRENCY,
        preprocess: { decode: o.decode },
        again: true,
        ...(o.inFlight ? { inFlight: o.inFlight } : {}),
      });
      decodeSplit = full.decodeSplit;
      cAgain = bestOf(
        cAgain,
        full.again && { ...full.again.result, case: 'cAgain', note: orchestrationNote(full.again) },
      );
      const window = o.inFlight ? `; ${o.inFlight} shards in flight on ${CONCURRENCY} worker slots` : '';
      return { ...full.result, note: orchestrationNote(full) + window };
    },
    draft: () => pythonPeer(o.model, o.images, BATCH, 'draft'),
  });
  log('(b) Pillow draft D: decode alone, one process…');
  const dpil = await pillowDecode(o.model, o.images);
  const C = cores();
  const D = d.decodeCoreMsPerImage ?? 0;
  const I = a.inferMsPerImage ?? 0;
  const limit = (1000 * C) / (D + C * I);
  const { c, draft } = best as Record<'c' | 'draft', CaseResult>;
  return {
    regime: 'b',
    model: 'ResNet-50-shaped (224x224, 1000 classes) on the CPU',
    peers: 'the same model in onnxruntime (Python), Pillow `Image.draft` + resize + numpy to decode, one process',
    cases: { bare: a, D: d, Dpil: dpil, c, ...(cAgain ? { cAgain } : {}), draft },
    decodeCoreMsPerImage: Number(D.toFixed(1)),
    pillowDecodeCoreMsPerImage: Number((dpil.decodeCoreMsPerImage ?? 0).toFixed(1)),
    inferMsPerImage: Number(I.toFixed(1)),
    limitItemsPerSecond: Number(limit.toFixed(2)),
    decodeSplit,
    ratios: {
      cOverLimit: ratio(c.itemsPerSecond, limit),
      cOverDraft: ratio(c.itemsPerSecond, draft.itemsPerSecond),
      ...(cAgain
        ? {
            cAgainOverLimit: ratio(cAgain.itemsPerSecond, limit),
            cAgainOverDraft: ratio(cAgain.itemsPerSecond, draft.itemsPerSecond),
          }
        : {}),
    },
    targets: [
      { ratio: 'cOverLimit', atLeast: 0.9, of: 'the limit C/(D + C·I)' },
      { ratio: 'cOverDraft', atLeast: 1, of: 'the Pillow-draft peer' },
    ],
  };
}

/** One corpus: D for each decode mode, then the regimes asked for, (a) on `images.a` and (b) on `images.b`. */
async function measureCorpus(
  corpus: string,
  images: Record<'a' | 'b', { dir: string; shardSize: number }>,
  models: { tiny: string; resnet: string },
  o: Omit<RegimeOptions, 'model' | 'images' | 'shardSize'> & { modes: boolean; regimes: Array<'a' | 'b'> },
): Promise<CorpusReport> {
  let decodeMsByMode: Record<DecodeMode, number> | undefined;
  if (o.modes) {
    log(`${corpus}: D for each decode mode…`);
    decodeMsByMode = {} as Record<DecodeMode, number>;
    for (const mode of DECODE_MODES) {
      const r = await runCase([
        '--case',
        'decode',
        '--model',
        models.resnet,
        '--images',
        images.b.dir,
        '--decode',
        mode,
      ]);
      decodeMsByMode[mode] = Number((r.decodeCoreMsPerImage ?? 0).toFixed(1));
    }
  }
  const regimes: RegimeReport[] = [];
  if (o.regimes.includes('a'))
    regimes.push(await regimeA({ ...o, shardSize: images.a.shardSize, model: models.tiny, images: images.a.dir }));
  if (o.regimes.includes('b'))
    regimes.push(await regimeB({ ...o, shardSize: images.b.shardSize, model: models.resnet, images: images.b.dir }));
  return { corpus, items: regimes[0]!.cases.c!.items, ...(decodeMsByMode ? { decodeMsByMode } : {}), regimes };
}

async function main(): Promise<void> {
  checkBenchArgs(USAGE, DECODE_BENCH_FLAGS);
  installWorkerRuntime({ logLevel: 'WARN' });
  const { quick, decode, rounds, which, regimes, inFlight, shardSizeB } = decodeBenchArgs();
  const tiny = (await ensureDemoAssets(path.join(WORK, 'demo'))).modelPath;
  const resnet = (await prepare(quick ? 48 : 384)).model;
  const models = { tiny, resnet };
  // Quick: fewer images, one round, and no sweep of the decode modes (a smoke run of every case); a run of
  // one corpus or one regime skips the sweep too.
  const partial = which.length < 2 || regimes.length < 2;
  const common = { decode, rounds, modes: !quick && !partial, regimes, ...(inFlight ? { inFlight } : {}) };
  const corpora: CorpusReport[] = [];
  if (which.includes('photos')) {
    // (a) on 240 photos in 4 shards of 60 (`--photos N`: N in 4 shards), (b) on 96 in 2 of 48: see the top.
    const count = quick ? 12 : photoCount();
    const a = { dir: await ensurePhotoCorpus(WORK, count, log), shardSize: quick ? 6 : Math.ceil(count / 4) };
    const b96 = { dir: await ensurePhotoCorpus(WORK, quick ? 12 : 96, log), shardSize: quick ? 6 : 48 };
    const b = { ...b96, shardSize: shardSizeB ?? b96.shardSize };
    const sizes = regimes.length > 1 && !quick ? ` ((a) ${count} in shards of ${a.shardSize}, (b) 96)` : '';
    corpora.push(await measureCorpus(`camera-sized photos (4032x3024 JPEG q90)${sizes}`, { a, b }, models, common));
  }
  if (which.includes('small')) {
    // (a) is fast: 2,048 images in 8 shards, so that a job is mostly steady state (see the top of this file).
    const a = { dir: (await prepare(quick ? 96 : 2048)).images, shardSize: quick ? 24 : 256 };
    const b = { dir: (await prepare(quick ? 48 : 384)).images, shardSize: shardSizeB ?? (quick ? 24 : 128) };
    const sizes =
      regimes.length > 1 ? ` ((a) ${quick ? 96 : 2048} in shards of ${a.shardSize}, (b) ${quick ? 48 : 384})` : '';
    corpora.push(await measureCorpus(`256x256 JPEGs${sizes}`, { a, b }, models, common));
  }
  const report = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    decode,
    machine: {
      cpus: os.cpus().length,
      cores: cores(),
      cpu: os.cpus()[0]?.model,
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      loadAverage: os.loadavg(),
    },
    batchSize: BATCH,
    concurrency: CONCURRENCY,
    rounds,
    gpuWorkerThreads: gpuThreads,
    corpora,
  };
  await fs.mkdir(RESULTS, { recursive: true });
  const stamp = `${report.date.slice(0, 16).replace(':', '-')}-${decode}${quick ? '-quick' : ''}`;
  await fs.writeFile(path.join(RESULTS, `decode-${stamp}.json`), JSON.stringify(report, null, 2) + '\n');
  const md = [
    `# Decode-bound and inference-bound batch scoring, ${report.date} (${report.mode}, decode ${decode})`,
    '',
    `Batch ${BATCH}, ${CONCURRENCY} shards in flight; ${report.machine.cpus} CPUs (${report.machine.cpu}), ` +
      `${report.machine.node}; load average at the end ${report.machine.loadAverage.map((l) => l.toFixed(1)).join(' ')} ` +
      '(on a shared machine compare the ratios, measured back to back, not the absolute figures). ' +
      (rounds > 1 ? `${rounds} rounds of c and the peers, in turns; the best of each.` : 'One round per case.'),
    '',
    `GPU worker: ${gpuThreads}.`,
    '',
    ...corpora.flatMap((c) => corpusMarkdown(c, cores())),
  ].join('\n');
  await fs.writeFile(path.join(RESULTS, `decode-${stamp}.md`), md);
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
