/**
 * How a GPU worker shares its cores between JPEG decode and inference (issue #28, section 2): how many images
 * it decodes at once, with how many onnxruntime intra-op threads it infers, and whether the two overlap.
 *   - "overlap": batch k+1 decodes while batch k is in inference. Right where inference is elsewhere (a GPU)
 *     or the smaller part of the work: decode is the job's speed and every core decodes (as many decodes at once
 *     as libuv's pool runs, max(4, C) by default: a decode also waits, for its read and its hops to the main
 *     thread, and with only C at once a core idles meanwhile). On the CPU it is also a candidate where
 *     inference runs with t < C intra-op threads and the C - t other cores decode.
 *   - "phases": decode and inference take turns, each with the whole machine: a batch decodes on every core,
 *     then infers with every intra-op thread, and no decode runs meanwhile (process-wide, across the shards
 *     in flight: ./phase-gate.ts). Where both are on the CPU and inference is a large share, overlapping them
 *     only makes them compete: onnxruntime's intra-op threads wait on each other when a decode takes one of
 *     their cores (measured on 2 cores, ResNet-50-shaped: 115.8 ms/image at 2 threads beside a decode, 45.5
 *     alone), while taking turns reaches the sum-of-parts limit C / (D + C·I).
 * Where both run on the CPU the choice comes from what the worker measured in its first batches:
 *   D     decode core-ms per image (a decode's wall time scaled by cores / decodes at once);
 *   I(t)  inference wall ms per image with t intra-op threads, each setting measured with no decode running
 *         (the first batches run in phases, one inference at a time; each setting's session is warmed up on
 *         one image, untimed, just before its measured batch);
 * per setting t, with inference's share s = t·I / (D + t·I): where s is under LARGE_INFERENCE_SHARE, overlap
 * on every core, at most min(C / (D + t·I(t)), 1 / I(t)); from it, phases, 1 / (D / C + I(t)) images a
 * second; and from SMALL_INFERENCE_SHARE with t < C, overlap on the C - t cores inference leaves, at most
 * min(1 / I(t), (C - t) / D). The best predicted rate is kept (a tie keeps the earlier candidate: settings in
 * their order, overlap before phases).
 * `chooseDecodeSplit` is the pure decision; `DecodeSplitter` gathers one model's measurements on a worker (its
 * first batches take turns at each intra-op setting it was given, `intraOpLadder`'s unless the operator set
 * one, each setting's session warmed up on one image, untimed, just before its first measured batch), decides
 * once, after one measured batch per setting by default, and holds the decision; ./split-registry.ts keeps
 * one per model, spec and provider for the worker process's lifetime, so later shards and jobs of the same
 * model start with the chosen split.
 */

import { PhaseGate } from './phase-gate';

/** A measured inference setting: intra-op threads and wall ms per image. */
export interface InferenceMeasure {
  intraOpThreads: number;
  msPerImage: number;
}

export interface SplitInputs {
  cores: number;
  /**
   * Decodes that can run at once (libuv's pool, where sharp decodes; default `cores`). Decoding on every
   * core uses them all: a decode also waits (its read, its hops to the main thread), and a core should not
   * idle meanwhile.
   */
  decodeSlots?: number;
  /** 'cpu', 'cuda', … (the provider the classifier runs on). */
  executionProvider: string;
  /** Decode ms per image on one core. */
  decodeMsPerImage: number;
  /** Inference at each thread setting measured (at least one for a CPU provider). */
  inference: InferenceMeasure[];
}

export type SplitMode = 'overlap' | 'phases';

export interface DecodeSplit {
  /** Whether the next batch decodes while this one infers (overlap) or after it, in turns (phases). */
  mode: SplitMode;
  /** Images decoded at once. */
  decodeConcurrency: number;
  /** The intra-op thread setting the prediction is for (undefined on a GPU). */
  intraOpThreads?: number;
  /** Inference's share of the CPU work per image, 0-1 (0 on a GPU). */
  inferenceShare: number;
  /** The rate the split should give, items/s (the decode limit C / D on a GPU). */
  predictedItemsPerSec: number;
  /** Why, in words (logged). */
  reason: string;
}

/** Below this share of the CPU work, inference is "small" and decode takes every core, overlapping it. */
export const SMALL_INFERENCE_SHARE = 0.15;
/**
 * From this share of the CPU work, inference is "large": decode and inference take turns (phases) rather than
 * decode on every core beside it. Below it, phases would pay a switch per batch for little: under load on 2
 * cores, the tiny model on 256x256 JPEGs (inference 25-40 % of the work) ran 0.45-0.8x as fast in phases.
 */
export const LARGE_INFERENCE_SHARE = 0.5;

export function chooseDecodeSplit(m: SplitInputs): DecodeSplit {
  const cores = Math.max(1, Math.floor(m.cores));
  const everyCore = Math.max(cores, Math.floor(m.decodeSlots ?? cores));
  const d = Math.max(m.decodeMsPerImage, 1e-3);
  if (m.executionProvider !== 'cpu' || m.inference.length === 0) {
    return {
      mode: 'overlap',
      decodeConcurrency: everyCore,
      inferenceShare: 0,
      predictedItemsPerSec: (cores * 1000) / d,
      reason: `inference runs on ${m.executionProvider}: decode on every core while it infers`,
    };
  }
  let best: (DecodeSplit & { intraOpThreads: number }) | undefined;
  const consider = (candidate: DecodeSplit & { intraOpThreads: number }) => {
    if (!best || candidate.predictedItemsPerSec > best.predictedItemsPerSec) best = candidate;
  };
  for (const { intraOpThreads: t, msPerImage } of m.inference) {
    const i = Math.max(msPerImage, 1e-3);
    const share = (t * i) / (d + t * i);
    const percent = `inference is ${Math.round(share * 100)}% of the CPU work`;
    if (share < LARGE_INFERENCE_SHARE) {
      const rate = Math.min((cores * 1000) / (d + t * i), 1000 / i);
      consider({
        mode: 'overlap',
        decodeConcurrency: everyCore,
        intraOpThreads: t,
        inferenceShare: share,
        predictedItemsPerSec: rate,
        reason: `${percent}: decode on every core while it infers`,
      });
    }
    if (share >= SMALL_INFERENCE_SHARE && t < cores) {
      const left = cores - t;
      const rate = Math.min(1000 / i, (left * 1000) / d);
      consider({
        mode: 'overlap',
        decodeConcurrency: Math.min(left, Math.max(1, Math.ceil((rate * d) / 1000))),
        intraOpThreads: t,
        inferenceShare: share,
        predictedItemsPerSec: rate,
        reason: `${percent}: decode on the ${left} core(s) that ${t} intra-op thread(s) leave, while it infers`,
      });
    }
    if (share >= LARGE_INFERENCE_SHARE) {
      consider({
        mode: 'phases',
        decodeConcurrency: everyCore,
        intraOpThreads: t,
        inferenceShare: share,
        predictedItemsPerSec: 1000 / (d / cores + i),
        reason: `${percent}: decode a batch on every core, then infer it with ${t} intra-op thread(s), in turns`,
      });
    }
  }
  return best!;
}

/** Runs at most `limit` tasks at once; the limit can change between tasks. */
export class ConcurrencyLimit {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(public limit: number) {}

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    while (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await task();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

export interface SplitterOptions {
  cores: number;
  /** Decodes that can run at once (SplitInputs.decodeSlots): the limit until it decides. */
  decodeSlots?: number;
  /**
   * The onnxruntime intra-op thread settings to measure, the sessions' own first (intraOpLadder's when the
   * operator left the setting to the worker; only the operator's when they set it).
   */
  intraOpSettings: number[];
  /**
   * Batches measured at each setting before deciding (default 1: a batch at a setting that loses costs the job
   * time, and the GPU worker's first batches are the job's). Each setting's session is warmed up first on one
   * image (`warmUpDue`), not on a batch. Measuring the later settings on part of a batch (4 of 16 images) was
   * tried and not kept: per-image ms at 4 is not that at 16, and side by side under load the choice changed
   * in 2 of 10 rounds (ResNet-50-shaped, photos) and 4 of 30 (the tiny model, 256x256).
   */
  batches?: number;
  /** Where the decision goes (the activity's log). */
  onChoice?: (split: DecodeSplit, measured: SplitInputs) => void;
  /**
   * Where decodes and inferences take turns (default: a gate of its own). The worker's splitters share one, so
   * phases hold process-wide whichever model each shard runs (./split-registry.ts).
   */
  gate?: PhaseGate;
}

/**
 * The intra-op thread settings worth measuring on `cores` cores: every core, then halving down to one
 * (8 cores: 8, 4, 2, 1). Fewer inference threads leave cores to decode; more finish a batch sooner.
 */
export function intraOpLadder(cores: number): number[] {
  const settings: number[] = [];
  for (let t = Math.max(1, Math.floor(cores)); ; t = Math.ceil(t / 2)) {
    settings.push(t);
    if (t === 1) return settings;
  }
}

/**
 * The intra-op settings a worker measures: the ladder where the operator left the setting to it (one
 * session on the CPU, no intra-op setting given), else only the setting its sessions run with.
 */
export function intraOpSettingsToMeasure(w: {
  cores: number;
  executionProvider: string;
  /** The operator's setting, if they gave one. */
  intraOpNumThreads?: number;
  inferenceThreads?: number;
  /** The setting the sessions run with (resolveThreading's). */
  resolvedIntraOpThreads: number;
}): number[] {
  const leftToTheWorker =
    w.executionProvider === 'cpu' && w.intraOpNumThreads === undefined && (w.inferenceThreads ?? 1) === 1;
  return leftToTheWorker ? intraOpLadder(w.cores) : [w.resolvedIntraOpThreads];
}

/**
 * One process's measurements and decision. Until it decides, the process runs in phases (`inPhases`: a
 * batch's decodes and a batch's inference never at the same time, through `gate`), decode concurrency is the
 * decode slots (what the libuv pool allows), batches take turns at each intra-op setting
 * (`nextIntraOpThreads`) and run their inference one at a time (`infers`): so that a batch's inference time
 * is its own run, with no decode and no other shard's run beside it. Just before a setting's first measured
 * batch, in the same turn, its session runs once on one image (`warmUpDue`, `recordWarmUp`: allocations,
 * kernels chosen, the session opened), untimed and its result discarded; a batch at a setting whose warm-up
 * did not run or failed is the warm-up itself, not counted. Shards call `recordDecode` per image and
 * `recordBatch` per batch; once decided, every batch runs at the chosen setting, in the chosen mode, and
 * inference runs as many at once as the sessions allow.
 */
export class DecodeSplitter {
  readonly decodes = new ConcurrencyLimit(0);
  readonly infers = new ConcurrencyLimit(1);
  /** Where a batch's decodes and a batch's inference take turns while `inPhases`. */
  readonly gate: PhaseGate;
  /** Batches recorded before the decision (measured ones, and any that warmed a session up); none after it. */
  measuredBatches = 0;
  private decodeMs: number[] = [];
  private readonly settings: number[];
  /** Batches given a setting and not yet recorded, per setting. */
  private readonly underWay = new Map<number, number>();
  /** Settings whose session has run once (a one-image warm-up, or a batch that was not counted). */
  private readonly warm = new Set<number>();
  /** Batches counted per setting. */
  private readonly counted = new Map<number, number>();
  private readonly inferMs = new Map<number, { ms: number; images: number }>();
  private provider: string | undefined;
  chosen: DecodeSplit | undefined;

  /** Whether decode and inference take turns now: while measuring, and where phases were chosen. */
  get inPhases(): boolean {
    return this.chosen === undefined || this.chosen.mode === 'phases';
  }

  constructor(private readonly opts: SplitterOptions) {
    this.decodes.limit = Math.max(1, opts.cores, opts.decodeSlots ?? 0);
    this.gate = opts.gate ?? new PhaseGate();
    this.settings = [...new Set(opts.intraOpSettings)];
    if (this.settings.length === 0) throw new RangeError('DecodeSplitter needs at least one intra-op setting');
  }

  /**
   * The intra-op setting the next batch runs at: while measuring, the one with the fewest batches counted or
   * under way (in turns; a setting whose batch was not counted gets the next turn), then the chosen one.
   */
  nextIntraOpThreads(): number {
    if (this.chosen) return this.chosen.intraOpThreads ?? this.settings[0]!;
    const turns = (t: number) => (this.counted.get(t) ?? 0) + (this.underWay.get(t) ?? 0);
    let next = this.settings[0]!;
    for (const t of this.settings) if (turns(t) < turns(next)) next = t;
    this.underWay.set(next, (this.underWay.get(next) ?? 0) + 1);
    return next;
  }

  /**
   * A decode's wall time, with the decodes that ran at once (`atOnce`, itself included): with more of them
   * than cores, each shared a core, and its time is scaled by cores / atOnce to what it costs on one.
   */
  recordDecode(ms: number, atOnce = 1): void {
    if (!this.chosen) this.decodeMs.push(ms * Math.min(1, this.opts.cores / Math.max(1, atOnce)));
  }

  /**
   * Whether a CPU run at `intraOpThreads` should first warm its session up on one image (untimed, in the same
   * turn, with no decode beside it): while measuring, until a warm-up at that setting has answered.
   */
  warmUpDue(executionProvider: string, intraOpThreads: number): boolean {
    return executionProvider === 'cpu' && this.chosen === undefined && !this.warm.has(intraOpThreads);
  }

  /** A warm-up run at `intraOpThreads` answered: the setting's next batch is measured. */
  recordWarmUp(intraOpThreads: number): void {
    this.warm.add(intraOpThreads);
  }

  /**
   * A batch's inference: `inferMs` its own run's wall time at `intraOpThreads`. Counted where the setting's
   * session had run before; else it was the session's first run (allocations, kernels chosen): not counted.
   */
  recordBatch(executionProvider: string, images: number, inferMs: number, intraOpThreads = this.settings[0]!): void {
    if (this.chosen || images === 0) return;
    this.provider = executionProvider;
    this.measuredBatches++;
    this.underWay.set(intraOpThreads, Math.max(0, (this.underWay.get(intraOpThreads) ?? 0) - 1));
    if (this.warm.has(intraOpThreads)) {
      const sum = this.inferMs.get(intraOpThreads) ?? { ms: 0, images: 0 };
      this.inferMs.set(intraOpThreads, { ms: sum.ms + inferMs, images: sum.images + images });
      this.counted.set(intraOpThreads, (this.counted.get(intraOpThreads) ?? 0) + 1);
    }
    this.warm.add(intraOpThreads);
    const enough = (t: number) => (this.counted.get(t) ?? 0) >= (this.opts.batches ?? 1);
    if (executionProvider !== 'cpu' || this.settings.every(enough)) this.decide();
  }

  private decide(): void {
    const sorted = [...this.decodeMs].sort((a, b) => a - b);
    // The median: a decode that waited for a core is not what a decode costs.
    const decodeMsPerImage = sorted[Math.floor(sorted.length / 2)] ?? 0;
    const measured: SplitInputs = {
      cores: this.opts.cores,
      ...(this.opts.decodeSlots !== undefined ? { decodeSlots: this.opts.decodeSlots } : {}),
      executionProvider: this.provider ?? 'cpu',
      decodeMsPerImage,
      inference: this.settings
        .filter((t) => this.inferMs.has(t))
        .map((t) => ({ intraOpThreads: t, msPerImage: this.inferMs.get(t)!.ms / this.inferMs.get(t)!.images })),
    };
    this.chosen = chooseDecodeSplit(measured);
    this.decodes.limit = this.chosen.decodeConcurrency;
    this.infers.limit = Infinity;
    this.opts.onChoice?.(this.chosen, measured);
  }
}
