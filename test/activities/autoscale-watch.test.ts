/**
 * Autoscaling's reading of the load (activities/autoscale-watch.ts) in MockActivityEnvironment, against a
 * real local gateway in front of a real slow upstream on 127.0.0.1, read through the gateway's own counters:
 * requests in flight averaged over the period with their peak and count, a retried reading that goes on from
 * its heartbeat, cancellation, and a gateway that is gone (no samples, not a failure).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';

import { createAutoscaleActivities } from '../../activities/autoscale-watch';
import type { LoadReading } from '../../src/shared/autoscale-types';
import type { DeploymentSpec } from '../../src/shared/target-types';
import { createGateway } from '../../src/targets/local/gateway';
import { readGatewayCounts } from '../../src/targets/local/gateway-counts';
import type { Target } from '../../src/targets/target';

const spec: DeploymentSpec = {
  name: 'autoscale-watch',
  target: 'local',
  ownerId: 'deploy-autoscale-watch',
  modelPath: '/models/m.onnx',
  replicas: 1,
  topK: 1,
};

type ReadLoad = (s: DeploymentSpec, o: { seconds: number }) => Promise<LoadReading>;

/** The real activity over a target whose only part is the gateway counters' real reader, at `url`. */
function readLoadAt(url: string): ReadLoad {
  const target = { kind: 'local', gatewayCounts: () => readGatewayCounts(url) } as unknown as Target;
  const real = createAutoscaleActivities({ targets: { local: target } });
  return (s, o) => real.readLoad(s, o);
}

/** Runs the activity in the mock context for a reading of `seconds`. */
function run(env: MockActivityEnvironment, readLoad: ReadLoad, seconds: number): Promise<LoadReading> {
  return env.run(readLoad, spec, { seconds });
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

describe('readLoad', () => {
  let dir: string;
  let replica: http.Server;
  let gateway: http.Server;
  let gatewayUrl: string;
  let readLoad: ReadLoad;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autoscale-watch-'));
    // A slow replica: answers each request after 1.5 s.
    replica = http.createServer((_req, res) => setTimeout(() => res.end('{}'), 1500));
    const replicaUrl = await listen(replica);
    fs.mkdirSync(path.join(dir, 'replicas', '0'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'replicas', '0', 'ready.json'), JSON.stringify({ url: replicaUrl }));
    gateway = createGateway({ replicasDir: path.join(dir, 'replicas'), replicas: 1, maxBodyBytes: 1024 });
    gatewayUrl = await listen(gateway);
    readLoad = readLoadAt(gatewayUrl);
  });
  after(async () => {
    gateway.closeAllConnections();
    replica.closeAllConnections();
    await new Promise((r) => gateway.close(r));
    await new Promise((r) => replica.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const environment = (info: ConstructorParameters<typeof MockActivityEnvironment>[0] = {}) => {
    const env = new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR') });
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    return { env, heartbeats };
  };

  test('three requests in flight during the period: their mean, peak 3, three requests counted', async () => {
    const { env, heartbeats } = environment();
    const reading = run(env, readLoad, 1);
    await new Promise((r) => setTimeout(r, 100));
    const answers = Array.from({ length: 3 }, () => fetch(`${gatewayUrl}/score`, { method: 'POST', body: 'x' }));
    const load = await reading;
    await Promise.all(answers);
    assert.equal(load.maxInFlight, 3);
    assert.equal(load.requests, 3);
    // The first sample comes before the requests; the others (one per 200 ms, fewer on a busy machine) see 3.
    assert.ok(load.samples >= 2, `${load.samples} samples`);
    assert.ok(load.meanInFlight > 1.4 && load.meanInFlight < 3, `mean ${load.meanInFlight}`);
    assert.ok(load.seconds >= 1 && load.seconds < 3);
    assert.equal(heartbeats.length, load.samples, 'a heartbeat per sample');
  });

  test('a retried reading goes on from its heartbeat', async () => {
    const { env } = environment({
      heartbeatDetails: {
        startedAt: Date.now() - 10_000,
        samples: 9,
        sumInFlight: 18,
        maxInFlight: 5,
        requests: 7,
        lastTotal: 3,
      },
    });
    const load = await run(env, readLoad, 5);
    assert.equal(load.samples, 10, 'one more sample, then the period is over');
    assert.equal(load.meanInFlight, 1.8);
    assert.equal(load.maxInFlight, 5);
    assert.equal(load.requests, 7, 'no request since the last sample');
    assert.ok(load.seconds >= 10);
  });

  test('cancellation stops the reading at once', { timeout: 10_000 }, async () => {
    const { env } = environment();
    env.on('heartbeat', () => env.cancel());
    const started = Date.now();
    const err = await run(env, readLoad, 60).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof CancelledFailure, `cancelled, got ${String(err)}`);
    assert.ok(Date.now() - started < 5000);
  });

  test('a gateway that does not answer gives a reading with no samples, not a failure', async () => {
    const { env } = environment();
    const load = await run(env, readLoadAt('http://127.0.0.1:1'), 0.5);
    assert.equal(load.samples, 0);
    assert.equal(load.meanInFlight, 0);
  });
});
