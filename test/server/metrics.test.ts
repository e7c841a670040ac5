/**
 * The scoring server's metrics: the exposition text names, types, help, labels and values, and two
 * instances in one process keep their own counts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { METRICS_CONTENT_TYPE, ServerMetrics } from '../../src/server/metrics';

/** The sample lines of an exposition: name{labels} → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

test('the exposition lists the request counter by code, the in-flight gauge and the three histograms, with their help', async () => {
  const metrics = new ServerMetrics();
  metrics.countRequest(200, true);
  metrics.countRequest(415, true);
  metrics.countRequest(200);
  metrics.scoringStarted();
  metrics.scoringStarted();
  metrics.scoringStarted();
  metrics.scoringEnded(); // two scoring requests still in flight
  metrics.recordBatch(3, 0.004, [0.0003, 0.002, 0.002]);
  metrics.recordBatch(1, 0.03);
  const text = await metrics.render();

  assert.equal(METRICS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8');
  const comments = text.split('\n').filter((line) => line.startsWith('#'));
  assert.deepEqual(comments, [
    '# HELP inferctl_server_requests_total HTTP answers sent by the scoring server, by status code.',
    '# TYPE inferctl_server_requests_total counter',
    '# HELP inferctl_server_scoring_requests_total Answers to scoring requests (POST /score and V2 infer), by status code; health and metrics reads excluded.',
    '# TYPE inferctl_server_scoring_requests_total counter',
    '# HELP inferctl_server_scoring_in_flight Scoring requests (POST /score and V2 infer) received and not answered yet.',
    '# TYPE inferctl_server_scoring_in_flight gauge',
    '# HELP inferctl_server_batch_size Images per executed inference call.',
    '# TYPE inferctl_server_batch_size histogram',
    '# HELP inferctl_server_queue_delay_seconds Time a request waited in the batching queue before its inference started.',
    '# TYPE inferctl_server_queue_delay_seconds histogram',
    '# HELP inferctl_server_inference_seconds Duration of each inference call (per-request path without batching: decode included).',
    '# TYPE inferctl_server_inference_seconds histogram',
    "# HELP inferctl_server_event_loop_delay_seconds The scoring server main thread's event-loop delay since the previous scrape: p99 and max.",
    '# TYPE inferctl_server_event_loop_delay_seconds gauge',
  ]);

  const m = samples(text);
  assert.equal(m.get('inferctl_server_requests_total{code="200"}'), 2);
  assert.equal(m.get('inferctl_server_requests_total{code="415"}'), 1);
  assert.equal(m.get('inferctl_server_scoring_requests_total{code="200"}'), 1, 'only scoring answers');
  assert.equal(m.get('inferctl_server_scoring_requests_total{code="415"}'), 1);
  assert.equal(m.get('inferctl_server_scoring_in_flight'), 2, 'what aks autoscaling reads per pod');

  const batch = [1, 2, 4, 8, 16, 32, 64, 128].map((le) => m.get(`inferctl_server_batch_size_bucket{le="${le}"}`));
  assert.deepEqual(batch, [1, 1, 2, 2, 2, 2, 2, 2], 'cumulative buckets');
  assert.equal(m.get('inferctl_server_batch_size_bucket{le="+Inf"}'), 2);
  assert.equal(m.get('inferctl_server_batch_size_sum'), 4);
  assert.equal(m.get('inferctl_server_batch_size_count'), 2);

  assert.equal(m.get('inferctl_server_queue_delay_seconds_bucket{le="0.0001"}'), 0);
  assert.equal(m.get('inferctl_server_queue_delay_seconds_bucket{le="0.0005"}'), 1);
  assert.equal(m.get('inferctl_server_queue_delay_seconds_bucket{le="0.002"}'), 3, 'le is inclusive');
  assert.equal(m.get('inferctl_server_queue_delay_seconds_count'), 3);
  assert.ok(Math.abs(m.get('inferctl_server_queue_delay_seconds_sum')! - 0.0043) < 1e-12);

  assert.equal(m.get('inferctl_server_inference_seconds_bucket{le="0.005"}'), 1);
  assert.equal(m.get('inferctl_server_inference_seconds_bucket{le="0.05"}'), 2);
  assert.equal(m.get('inferctl_server_inference_seconds_bucket{le="10"}'), 2);
  assert.equal(m.get('inferctl_server_inference_seconds_count'), 2);
});

// The ONNX server samples every 10 ms (the default); a script front every 50 ms (fewer wake-ups beside its
// Python server): a block of the loop shows at either.
for (const resolution of [undefined, 50]) {
  test(`the event-loop delay gauge sees a blocked main thread, and measures afresh after each scrape (${resolution ?? 10} ms sampling)`, async () => {
    const metrics = new ServerMetrics({ loopDelayResolutionMs: resolution });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      await metrics.render(); // starts a fresh window
      await sleep(120);
      const until = Date.now() + 300;
      while (Date.now() < until); // what a synchronous inference on the main thread would do
      await sleep(120);
      const blocked = samples(await metrics.render());
      const blockedMax = blocked.get('inferctl_server_event_loop_delay_seconds{stat="max"}')!;
      assert.ok(blockedMax >= 0.2, `a 300 ms block read as a max delay of ${blockedMax} s`);
      assert.ok(blocked.get('inferctl_server_event_loop_delay_seconds{stat="p99"}')! > 0);

      await sleep(200);
      const calmMax = samples(await metrics.render()).get('inferctl_server_event_loop_delay_seconds{stat="max"}')!;
      assert.ok(calmMax < blockedMax, `the next window (nothing blocking) read ${calmMax} s, not the old block`);
    } finally {
      metrics.stop();
    }
  });
}

test('before any request the counter has no samples and the histograms count zero', async () => {
  const m = samples(await new ServerMetrics().render());
  assert.ok(![...m.keys()].some((k) => k.startsWith('inferctl_server_requests_total')));
  assert.equal(m.get('inferctl_server_batch_size_bucket{le="+Inf"}'), 0);
  assert.equal(m.get('inferctl_server_inference_seconds_count'), 0);
  assert.equal(m.get('inferctl_server_queue_delay_seconds_sum'), 0);
});

test('two servers in one process count apart (no global registry)', async () => {
  const a = new ServerMetrics();
  const b = new ServerMetrics();
  a.countRequest(200);
  a.recordBatch(2, 0.01);
  b.countRequest(503);
  const ma = samples(await a.render());
  const mb = samples(await b.render());
  assert.equal(ma.get('inferctl_server_requests_total{code="200"}'), 1);
  assert.equal(ma.get('inferctl_server_requests_total{code="503"}'), undefined);
  assert.equal(mb.get('inferctl_server_requests_total{code="503"}'), 1);
  assert.equal(mb.get('inferctl_server_requests_total{code="200"}'), undefined);
  assert.equal(ma.get('inferctl_server_batch_size_count'), 1);
  assert.equal(mb.get('inferctl_server_batch_size_count'), 0);
});
