/**
 * `npm run bench:decode` (`-- --quick` for a short run, `-- --decode fast|draft|exact` for the decode in use,
 * default the spec's default): batch throughput in the two regimes of issue #28, side by side in one run,
 * on camera-sized photos (4032x3024 JPEG q90, photo-corpus.ts) and on 256x256 JPEGs.
 *   (a) inference nearly free, as on a GPU: the demo's tiny model (64x64 input). The limit is decode:
 *       C / D, with D the decode in use's core-ms per image. Cases: D, the in-process pipeline (b), the
 *       batchScore workflow through a GPU worker process (c), and the Python peers: onnxruntime + Pillow
 *       with Image.draft in one process, and the same with two decode processes (as a DataLoader with
 *       num_workers=2).
 *   (b) the ResNet-50-shaped model on the CPU: the limit is C / (D + C·I), I the bare inference wall-ms per
 *       image with C threads. Cases: bare inference, D, the workflow (c), the Pillow-draft peer.
 * Also D for each decode mode (exact, fast, draft), next to their agreement figures (docs/preprocessing.md).
 * Writes bench/results/decode-<date>.json and .md.
 */
import os from 'node:os';
import fs from 'node:fs/promises';
import path from 'node:path';

import { ensureDemoAssets } from '../src/demo/demo-assets';
import { cores } from '../src/scoring/thread-tuning';
import { DEFAULT_PREPROCESS } from '../src/preprocess/preprocess-spec';
import { DECODE_MODES } from '../src/shared/preprocess-types';
import type { DecodeMode } from '../src/shared/preprocess-types';
import { installWorkerRuntime } from '../worker/runtime';
import { RESULTS, WORK, fullWorkflow, gpuThreads, log, prepare, pythonPeer, ratio, runCase } from './batch-harness';
import type { CaseResult } from './batch-harness';
import { ensurePhotoCorpus } from './photo-corpus';

interface RegimeReport {
  regime: 'a' | 'b';
  model: string;
  cases: Record<string, CaseResult>;
  decodeCoreMsPerImage: number;
  inferMsPerImage?: number;
  limitItemsPerSecond: number;
  /** What the GPU worker logged when it chose its decode concurrency. */
  decodeSplit: string;
  ratios: Record<string, number | null>;
  targets: Record<string, number>;
}

interface CorpusReport {
  corpus: string;
  items: number;
  /** D for each decode mode with the ResNet-50-shaped model's spec (224x224), core-ms per image. */
  decodeMsByMode: Record<DecodeMode, number>;
  regimes: RegimeReport[];
}

const BATCH = 16;
const CONCURRENCY = 2;

async function regimeA(model: string, images: string, decode: DecodeMode, shardSize: number): Promise<RegimeReport> {
  const common = ['--model', model, '--images', images, '--batch-size', String(BATCH), '--decode', decode];
  log('(a) D: decode alone, one thread…');
  const d = { ...(await runCase(['--case', 'decode', ...common])), case: 'D' };
  log('(a) b: the in-process pipeline…');
  const b = {
    ...(await runCase([
      '--case',
      'pipeline',
      ...common,
      '--shard-size',
      String(shardSize),
      '--concurrency',
      String(CONCURRENCY),
      '--out',
      path.join(WORK, 'pipeline-out'),
    ])),
    case: 'b',
  };
  log('(a) c: the batchScore workflow through a GPU worker…');
  const full = await fullWorkflow(model, images, {
    batchSize: BATCH,
    shardSize,
    concurrency: CONCURRENCY,
    preprocess: { decode },
  });
  log('(a) peers: Pillow draft, one process and two…');
  const draft = await pythonPeer(model, images, BATCH, 'draft');
  const draft2 = await pythonPeer(model, images, BATCH, 'draft', 2);
  const D = d.decodeCoreMsPerImage ?? 0;
  const limit = (1000 * cores()) / D;
  const c = full.result;
  return {
    regime: 'a',
    model: "the demo's tiny CNN (64x64 input): inference nearly free",
    cases: { D: d, b, c, draft, draft2 },
    decodeCoreMsPerImage: Number(D.toFixed(1)),
    limitItemsPerSecond: Number(limit.toFixed(2)),
    decodeSplit: full.decodeSplit,
    ratios: {
      cOverLimit: ratio(c.itemsPerSecond, limit),
      cOverTwoProcessPeer: ratio(c.itemsPerSecond, draft2.itemsPerSecond),
      cOverDraft: ratio(c.itemsPerSecond, draft.itemsPerSecond),
      cOverB: ratio(c.itemsPerSecond, b.itemsPerSecond),
    },
    targets: { cOverLimit: 0.9, cOverTwoProcessPeer: 1.2 },
  };
}

async function regimeB(model: string, images: string, decode: DecodeMode, shardSize: number): Promise<RegimeReport> {
  const common = ['--model', model, '--images', images, '--batch-size', String(BATCH), '--decode', decode];
  log('(b) bare inference on pre-decoded tensors…');
  const a = { ...(await runCase(['--case', 'bare', ...common])), case: 'bare' };
  log('(b) D: decode alone, one thread…');
  const d = { ...(await runCase(['--case', 'decode', ...common])), case: 'D' };
  log('(b) c: the batchScore workflow through a GPU worker…');
  const full = await fullWorkflow(model, images, {
    batchSize: BATCH,
    shardSize,
    concurrency: CONCURRENCY,
    preprocess: { decode },
  });
  log('(b) peer: Pillow draft…');
  const draft = await pythonPeer(model, images, BATCH, 'draft');
  const C = cores();
  const D = d.decodeCoreMsPerImage ?? 0;
  const I = a.inferMsPerImage ?? 0;
  const limit = (1000 * C) / (D + C * I);
  const c = full.result;
  return {
    regime: 'b',
    model: 'ResNet-50-shaped (224x224, 1000 classes) on the CPU',
    cases: { bare: a, D: d, c, draft },
    decodeCoreMsPerImage: Number(D.toFixed(1)),
    inferMsPerImage: Number(I.toFixed(1)),
    limitItemsPerSecond: Number(limit.toFixed(2)),
    decodeSplit: full.decodeSplit,
    ratios: { cOverLimit: ratio(c.itemsPerSecond, limit), cOverDraft: ratio(c.itemsPerSecond, draft.itemsPerSecond) },
    targets: { cOverLimit: 0.9, cOverDraft: 1 },
  };
}

async function measureCorpus(
  corpus: string,
  images: string,
  models: { tiny: string; resnet: string },
  decode: DecodeMode,
  shardSize: number,
): Promise<CorpusReport> {
  log(`${corpus}: D for each decode mode…`);
  const decodeMsByMode = {} as Record<DecodeMode, number>;
  for (const mode of DECODE_MODES) {
    const r = await runCase(['--case', 'decode', '--model', models.resnet, '--images', images, '--decode', mode]);
    decodeMsByMode[mode] = Number((r.decodeCoreMsPerImage ?? 0).toFixed(1));
  }
  const a = await regimeA(models.tiny, images, decode, shardSize);
  const b = await regimeB(models.resnet, images, decode, shardSize);
  return { corpus, items: a.cases.c!.items, decodeMsByMode, regimes: [a, b] };
}

function markdown(r: CorpusReport): string[] {
  const row = (label: string, x: CaseResult | undefined) =>
    x
      ? `| ${label} | ${x.items} | ${x.seconds.toFixed(2)} | ${x.itemsPerSecond.toFixed(2)} | ${x.peakRssMb?.toFixed(0) ?? '–'} | ${x.note ?? ''} |`
      : `| ${label} | – | – | – | – | not run |`;
  const met = (v: number | null | undefined, target: number) =>
    v === null || v === undefined ? 'n/a' : v >= target ? 'met' : 'NOT met';
  const lines = [
    `## ${r.corpus}: ${r.items} images`,
    '',
    `Decode + preprocess alone, one thread, to 224x224 (core-ms per image): ` +
      DECODE_MODES.map((m) => `${m} ${r.decodeMsByMode[m]}`).join(', ') +
      ' (agreement of each with exact: docs/preprocessing.md, "JPEG decode").',
    '',
  ];
  for (const g of r.regimes) {
    lines.push(`### (${g.regime}) ${g.model}`, '');
    lines.push('| case | items | seconds | items/s | peak RSS (MB) | note |', '|---|---|---|---|---|---|');
    if (g.regime === 'b') lines.push(row('bare onnxruntime-node, pre-decoded (I)', g.cases.bare));
    lines.push(row('D: decode + preprocess alone, one thread', g.cases.D));
    if (g.regime === 'a') lines.push(row('b: decode → infer → write, one process', g.cases.b));
    lines.push(
      row('c: `inferctl score`: workflow + GPU worker', g.cases.c),
      row('Python: onnxruntime + Pillow draft, one process', g.cases.draft),
    );
    if (g.regime === 'a') lines.push(row('Python: Pillow draft, two decode processes', g.cases.draft2));
    lines.push(
      '',
      g.regime === 'a'
        ? `Limit C/D on ${cores()} cores: D = ${g.decodeCoreMsPerImage} core-ms/image → **${g.limitItemsPerSecond} items/s**.`
        : `Limit C/(D + C·I) on ${cores()} cores: D = ${g.decodeCoreMsPerImage} core-ms/image, I = ${g.inferMsPerImage} ms/image → **${g.limitItemsPerSecond} items/s**.`,
      `The GPU worker's decode split: ${g.decodeSplit}`,
      '',
      '| ratio | measured | target | |',
      '|---|---|---|---|',
      ...Object.entries(g.ratios).map(([k, v]) =>
        g.targets[k] !== undefined
          ? `| ${k} | ${v} | ≥ ${g.targets[k]} | ${met(v, g.targets[k])} |`
          : `| ${k} | ${v} | | |`,
      ),
      '',
    );
  }
  return lines;
}

async function main(): Promise<void> {
  installWorkerRuntime({ logLevel: 'WARN' });
  const quick = process.argv.includes('--quick');
  const at = process.argv.indexOf('--decode');
  const decode = (at >= 0 ? process.argv[at + 1] : DEFAULT_PREPROCESS.decode) as DecodeMode;
  if (!DECODE_MODES.includes(decode)) throw new Error(`--decode must be one of ${DECODE_MODES.join(', ')}`);
  const photoCount = quick ? 12 : 96;
  const smallCount = quick ? 48 : 384;
  const { model: resnet, images: small } = await prepare(smallCount);
  const tiny = (await ensureDemoAssets(path.join(WORK, 'demo'))).modelPath;
  const photos = await ensurePhotoCorpus(WORK, photoCount, log);
  const models = { tiny, resnet };
  const corpora = [
    await measureCorpus('camera-sized photos (4032x3024 JPEG q90)', photos, models, decode, quick ? 6 : 48),
    await measureCorpus('256x256 JPEGs', small, models, decode, quick ? 24 : 128),
  ];
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
      '(on a shared machine compare the ratios, measured back to back, not the absolute figures). One round per case.',
    '',
    `GPU worker: ${gpuThreads}.`,
    '',
    ...corpora.flatMap(markdown),
  ].join('\n');
  await fs.writeFile(path.join(RESULTS, `decode-${stamp}.md`), md);
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
