/**
 * The scoring server's metrics, in the Prometheus text exposition format (version 0.0.4), written by
 * hand: a counter per status code and three histograms. Nothing here holds a key, a path or a body.
 *   inferctl_server_requests_total{code}      answers sent, by HTTP status
 *   inferctl_server_batch_size                tensors per executed inference call
 *   inferctl_server_queue_delay_seconds       per request: submit → start of its batch's inference
 *   inferctl_server_inference_seconds         per executed inference call
 */

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    this.counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count += 1;
    this.buckets.forEach((le, i) => {
      if (value <= le) this.counts[i]! += 1;
    });
  }

  render(): string[] {
    return [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} histogram`,
      ...this.buckets.map((le, i) => `${this.name}_bucket{le="${le}"} ${this.counts[i]}`),
      `${this.name}_bucket{le="+Inf"} ${this.count}`,
      `${this.name}_sum ${this.sum}`,
      `${this.name}_count ${this.count}`,
    ];
  }
}

export class ServerMetrics {
  private readonly requests = new Map<number, number>();
  readonly batchSize = new Histogram(
    'inferctl_server_batch_size',
    'Images per executed inference call.',
    [1, 2, 4, 8, 16, 32, 64, 128],
  );
  readonly queueDelay = new Histogram(
    'inferctl_server_queue_delay_seconds',
    'Time a request waited in the batching queue before its inference started.',
    [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  );
  readonly inference = new Histogram(
    'inferctl_server_inference_seconds',
    'Duration of each inference call (per-request path without batching: decode included).',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );

  countRequest(status: number): void {
    this.requests.set(status, (this.requests.get(status) ?? 0) + 1);
  }

  /** One executed inference call of `size` images, and how long each of them had queued. */
  recordBatch(size: number, inferenceSeconds: number, queueDelaysSeconds: readonly number[] = []): void {
    this.batchSize.observe(size);
    this.inference.observe(inferenceSeconds);
    for (const delay of queueDelaysSeconds) this.queueDelay.observe(delay);
  }

  render(): string {
    const codes = [...this.requests.keys()].sort((a, b) => a - b);
    return [
      '# HELP inferctl_server_requests_total HTTP answers sent by the scoring server, by status code.',
      '# TYPE inferctl_server_requests_total counter',
      ...codes.map((code) => `inferctl_server_requests_total{code="${code}"} ${this.requests.get(code)}`),
      ...this.batchSize.render(),
      ...this.queueDelay.render(),
      ...this.inference.render(),
      '',
    ].join('\n');
  }
}
