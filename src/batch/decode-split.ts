/**
 * How many images a GPU worker decodes at once (issue #28, section 2). Where inference is elsewhere (a GPU)
 * or a small part of the work, decode is the job's speed and every core decodes. Where both run on the
 * CPU, the split is chosen from what the worker measured in its first batches, not from a fixed rule:
 *   D     decode ms per image (one image on one core, as measured while decoding alone or nearly);
 *   I(t)  inference wall ms per image with t onnxruntime intra-op threads (each setting measured);
 * per setting the work per image is D + t·I(t) core-ms, so C cores give at most C / (D + t·I(t)) images a
 * second, and one session at most 1 / I(t); the setting with the best of those is kept, and decode gets
 * enough concurrency to feed it (⌈rate × D⌉, at least 1, at most C) and no more, so that a decode does not
 * hold a core that an inference thread is waiting for.
 * `chooseDecodeSplit` is the pure decision; `DecodeSplitter` gathers a worker's measurements, decides once
 * and holds the decision for every shard the process scores.
 */

/** A measured inference setting: intra-op threads and wall ms per image. */
export interface InferenceMeasure {
  intraOpThreads: number;
  msPerImage: number;
}

export interface SplitInputs {
  cores: number;
  /** 'cpu', 'cuda', … (the provider the classifier runs on). */
  executionProvider: string;
  /** Decode ms per image on one core. */
  decodeMsPerImage: number;
  /** Inference at each thread setting measured (at least one for a CPU provider). */
  inference: InferenceMeasure[];
}

export interface DecodeSplit {
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

/** Below this share of the CPU work, inference is "small" and decode takes every core. */
export const SMALL_INFERENCE_SHARE = 0.15;

export function chooseDecodeSplit(m: SplitInputs): DecodeSplit {
  const cores = Math.max(1, Math.floor(m.cores));
  const d = Math.max(m.decodeMsPerImage, 1e-3);
  if (m.executionProvider !== 'cpu' || m.inference.length === 0) {
    return {
      decodeConcurrency: cores,
      inferenceShare: 0,
      predictedItemsPerSec: (cores * 1000) / d,
      reason: `inference runs on ${m.executionProvider}: decode on every core`,
    };
  }
  let best: (DecodeSplit & { intraOpThreads: number }) | undefined;
  for (const { intraOpThreads: t, msPerImage: i } of m.inference) {
    const work = d + t * i;
    const rate = Math.min((cores * 1000) / work, 1000 / Math.max(i, 1e-3));
    if (best && rate <= best.predictedItemsPerSec) continue;
    const share = (t * i) / work;
    const small = share < SMALL_INFERENCE_SHARE;
    best = {
      decodeConcurrency: small ? cores : Math.min(cores, Math.max(1, Math.ceil((rate * d) / 1000))),
      intraOpThreads: t,
      inferenceShare: share,
      predictedItemsPerSec: rate,
      reason: small
        ? `inference is ${Math.round(share * 100)}% of the CPU work: decode on every core`
        : `inference is ${Math.round(share * 100)}% of the CPU work: decode enough to feed ` +
          `${rate.toFixed(1)} items/s with ${t} intra-op thread(s)`,
    };
  }
  return best!;
}

/** Runs at most `limit` tasks at once; the limit can change between tasks. */
export class ConcurrencyLimit {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(public limit: number) {}

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
  /** The intra-op thread setting inference runs with here. */
  intraOpThreads: number;
  /** Batches measured before deciding (default 3). */
  batches?: number;
  /** Where the decision goes (the activity's log). */
  onChoice?: (split: DecodeSplit, measured: SplitInputs) => void;
}

/**
 * One process's measurements and decision. Until it decides, decode concurrency is `cores` (what the libuv
 * pool allows); shards call `recordDecode` per image and `recordBatch` per batch.
 */
export class DecodeSplitter {
  readonly decodes = new ConcurrencyLimit(0);
  private decodeMs: number[] = [];
  private inferMs = new Map<number, { ms: number; images: number }>();
  private batchesSeen = 0;
  private provider: string | undefined;
  chosen: DecodeSplit | undefined;

  constructor(private readonly opts: SplitterOptions) {
    this.decodes.limit = Math.max(1, opts.cores);
  }

  recordDecode(ms: number): void {
    if (!this.chosen) this.decodeMs.push(ms);
  }

  recordBatch(executionProvider: string, images: number, inferMs: number): void {
    if (this.chosen || images === 0) return;
    this.provider = executionProvider;
    const t = this.opts.intraOpThreads;
    const sum = this.inferMs.get(t) ?? { ms: 0, images: 0 };
    // The first batch warms the session up (allocations, kernels chosen): not counted.
    if (this.batchesSeen++ > 0) this.inferMs.set(t, { ms: sum.ms + inferMs, images: sum.images + images });
    if (executionProvider !== 'cpu' || this.batchesSeen > (this.opts.batches ?? 3)) this.decide();
  }

  private decide(): void {
    const sorted = [...this.decodeMs].sort((a, b) => a - b);
    // The median: a decode that waited for a core is not what a decode costs.
    const decodeMsPerImage = sorted[Math.floor(sorted.length / 2)] ?? 0;
    const measured: SplitInputs = {
      cores: this.opts.cores,
      executionProvider: this.provider ?? 'cpu',
      decodeMsPerImage,
      inference: [...this.inferMs].map(([intraOpThreads, s]) => ({ intraOpThreads, msPerImage: s.ms / s.images })),
    };
    this.chosen = chooseDecodeSplit(measured);
    this.decodes.limit = this.chosen.decodeConcurrency;
    this.opts.onChoice?.(this.chosen, measured);
  }
}
