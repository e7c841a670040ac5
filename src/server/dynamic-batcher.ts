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
 *   - each submit resolves with its own output row; an inference failure rejects only that batch;
 *   - a request abandoned before its batch goes (its `signal` aborted: the client went away) is dropped from
 *     the queue and rejected with RequestAbandonedError, never inferred: a burst of requests whose clients
 *     gave up leaves no backlog for the next clients to wait behind.
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
  signal: AbortSignal | undefined;
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

/** Thrown (to its own submit only) when a request's signal aborted before its batch went: it is not inferred. */
export class RequestAbandonedError extends Error {
  constructor() {
    super('The request was abandoned (its client went away) before its inference started; it was not inferred.');
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

  /**
   * Queues one preprocessed tensor; resolves with its output row once its batch has run. When `signal`
   * aborts before the batch goes, rejects with RequestAbandonedError and the tensor is never inferred.
   */
  submit(tensor: Float32Array, signal?: AbortSignal): Promise<Float32Array> {
    if (signal?.aborted) return Promise.reject(new RequestAbandonedError());
    return new Promise((resolve, reject) => {
      this.queue.push({ tensor, signal, enqueuedAt: process.hrtime.bigint(), resolve, reject });
      this.schedule();
    });
  }

  /** Drops the queued requests whose signal has aborted, rejecting each. */
  private dropAbandoned(): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const pending = this.queue[i]!;
      if (!pending.signal?.aborted) continue;
      this.queue.splice(i, 1);
      pending.reject(new RequestAbandonedError());
    }
  }

  /** Runs a batch now if the runner is free and one is due, else makes sure a timer will look again. */
  private schedule(): void {
    if (this.running) return; // the running batch calls schedule() when it settles
    this.dropAbandoned();
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
