/**
 * `npm run bench -- --script-only [--quick] [--rounds N] [--cells l,s,c,s2]`: only the script path's cells,
 * on the 256x256 corpus, in rounds that alternate them (the order turns each round), so a shared
 * machine's load falls on every cell alike:
 *   (l)  bench/script/batch_score.py in a plain Python loop (one process, init() before timing);
 *   (s)  `inferctl score --entry-script` with that script: workflow + GPU worker, the worker's defaults;
 *   (c)  inferctl's ONNX path on the same corpus;
 *   (s2) (s) with two Python processes per worker (`--script-processes 2`), for comparison.
 * Each workflow cell warms its worker (the script's processes started, init() run), times a job of one
 * input per slot (the fixed cost of a job: start, listing, scheduling, merging, summary), then the corpus.
 * Reported per cell: items/s (wall), items/s in steady state (the corpus less the fixed cost), and CPU
 * seconds per item of the scoring side (the worker with its Python processes; the loop's own process),
 * which a neighbour's load does not change the way it changes wall time.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { fullWorkflow, prepare, pythonPeer } from './batch-harness';
import type { CaseResult } from './batch-harness';

type Cell = 'l' | 's' | 'c' | 's2';

const LABELS: Record<Cell, string> = {
  l: '(l) the script in a plain Python loop',
  s: '(s) `inferctl score --entry-script`',
  c: '(c) `inferctl score`, the ONNX path',
  s2: '(s2) (s) with `--script-processes 2`',
};

interface Reading extends CaseResult {
  round: number;
  /** A job of one input per slot, after the warm-up (workflow cells). */
  fixedSeconds?: number;
  steadyItemsPerSecond?: number;
  controlCpuSecondsPerItem?: number;
}

export interface ScriptBenchOptions {
  quick: boolean;
  rounds?: number;
  cells?: Cell[];
  results: string;
  log: (line: string) => void;
}

async function measure(cell: Cell, round: number, model: string, images: string, shardSize: number): Promise<Reading> {
  const batchSize = 16;
  const concurrency = 2;
  if (cell === 'l') return { ...(await pythonPeer(model, images, batchSize, 'script')), case: 'l', round };
  const run = await fullWorkflow(model, images, {
    batchSize,
    shardSize,
    concurrency,
    script: cell !== 'c',
    fixedCost: true,
    ...(cell === 's2' ? { gpuArgs: ['--script-processes', '2'] } : {}),
  });
  const r = run.result;
  const fixed = run.fixedSeconds ?? 0;
  return {
    ...r,
    case: cell,
    round,
    fixedSeconds: run.fixedSeconds,
    steadyItemsPerSecond: r.items / Math.max(r.seconds - fixed, 1e-3),
    controlCpuSecondsPerItem: run.controlCpuSeconds / r.items,
  };
}

const median = (xs: number[]): number | undefined => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const fmt = (x: number | undefined, digits = 2) => (x === undefined ? '–' : x.toFixed(digits));

export async function scriptBench(opts: ScriptBenchOptions): Promise<void> {
  const items = opts.quick ? 128 : 384;
  const shardSize = opts.quick ? 32 : 64;
  const rounds = opts.rounds ?? (opts.quick ? 2 : 3);
  const cells = opts.cells ?? ['l', 's', 'c'];
  const { model, images } = await prepare(items);
  const readings: Reading[] = [];
  for (let round = 0; round < rounds; round++) {
    // The order turns each round: l s c, s c l, c l s, …
    const order = cells.map((_, i) => cells[(i + round) % cells.length]!);
    for (const cell of order) {
      opts.log(`round ${round + 1}/${rounds}: ${LABELS[cell]}…`);
      const r = await measure(cell, round, model, images, shardSize);
      opts.log(
        `  ${r.itemsPerSecond.toFixed(2)} items/s, ${fmt(r.cpuSecondsPerItem, 3)} CPU s/item, load ${os.loadavg()[0]!.toFixed(1)}`,
      );
      readings.push(r);
    }
  }
  const of = (cell: Cell) => readings.filter((r) => r.case === cell);
  const med = (cell: Cell, key: keyof Reading) => median(of(cell).map((r) => Number(r[key])));
  // Ratios per round (cells of one round ran back to back), then their median.
  const perRound = (x: Cell, y: Cell, key: keyof Reading) =>
    median(
      Array.from({ length: rounds }, (_, round) => {
        const a = readings.find((r) => r.case === x && r.round === round);
        const b = readings.find((r) => r.case === y && r.round === round);
        return a && b ? Number(a[key]) / Number(b[key]) : NaN;
      }),
    );
  const summary = Object.fromEntries(
    cells.map((cell) => [
      cell,
      {
        itemsPerSecond: med(cell, 'itemsPerSecond'),
        steadyItemsPerSecond: med(cell, 'steadyItemsPerSecond'),
        fixedSeconds: med(cell, 'fixedSeconds'),
        cpuSecondsPerItem: med(cell, 'cpuSecondsPerItem'),
        controlCpuSecondsPerItem: med(cell, 'controlCpuSecondsPerItem'),
      },
    ]),
  );
  const ratios: Record<string, number | undefined> = {};
  for (const cell of cells.filter((c) => c !== 'l')) {
    if (!cells.includes('l')) break;
    ratios[`${cell}/l wall`] = perRound(cell, 'l', 'itemsPerSecond');
    ratios[`${cell}/l steady`] = median(
      Array.from({ length: rounds }, (_, round) => {
        const a = readings.find((r) => r.case === cell && r.round === round);
        const b = readings.find((r) => r.case === 'l' && r.round === round);
        return a && b ? a.steadyItemsPerSecond! / b.itemsPerSecond : NaN;
      }),
    );
    ratios[`${cell}/l CPU per item`] = perRound(cell, 'l', 'cpuSecondsPerItem');
  }
  const date = new Date().toISOString();
  const report = {
    date,
    mode: opts.quick ? 'script-only quick' : 'script-only',
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, loadAverage: os.loadavg() },
    corpus: `${items} JPEGs of 256x256`,
    shardSize,
    rounds,
    readings,
    summary,
    ratios,
    target: 's/l ≥ 0.9 (the script path costs at most 10% over the plain loop)',
  };
  const md = [
    `# Script path benchmark, ${date} (${report.mode})`,
    '',
    `${report.corpus}, shards of ${shardSize}, mini-batches of 16, 2 shards in flight; ${rounds} rounds, the cells ` +
      `alternating; ${report.machine.cpus} CPUs (${report.machine.cpu}), ${report.machine.node}; load average at the ` +
      `end ${report.machine.loadAverage.map((l) => l.toFixed(1)).join(' ')} (a shared machine: read the ratios).`,
    '',
    '| cell | items/s (median) | steady items/s | fixed cost of a job (s) | CPU s/item, scoring | CPU s/item, control plane |',
    '|---|---|---|---|---|---|',
    ...cells.map((cell) => {
      const x = summary[cell]!;
      return `| ${LABELS[cell]} | ${fmt(x.itemsPerSecond)} | ${fmt(x.steadyItemsPerSecond)} | ${fmt(x.fixedSeconds)} | ${fmt(x.cpuSecondsPerItem, 3)} | ${fmt(x.controlCpuSecondsPerItem, 4)} |`;
    }),
    '',
    '| ratio (median of the rounds) | measured | target |',
    '|---|---|---|',
    ...Object.entries(ratios).map(
      ([k, v]) => `| ${k} | ${fmt(v, 3)} | ${k.startsWith('s/l') && !k.includes('CPU') ? '≥ 0.9' : ''} |`,
    ),
    '',
    '| round | cell | items/s | seconds | CPU s/item |',
    '|---|---|---|---|---|',
    ...readings.map(
      (r) =>
        `| ${r.round + 1} | ${r.case} | ${r.itemsPerSecond.toFixed(2)} | ${r.seconds.toFixed(1)} | ${fmt(r.cpuSecondsPerItem, 3)} |`,
    ),
    '',
  ].join('\n');
  await fs.mkdir(opts.results, { recursive: true });
  const stamp = `script-${date.slice(0, 16).replace(':', '-')}${opts.quick ? '-quick' : ''}`;
  await fs.writeFile(path.join(opts.results, `${stamp}.json`), JSON.stringify(report, null, 2) + '\n');
  await fs.writeFile(path.join(opts.results, `${stamp}.md`), md);
  process.stdout.write(md);
}

/** The cells named by `--cells l,s,c,s2`, else undefined (the default cells). */
export function cellsArg(argv: string[]): Cell[] | undefined {
  const at = argv.indexOf('--cells');
  if (at < 0) return undefined;
  const cells = (argv[at + 1] ?? '').split(',').filter((c): c is Cell => c in LABELS);
  if (cells.length === 0) throw new Error('--cells takes a list of l, s, c, s2 (for example --cells l,s,c)');
  return cells;
}
