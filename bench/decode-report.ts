/**
 * The markdown of `npm run bench:decode` (decode-bench.ts): per corpus, D for each decode mode, then each
 * regime's cases with the target next to the cell it applies to, its limit, the GPU worker's decode split
 * and the ratios against their targets.
 */
import { DECODE_MODES } from '../src/shared/preprocess-types';
import type { DecodeMode } from '../src/shared/preprocess-types';
import type { CaseResult } from './batch-harness';

export interface Target {
  /** The ratio's name in `ratios`. */
  ratio: string;
  /** At least this. */
  atLeast: number;
  /** What it is a ratio to, in words. */
  of: string;
}

export interface RegimeReport {
  regime: 'a' | 'b';
  model: string;
  /** What the Python peers run, in words. */
  peers: string;
  cases: Record<string, CaseResult>;
  decodeCoreMsPerImage: number;
  /** Pillow-draft's D, one process: the Python peers' own decode cost. */
  pillowDecodeCoreMsPerImage?: number;
  inferMsPerImage?: number;
  /** (a) A decode call's fixed cost: core-ms per image on JPEGs already at the model's input size. */
  floorCoreMsPerImage?: number;
  /** (a) The tiny model's CPU ms per image on these cores (bare inference, every thread). */
  inferCoreMsPerImage?: number;
  limitItemsPerSecond: number;
  /** (a) C / (D + I_cpu): the limit once inference's own CPU is counted (it runs on the CPU here, not a GPU). */
  cpuLimitItemsPerSecond?: number;
  /** What the GPU worker logged when it chose its decode concurrency. */
  decodeSplit: string;
  ratios: Record<string, number | null>;
  targets: Target[];
}

export interface CorpusReport {
  corpus: string;
  items: number;
  /** D for each decode mode with the ResNet-50-shaped model's spec (224x224), core-ms per image (full runs). */
  decodeMsByMode?: Record<DecodeMode, number>;
  regimes: RegimeReport[];
}

const met = (v: number | null | undefined, target: number) =>
  v === null || v === undefined ? 'n/a' : v >= target ? 'met' : 'NOT met';

function row(label: string, x: CaseResult | undefined, target = ''): string {
  return x
    ? `| ${label} | ${x.items} | ${x.seconds.toFixed(2)} | ${x.itemsPerSecond.toFixed(2)} | ${x.peakRssMb?.toFixed(0) ?? '–'} | ${target} | ${x.note ?? ''} |`
    : `| ${label} | – | – | – | – | ${target} | not run |`;
}

/** The target column of the `c` row: each target with the items/s it asks for and whether it is met. */
function cTargets(g: RegimeReport): string {
  return g.targets
    .map((t) => {
      const v = g.ratios[t.ratio];
      const base = t.ratio === 'cOverLimit' ? g.limitItemsPerSecond : undefined;
      const wanted = base !== undefined ? ` = ${(t.atLeast * base).toFixed(2)} items/s` : '';
      return `≥ ${t.atLeast}× ${t.of}${wanted}: ${v ?? 'n/a'}× ${met(v, t.atLeast)}`;
    })
    .join('; ');
}

/** Pillow draft's D and, in (a), how near its own limit C/D the two-process peer ran. */
function pillowLine(g: RegimeReport, pil: number, cores: number): string {
  const line = `Pillow draft's D = ${pil} core-ms/image`;
  const peer = g.cases.draft2?.itemsPerSecond;
  if (g.regime !== 'a' || !peer) return `${line}.`;
  const limit = (1000 * cores) / pil;
  return `${line}: the two-process peer's own limit is C/D = ${limit.toFixed(2)} items/s; it ran at ${peer.toFixed(2)}, ${(peer / limit).toFixed(2)} of it.`;
}

/**
 * (a) What c ≥ 1.2× the two-process peer asks of the GPU worker, from the peer's measured rate (not its
 * limit, which it may be far from): at most C / (1.2 × its rate) core-ms per item in all, against what the
 * worker cannot avoid: the tiny model's own inference (I_cpu, none on a GPU) and a decode call's fixed cost F.
 */
function peerNeeds(g: RegimeReport, cores: number): string {
  const peer = g.cases.draft2?.itemsPerSecond;
  const F = g.floorCoreMsPerImage;
  if (g.regime !== 'a' || !peer || F === undefined) return '';
  const budget = (1000 * cores) / (1.2 * peer);
  const floor = F + (g.inferCoreMsPerImage ?? 0);
  const verdict =
    floor >= budget
      ? `F + I_cpu = ${floor.toFixed(2)} already exceeds it, before any pixel of the corpus is decoded: no sharp-based decode reaches that target on these cores`
      : `F + I_cpu = ${floor.toFixed(2)} leaves ${(budget - floor).toFixed(2)} core-ms/item for decoding the pixels, reading and writing (D is ${g.decodeCoreMsPerImage})`;
  return (
    `c ≥ 1.2× the two-process peer (${peer.toFixed(2)} items/s measured) needs at most ${budget.toFixed(2)} core-ms of CPU per item ` +
    `on ${cores} cores. A decode call costs F = ${F} core-ms/image even on a JPEG already the model's input size ` +
    `(sharp's and libvips' fixed cost per image) and the tiny model I_cpu = ${g.inferCoreMsPerImage}: ${verdict}.`
  );
}

function regimeLines(g: RegimeReport, cores: number): string[] {
  const lines = [`### (${g.regime}) ${g.model}`, '', `Python peers: ${g.peers}.`, ''];
  lines.push('| case | items | seconds | items/s | peak RSS (MB) | target | note |', '|---|---|---|---|---|---|---|');
  if (g.cases.bare) {
    const label =
      g.regime === 'b' ? 'bare onnxruntime-node, pre-decoded (I)' : 'the tiny model alone, pre-decoded (I_cpu)';
    lines.push(row(label, g.cases.bare));
  }
  lines.push(row('D: decode + preprocess alone, one thread', g.cases.D));
  lines.push(row('D (Pillow draft): decode + preprocess alone, one process', g.cases.Dpil));
  if (g.cases.floor) {
    lines.push(row("F: the same preprocessing on JPEGs already the model's input size, one thread", g.cases.floor));
  }
  if (g.regime === 'a') lines.push(row('b: decode → infer → write, one process', g.cases.b));
  lines.push(row('c: `inferctl score`: workflow + GPU worker', g.cases.c, cTargets(g)));
  if (g.cases.cAgain) {
    lines.push(row('c again: the same job on the same worker (its decode split known, measured in c)', g.cases.cAgain));
  }
  lines.push(row('Python: onnxruntime + Pillow draft, one process', g.cases.draft));
  if (g.regime === 'a') lines.push(row('Python: Pillow draft, two decode processes', g.cases.draft2));
  const pil = g.pillowDecodeCoreMsPerImage;
  lines.push(
    '',
    g.regime === 'a'
      ? `Limit C/D on ${cores} cores: D = ${g.decodeCoreMsPerImage} core-ms/image → **${g.limitItemsPerSecond} items/s**.` +
          (g.cpuLimitItemsPerSecond
            ? ` The tiny model's own inference costs I_cpu = ${g.inferCoreMsPerImage} core-ms/image on these cores (on a GPU node, none): ` +
              `counting it, C/(D + I_cpu) = ${g.cpuLimitItemsPerSecond} items/s, so c/limit can reach at most D/(D + I_cpu) = ` +
              `${(g.cpuLimitItemsPerSecond / g.limitItemsPerSecond).toFixed(2)} here.`
            : '')
      : `Limit C/(D + C·I) on ${cores} cores: D = ${g.decodeCoreMsPerImage} core-ms/image, I = ${g.inferMsPerImage} ms/image → **${g.limitItemsPerSecond} items/s**.`,
    pil ? pillowLine(g, pil, cores) : '',
    peerNeeds(g, cores),
    `The GPU worker's decode split: ${g.decodeSplit}`,
    '',
    '| ratio | measured | target | |',
    '|---|---|---|---|',
    ...Object.entries(g.ratios).map(([k, v]) => {
      const t = g.targets.find((x) => x.ratio === k);
      return t ? `| ${k} | ${v} | ≥ ${t.atLeast} | ${met(v, t.atLeast)} |` : `| ${k} | ${v} | | |`;
    }),
    '',
  );
  return lines.filter((l, i, all) => l !== '' || all[i - 1] !== '');
}

export function corpusMarkdown(r: CorpusReport, cores: number): string[] {
  const lines = [`## ${r.corpus}: ${r.items} images`, ''];
  if (r.decodeMsByMode) {
    lines.push(
      `Decode + preprocess alone, one thread, to 224x224 (core-ms per image): ` +
        DECODE_MODES.map((m) => `${m} ${r.decodeMsByMode![m]}`).join(', ') +
        ' (agreement of each with exact: docs/preprocessing.md, "JPEG decode").',
      '',
    );
  }
  return [...lines, ...r.regimes.flatMap((g) => regimeLines(g, cores))];
}
