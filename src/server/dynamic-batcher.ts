/**
 * Dynamic batching, as Triton's dynamic batcher does it: concurrent requests' preprocessed tensors are
 * gathered into one `infer` call.
 *   - a batch runs as soon as `maxBatchSize` tensors wait, or when the oldest has waited
 *     `maxQueueDelayMicros` (a request that arrives alone waits no longer than that);
 *   - one inference at a time: the next batch forms while the current one runs, and goes as soon as
 *     the runner is free if it is full or its oldest member has waited the delay;
 *   - eager when nothing else is coming: given `arriving` (how many requests the server has accepted that
 *     have not reached `submit` yet: still reading or decoding), a free runner does not wait the delay
 *     when that is 0, since no one could join the batch; a lone client pays no queue delay;
 *   - each submit resolves with its own output row; an inference failure rejects only that batch.
 * Decoding is the caller's job, before `submit`, so a bad image never reaches a batch.
 */

export interface BatchingOptions {
  /** false: every request is inferred alone, as before batching existed. */
  enabled: boolean;
  /** Most tensors in one inference call (1 turns batching off). */
  maxBatchSize: number;
  /** Longest a request waits for others to join its batch, in microseconds. */
  maxQueueDelayMicros: number;
}

/** Safe defaults: a lone request waits at most 2 ms; a batch of 8 fits any model in memory. */
export const DEFAULT_BATCHING: BatchingOptions = { enabled: true, maxBatchSize: 8, maxQueueDelayMicros: 2_000 };

/** What one executed batch took; what the metrics record. */
export interface BatchStats {
  size: number;
  /** Each member's time from submit to the start of its inference, in seconds. */
  queueDelaysSeconds: number[];
  inferenceSeconds: number;
  ok: boolean;
}

export interface DynamicBatcherOptions {
  maxBatchSize: number;
  maxQueueDelayMicros: number;
  /** Runs one batch; must answer one row per input, in order. */
  run: (batch: Float32Array[]) => Promise<Float32Array[]>;
  /** Told about each executed batch, after it settles; must not throw. */
  onBatch?: (stats: BatchStats) => void;
  /**
   * Requests on their way to `submit` (accepted, body or decode still running). When given and 0, a free
   * runner takes what is queued at once instead of waiting for company that cannot come.
   */
  arriving?: () => number;
}

interface Pending {
  tensor: Float32Array;
  enqueuedAt: bigint;
  resolve: (row: Float32Array) => void;
  reject: (err: unknown) => void;
}

/** Thrown (to each member of a batch) when the model answers a different number of rows than it was given. */
export class BatchShapeError extends Error {
  constructor(
    readonly expected: number,
    readonly received: number,
  ) {
    super(
      `The model answered ${received} rows for a batch of ${expected}; check that its first dimension is the batch.`,
    );
  }
}

function secondsSince(start: bigint, now = process.hrtime.bigint()): number {
  return Number(now - start) / 1e9;
}

export class DynamicBatcher {
  private readonly queue: Pending[] = [];
  private running = false;
  /** Cancels the pending wake-up, when there is one. */
  private cancelTimer: (() => void) | undefined;
  private readonly maxDelayNs: bigint;

  constructor(private readonly opts: DynamicBatcherOptions) {
    if (!Number.isInteger(opts.maxBatchSize) || opts.maxBatchSize < 1) {
      throw new RangeError(`maxBatchSize must be an integer ≥ 1, not ${opts.maxBatchSize}.`);
    }
    if (!Number.isFinite(opts.maxQueueDelayMicros) || opts.maxQueueDelayMicros < 0) {
      throw new RangeError(`maxQueueDelayMicros must be a number ≥ 0, not ${opts.maxQueueDelayMicros}.`);
    }
    this.maxDelayNs = BigInt(Math.round(opts.maxQueueDelayMicros * 1000));
  }

  /** Requests waiting for a batch (not counting the one running). */
  get queued(): number {
    return this.queue.length;
  }

  /** Queues one preprocessed tensor; resolves with its output row once its batch has run. */
  submit(tensor: Float32Array): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.queue.push({ tensor, enqueuedAt: process.hrtime.bigint(), resolve, reject });
      this.schedule();
    });
  }

  /** Runs a batch now if the runner is free and one is due, else makes sure a timer will look again. */
  private schedule(): void {
    if (this.running) return; // the running batch calls schedule() when it settles
    const oldest = this.queue[0];
    if (!oldest) return;
    const waited = process.hrtime.bigint() - oldest.enqueuedAt;
    const nothingComing = this.opts.arriving !== undefined && this.opts.arriving() === 0;
    if (this.queue.length >= this.opts.maxBatchSize || waited >= this.maxDelayNs || nothingComing) {
      this.dispatch();
      return;
    }
    if (this.cancelTimer) return;
    const remainingMs = Number(this.maxDelayNs - waited) / 1e6;
    const fire = () => {
      this.cancelTimer = undefined;
      this.schedule();
    };
    // setTimeout's resolution is 1 ms; under that, the next turn of the event loop is as close as it gets.
    if (remainingMs < 1) {
      const immediate = setImmediate(fire);
      this.cancelTimer = () => clearImmediate(immediate);
    } else {
      const timeout = setTimeout(fire, remainingMs);
      this.cancelTimer = () => clearTimeout(timeout);
    }
  }

  private dispatch(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const batch = this.queue.splice(0, this.opts.maxBatchSize);
    this.running = true;
    const started = process.hrtime.bigint();
    const queueDelaysSeconds = batch.map((p) => secondsSince(p.enqueuedAt, started));
    const settle = (ok: boolean) => {
      this.running = false;
      try {
        this.opts.onBatch?.({ size: batch.length, queueDelaysSeconds, inferenceSeconds: secondsSince(started), ok });
      } finally {
        this.schedule();
      }
    };
    const fail = (err: unknown) => {
      for (const p of batch) p.reject(err);
      settle(false);
    };
    // Through a promise so that a synchronous throw in `run` is the same failure as a rejection.
    const result = Promise.resolve().then(() => this.opts.run(batch.map((p) => p.tensor)));
    void result.then((rows) => {
      if (rows.length !== batch.length) return fail(new BatchShapeError(batch.length, rows.length));
      batch.forEach((p, i) => p.resolve(rows[i]!));
      settle(true);
    }, fail);
  }
}
