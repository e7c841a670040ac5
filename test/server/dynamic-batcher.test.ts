/**
 * Dynamic batching: the batcher alone with a fake model (when batches go, one at a time, failures kept
 * to their batch), then the scoring server with it over real HTTP on loopback with the tiny colour CNN
 * (each answer is its own image's, bad images answered alone, the per-request path, /metrics).
 * Time bounds are generous: these run on loaded 2-core machines.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { makeColourJpeg } from '../../src/demo/sample-images';
import { TINY_CNN_LABELS, buildTinyCnn } from '../../src/demo/tiny-cnn';
import { Classifier } from '../../src/scoring/classifier';
import { DynamicBatcher, RequestAbandonedError } from '../../src/server/dynamic-batcher';
import type { BatchStats, BatchingOptions } from '../../src/server/dynamic-batcher';
import { createScoringServer } from '../../src/server/scoring-server';

const KEY = 'batch-test-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };

/** A fake model: row i is [input[0] * 10]; records each batch and can be held or made to fail. */
function fakeModel() {
  const batches: number[][] = [];
  let gate: Promise<void> = Promise.resolve();
  let failNext = false;
  const run = async (batch: Float32Array[]): Promise<Float32Array[]> => {
    batches.push(batch.map((t) => t[0]!));
    await gate;
    if (failNext) {
      failNext = false;
      throw new Error('inference exploded');
    }
    return batch.map((t) => Float32Array.of(t[0]! * 10));
  };
  return {
    run,
    batches,
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return release;
    },
    failOnce: () => (failNext = true),
  };
}

const tensor = (v: number) => Float32Array.of(v);

describe('DynamicBatcher', () => {
  test('a full batch runs at once, without waiting for the delay', async () => {
    const model = fakeModel();
    const batcher = new DynamicBatcher({ maxBatchSize: 4, maxQueueDelayMicros: 60_000_000, run: model.run });
    const started = Date.now();
    const rows = await Promise.all([1, 2, 3, 4].map((v) => batcher.submit(tensor(v))));
    assert.deepEqual(
      rows.map((r) => r[0]),
      [10, 20, 30, 40],
      'each caller gets its own row',
    );
    assert.deepEqual(model.batches, [[1, 2, 3, 4]]);
    assert.ok(Date.now() - started < 5_000, 'did not wait for the 60 s delay');
  });

  test('a lone request runs after the max delay, not later and not never', async () => {
    const model = fakeModel();
    const stats: BatchStats[] = [];
    const batcher = new DynamicBatcher({
      maxBatchSize: 8,
      maxQueueDelayMicros: 30_000,
      run: model.run,
      onBatch: (s) => stats.push(s),
    });
    const started = process.hrtime.bigint();
    const row = await batcher.submit(tensor(7));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    assert.equal(row[0], 70);
    assert.deepEqual(model.batches, [[7]]);
    assert.ok(seconds >= 0.025, `waited ${seconds} s for company, about the 30 ms delay`);
    assert.ok(seconds < 2, `answered after ${seconds} s`);
    assert.equal(stats[0]?.size, 1);
    assert.ok((stats[0]?.queueDelaysSeconds[0] ?? 0) >= 0.025);
  });

  test('eager when nothing else is coming: a lone request does not wait the delay when arriving() is 0', async () => {
    const model = fakeModel();
    const stats: BatchStats[] = [];
    const batcher = new DynamicBatcher({
      maxBatchSize: 8,
      maxQueueDelayMicros: 60_000_000,
      run: model.run,
      onBatch: (s) => stats.push(s),
      arriving: () => 0,
    });
    const row = await Promise.race([
      batcher.submit(tensor(7)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('waited for the 60 s delay')), 5_000)),
    ]);
    assert.equal(row[0], 70);
    assert.deepEqual(model.batches, [[7]]);
    assert.ok((stats[0]?.queueDelaysSeconds[0] ?? 1) < 1, `queue delay ${stats[0]?.queueDelaysSeconds[0]} s`);
  });

  test('with requests on their way, a free runner waits for them to join the batch', async () => {
    const model = fakeModel();
    let arriving = 1;
    const batcher = new DynamicBatcher({
      maxBatchSize: 8,
      maxQueueDelayMicros: 60_000_000,
      run: model.run,
      arriving: () => arriving,
    });
    const first = batcher.submit(tensor(1));
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(model.batches, [], 'the first request waits while another is on its way');
    arriving = 0; // the second one reaches submit: nothing else is coming
    const second = batcher.submit(tensor(2));
    const rows = await Promise.all([first, second]);
    assert.deepEqual(
      rows.map((r) => r[0]),
      [10, 20],
    );
    assert.deepEqual(model.batches, [[1, 2]], 'both went in one batch, without waiting the 60 s delay');
  });

  test('one inference at a time: the next batch forms while the current one runs', async () => {
    const model = fakeModel();
    const batcher = new DynamicBatcher({ maxBatchSize: 3, maxQueueDelayMicros: 0, run: model.run });
    const release = model.hold();
    const first = batcher.submit(tensor(1)); // runs alone (no delay) and is held
    await new Promise((r) => setTimeout(r, 20));
    const rest = [2, 3, 4, 5, 6].map((v) => batcher.submit(tensor(v)));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(model.batches, [[1]], 'nothing else runs while the first batch is in flight');
    assert.equal(batcher.queued, 5);
    release();
    const rows = await Promise.all([first, ...rest]);
    assert.deepEqual(
      rows.map((r) => r[0]),
      [10, 20, 30, 40, 50, 60],
    );
    assert.deepEqual(model.batches, [[1], [2, 3, 4], [5, 6]], 'queued requests go in order, at most 3 at a time');
  });

  test('a request abandoned before its batch goes is dropped, never inferred; the others still run', async () => {
    const model = fakeModel();
    const batcher = new DynamicBatcher({ maxBatchSize: 4, maxQueueDelayMicros: 0, run: model.run });
    const release = model.hold();
    const first = batcher.submit(tensor(1)); // runs alone and is held
    await new Promise((r) => setTimeout(r, 20));
    const gone = new AbortController();
    const abandoned = batcher.submit(tensor(2), gone.signal);
    const kept = batcher.submit(tensor(3), new AbortController().signal);
    gone.abort(); // its client went away while the runner was busy
    release();
    await assert.rejects(abandoned, RequestAbandonedError);
    assert.deepEqual([(await first)[0], (await kept)[0]], [10, 30]);
    assert.deepEqual(model.batches, [[1], [3]], 'the abandoned tensor never reached the model');
    const late = new AbortController();
    late.abort();
    await assert.rejects(batcher.submit(tensor(4), late.signal), RequestAbandonedError);
    assert.equal(model.batches.length, 2);
  });

  test('an inference failure rejects only its own batch, and the next batches still run', async () => {
    const model = fakeModel();
    const batcher = new DynamicBatcher({ maxBatchSize: 2, maxQueueDelayMicros: 0, run: model.run });
    const release = model.hold();
    const held = batcher.submit(tensor(1));
    await new Promise((r) => setTimeout(r, 20));
    model.failOnce();
    const later = [2, 3, 4].map((v) => batcher.submit(tensor(v)));
    release();
    await assert.rejects(held, /inference exploded/);
    const settled = await Promise.allSettled(later);
    assert.deepEqual(
      settled.map((s) => (s.status === 'fulfilled' ? s.value[0] : 'rejected')),
      [20, 30, 40],
    );
    assert.deepEqual(model.batches, [[1], [2, 3], [4]]);
  });

  test('a model answering the wrong number of rows fails that batch with a clear error', async () => {
    const batcher = new DynamicBatcher({
      maxBatchSize: 2,
      maxQueueDelayMicros: 0,
      run: () => Promise.resolve([]),
    });
    await assert.rejects(batcher.submit(tensor(1)), /answered 0 rows for a batch of 1/);
  });

  test('refuses a batch size under 1', () => {
    assert.throws(() => new DynamicBatcher({ maxBatchSize: 0, maxQueueDelayMicros: 0, run: fakeModel().run }), /≥ 1/);
  });
});

describe('scoring server with dynamic batching', () => {
  let dir: string;
  let classifier: Classifier;
  const servers: http.Server[] = [];
  const images = new Map<string, Buffer>();

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-batching-'));
    const modelPath = path.join(dir, 'tiny.onnx');
    await fs.writeFile(modelPath, buildTinyCnn());
    classifier = await Classifier.load(modelPath, { intraOpNumThreads: 1 });
    for (const label of TINY_CNN_LABELS) images.set(label, await makeColourJpeg(label, { seed: 3 }));
  });
  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await classifier?.release();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function listen(batching: BatchingOptions | undefined, model: Classifier = classifier) {
    const errors: unknown[] = [];
    const server = createScoringServer({
      classifier: model,
      apiKey: KEY,
      topK: 2,
      maxBodyBytes: 1_000_000,
      onError: (err) => errors.push(err),
      ...(batching ? { batching } : {}),
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const score = async (body: Uint8Array) => {
      const res = await fetch(`${url}/score`, { method: 'POST', body, headers: AUTH });
      const json = (await res.json()) as { predictions?: Array<{ label: string }>; error?: { code: string } };
      return { status: res.status, label: json.predictions?.[0]?.label, code: json.error?.code };
    };
    const metrics = async () => {
      const res = await fetch(`${url}/metrics`);
      assert.equal(res.status, 200);
      return parseMetrics(await res.text());
    };
    return { url, score, metrics, errors };
  }

  /** The sample lines of a Prometheus exposition: name{labels} → value. */
  function parseMetrics(text: string): Map<string, number> {
    const samples = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const at = line.lastIndexOf(' ');
      samples.set(line.slice(0, at), Number(line.slice(at + 1)));
    }
    return samples;
  }

  const labelsTimes = (n: number) => Array.from({ length: n }, (_, i) => TINY_CNN_LABELS[i % TINY_CNN_LABELS.length]!);

  test('concurrent requests each get their own image’s label, in batches larger than one', async () => {
    const { score, metrics, errors } = await listen({ enabled: true, maxBatchSize: 8, maxQueueDelayMicros: 50_000 });
    const labels = labelsTimes(24);
    const answers = await Promise.all(labels.map((label) => score(images.get(label)!)));
    assert.deepEqual(
      answers.map((a) => `${a.status} ${a.label}`),
      labels.map((label) => `200 ${label}`),
    );
    const m = await metrics();
    const batches = m.get('inferctl_server_batch_size_count')!;
    assert.equal(m.get('inferctl_server_batch_size_sum'), 24, 'every image was inferred once');
    assert.ok(batches < 24, `24 requests ran in ${batches} inference calls`);
    assert.ok(m.get('inferctl_server_batch_size_bucket{le="1"}')! < batches, 'some batch had more than one image');
    assert.equal(m.get('inferctl_server_batch_size_bucket{le="8"}'), batches, 'no batch over maxBatchSize');
    assert.equal(m.get('inferctl_server_queue_delay_seconds_count'), 24);
    assert.equal(m.get('inferctl_server_inference_seconds_count'), batches);
    assert.deepEqual(errors, []);
  });

  test('8 requests within a 20 ms window are batched; a lone one is answered within delay + inference', async () => {
    const { score, metrics } = await listen({ enabled: true, maxBatchSize: 16, maxQueueDelayMicros: 20_000 });
    const answers = await Promise.all(labelsTimes(8).map((label) => score(images.get(label)!)));
    assert.ok(answers.every((a) => a.status === 200));
    const m = await metrics();
    const average = m.get('inferctl_server_batch_size_sum')! / m.get('inferctl_server_batch_size_count')!;
    assert.ok(average > 1, `average executed batch size ${average}`);

    const started = Date.now();
    const lone = await score(images.get('cyan')!);
    const ms = Date.now() - started;
    assert.deepEqual(lone, { status: 200, label: 'cyan', code: undefined });
    assert.ok(ms < 2_000, `a lone request took ${ms} ms (delay 20 ms)`);
  });

  test('a lone client pays no queue delay: with no other request on its way, its batch goes at once', async () => {
    const { score, metrics } = await listen({ enabled: true, maxBatchSize: 8, maxQueueDelayMicros: 1_000_000 });
    for (const label of labelsTimes(3)) assert.equal((await score(images.get(label)!)).label, label);
    const m = await metrics();
    assert.equal(m.get('inferctl_server_queue_delay_seconds_count'), 3);
    const waited = m.get('inferctl_server_queue_delay_seconds_sum')!;
    assert.ok(waited < 0.9, `3 sequential requests waited ${waited} s in all for a batch (the delay is 1 s each)`);
  });

  test('a corrupt or non-image body among good ones gets its own 4xx; the others 200', async () => {
    const { score, errors } = await listen({ enabled: true, maxBatchSize: 8, maxQueueDelayMicros: 20_000 });
    const good = images.get('green')!;
    const bodies: Array<[Uint8Array, string]> = [
      [good, '200 green'],
      [good.subarray(0, 200), '400 corrupt'],
      [images.get('red')!, '200 red'],
      [Buffer.from('not an image'), '415 unsupported-format'],
      [images.get('blue')!, '200 blue'],
      [Buffer.alloc(0), '400 empty'],
      [images.get('white')!, '200 white'],
    ];
    const answers = await Promise.all(bodies.map(([body]) => score(body)));
    assert.deepEqual(
      answers.map((a) => `${a.status} ${a.label ?? a.code}`),
      bodies.map(([, want]) => want),
    );
    assert.deepEqual(errors, [], 'bad images are client errors, not server errors');
  });

  test('an inference failure is a 500 for its batch only, and the server keeps serving', async () => {
    const broken = Object.create(classifier) as Classifier;
    let failures = 1;
    broken.infer = (batch) =>
      failures-- > 0 ? Promise.reject(new Error('inference exploded')) : classifier.infer(batch);
    const { score, errors } = await listen({ enabled: true, maxBatchSize: 8, maxQueueDelayMicros: 1_000 }, broken);
    const first = await score(images.get('red')!);
    assert.equal(first.status, 500);
    assert.equal(first.code, 'internal');
    assert.match(String(errors[0]), /inference exploded/);
    const answers = await Promise.all(labelsTimes(8).map((label) => score(images.get(label)!)));
    assert.deepEqual(
      answers.map((a) => a.label),
      labelsTimes(8),
    );
  });

  test('batching off (enabled: false, or left out) infers every request alone', async () => {
    for (const batching of [{ enabled: false, maxBatchSize: 8, maxQueueDelayMicros: 50_000 }, undefined]) {
      const { score, metrics } = await listen(batching);
      const labels = labelsTimes(8);
      const answers = await Promise.all(labels.map((label) => score(images.get(label)!)));
      assert.deepEqual(
        answers.map((a) => a.label),
        labels,
      );
      const m = await metrics();
      assert.equal(m.get('inferctl_server_batch_size_count'), 8);
      assert.equal(m.get('inferctl_server_batch_size_bucket{le="1"}'), 8, 'every inference had one image');
      assert.equal(m.get('inferctl_server_queue_delay_seconds_count'), 0, 'nothing queued');
    }
  });

  test('/metrics: Prometheus text without a key, counts by status code, no secrets', async () => {
    const { url, score } = await listen({ enabled: true, maxBatchSize: 4, maxQueueDelayMicros: 2_000 });
    await score(images.get('red')!);
    await score(images.get('blue')!);
    await score(Buffer.from('nope'));
    const unauthorised = await fetch(`${url}/score`, { method: 'POST', body: 'x' });
    await unauthorised.arrayBuffer();
    const res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200, 'no key needed');
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^# TYPE inferctl_server_requests_total counter$/m);
    assert.match(text, /^inferctl_server_requests_total\{code="200"\} 2$/m);
    assert.match(text, /^inferctl_server_requests_total\{code="415"\} 1$/m);
    assert.match(text, /^inferctl_server_requests_total\{code="401"\} 1$/m);
    for (const name of ['batch_size', 'queue_delay_seconds', 'inference_seconds']) {
      assert.match(text, new RegExp(`^# TYPE inferctl_server_${name} histogram$`, 'm'));
      assert.match(text, new RegExp(`^inferctl_server_${name}_bucket\\{le="\\+Inf"\\} 2$`, 'm'));
      assert.match(text, new RegExp(`^inferctl_server_${name}_sum [0-9.e-]+$`, 'm'));
    }
    assert.ok(!text.includes(KEY), 'the key never appears');
    assert.ok(!text.includes(dir), 'nor the model path');
    const post = await fetch(`${url}/metrics`, { method: 'POST' });
    assert.equal(post.status, 405);
    await post.arrayBuffer();
  });
});
