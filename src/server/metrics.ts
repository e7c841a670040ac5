/**
 * The scoring server's metrics, in the Prometheus text exposition format (version 0.0.4), written by
 * prom-client into a registry of this server's own (not prom-client's global one, so several servers in
 * one process keep separate counts): a counter per status code and three histograms. Nothing here holds a
 * key, a path or a body.
 *   inferctl_server_requests_total{code}      answers sent, by HTTP status
 *   inferctl_server_scoring_requests_total{code}  answers to scoring requests only (POST /score, V2 infer):
 *                                             what an idle TTL and a rollout's error rate read
 *   inferctl_server_scoring_in_flight         scoring requests received and not answered yet: what aks
 *                                             autoscaling reads per pod (without a front)
 *   inferctl_server_batch_size                tensors per executed inference call
 *   inferctl_server_queue_delay_seconds       per request: submit → start of its batch's inference
 *   inferctl_server_inference_seconds         per executed inference call
 *   inferctl_server_event_loop_delay_seconds{stat="p99"|"max"}  the main thread's event-loop delay since
 *                                             the previous scrape (perf_hooks.monitorEventLoopDelay, 10 ms
 *                                             resolution; a script front's 50 ms): whether anything blocks the
 *                                             loop that answers /healthz and forms batches, apart from the
 *                                             machine's load
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

export class ServerMetrics {
  private readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'inferctl_server_requests_total',
    help: 'HTTP answers sent by the scoring server, by status code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  private readonly scoring = new Counter({
    name: 'inferctl_server_scoring_requests_total',
    help: 'Answers to scoring requests (POST /score and V2 infer), by status code; health and metrics reads excluded.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  private readonly inFlight = new Gauge({
    name: 'inferctl_server_scoring_in_flight',
    help: 'Scoring requests (POST /score and V2 infer) received and not answered yet.',
    registers: [this.registry],
  });
  private readonly batchSize = new Histogram({
    name: 'inferctl_server_batch_size',
    help: 'Images per executed inference call.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  private readonly queueDelay = new Histogram({
    name: 'inferctl_server_queue_delay_seconds',
    help: 'Time a request waited in the batching queue before its inference started.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  private readonly inference = new Histogram({
    name: 'inferctl_server_inference_seconds',
    help: 'Duration of each inference call (per-request path without batching: decode included).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  private readonly loopDelay: ReturnType<typeof monitorEventLoopDelay>;
  private readonly loopDelayGauge = new Gauge({
    name: 'inferctl_server_event_loop_delay_seconds',
    help: "The scoring server main thread's event-loop delay since the previous scrape: p99 and max.",
    labelNames: ['stat'] as const,
    registers: [this.registry],
    collect: () => this.collectLoopDelay(),
  });

  /**
   * `loopDelayResolutionMs`: how often the event loop is sampled (a timer; 10 ms by default). Each sample wakes
   * the process: a script front, whose loop does no batching, samples every 50 ms, so that an idle front takes
   * less CPU from the Python server beside it (bench:serve measured about 4 ms of CPU a second at 10 ms).
   */
  constructor(opts: { loopDelayResolutionMs?: number } = {}) {
    this.loopDelay = monitorEventLoopDelay({ resolution: opts.loopDelayResolutionMs ?? 10 });
    this.loopDelay.enable();
  }

  private collectLoopDelay(): void {
    // The histogram is in nanoseconds; with no sample yet (a scrape right after start) both read 0.
    const seconds = (ns: number) => (Number.isFinite(ns) && this.loopDelay.count > 0 ? ns / 1e9 : 0);
    this.loopDelayGauge.set({ stat: 'p99' }, seconds(this.loopDelay.percentile(99)));
    this.loopDelayGauge.set({ stat: 'max' }, seconds(this.loopDelay.max));
    this.loopDelay.reset();
  }

  /** Stops sampling the event loop (the server closed). */
  stop(): void {
    this.loopDelay.disable();
  }

  countRequest(status: number, scoring = false): void {
    this.requests.inc({ code: status });
    if (scoring) this.scoring.inc({ code: status });
  }

  /** A scoring request arrived; `scoringEnded` when its answer is sent or its connection closed. */
  scoringStarted(): void {
    this.inFlight.inc();
  }

  scoringEnded(): void {
    this.inFlight.dec();
  }

  /** One executed inference call of `size` images, and how long each of them had queued. */
  recordBatch(size: number, inferenceSeconds: number, queueDelaysSeconds: readonly number[] = []): void {
    this.batchSize.observe(size);
    this.inference.observe(inferenceSeconds);
    for (const delay of queueDelaysSeconds) this.queueDelay.observe(delay);
  }

  /** The exposition text: the counters first, then the histograms and the gauge, in the order above. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
