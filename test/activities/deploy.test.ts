/**
 * The deploy activities in MockActivityEnvironment, over an in-memory target: the readiness wait
 * (its deadline carried across attempts in the heartbeat details, a heartbeat per poll, cancellation),
 * progress heartbeats of a long step, and the smoke query's checks against a real HTTP server on
 * 127.0.0.1 (the key is required, the answer must be well formed, the label must match).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';

import { createDeployActivities } from '../../activities/deploy';
import type { WaitOptions } from '../../activities/deploy';
import { TARGET_TIMINGS } from '../../src/shared/deploy-timings';
import { FailureType } from '../../src/shared/failure-types';
import type { SmokeResult, SmokeSpec } from '../../src/shared/deploy-types';
import type { DeploymentSpec, ProvisionResult, ReadinessReport } from '../../src/shared/target-types';
import { FakeTarget, readiness } from '../helpers/fake-target';
import type { FakeTargetOptions } from '../helpers/fake-target';

const spec: DeploymentSpec = {
  name: 'fake-deployment',
  target: 'local',
  ownerId: 'deploy-fake-deployment',
  modelPath: '/models/fake.onnx',
  replicas: 2,
  topK: 3,
};

/** What the wait step heartbeats after each readiness check. */
interface WaitDetails {
  firstPolledAt: number;
  readyReplicas: number;
  reason?: string;
}

const quiet = new DefaultLogger('ERROR');

/** A mock activity context that records its heartbeats. */
function environment(info: ConstructorParameters<typeof MockActivityEnvironment>[0] = {}) {
  const env = new MockActivityEnvironment(info, { logger: quiet });
  const heartbeats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => heartbeats.push(d));
  return { env, heartbeats };
}

/** The real deploy activities over a fake target (as functions, the way the worker registers them). */
function activitiesWith(options: FakeTargetOptions) {
  const target = new FakeTarget(options);
  const real = createDeployActivities({ targets: { local: target } });
  const activities = {
    waitForDeployment: (s: DeploymentSpec, o: WaitOptions) => real.waitForDeployment(s, o),
    provision: (s: DeploymentSpec) => real.provision(s),
    smokeQuery: (s: DeploymentSpec, smoke: SmokeSpec) => real.smokeQuery(s, smoke),
  };
  return { target, activities };
}

/** The rejection of `promise`, which must reject. */
async function rejection(promise: Promise<unknown>, what: string): Promise<unknown> {
  return promise.then(
    () => assert.fail(`${what} should fail`),
    (err: unknown) => err,
  );
}

/** Asserts `err` is a non-retryable ApplicationFailure of `type`; returns it. */
function permanent(err: unknown, type: FailureType): ApplicationFailure {
  assert.ok(err instanceof ApplicationFailure, `an ApplicationFailure, got ${String(err)}`);
  assert.equal(err.type, type, err.message);
  assert.equal(err.nonRetryable, true, `${type} is not retried`);
  return err;
}

describe('waitForDeployment activity', () => {
  test('polls until every replica is ready, heartbeating each report, at the target’s poll interval from the timing table', async () => {
    const reports = [
      readiness(0, 2, 'replicas starting'),
      readiness(1, 2, '1 of 2 replicas starting'),
      readiness(2, 2),
    ];
    const { target, activities } = activitiesWith({ readiness: (n) => reports[n - 1]! });
    const pollMs = TARGET_TIMINGS[spec.target].readinessPollSeconds * 1000;
    const { env, heartbeats } = environment();
    const startedAt = Date.now();

    const report: ReadinessReport = await env.run(activities.waitForDeployment, spec, { timeoutSeconds: 30 });

    assert.equal(report.ready, true);
    assert.equal(report.readyReplicas, 2);
    assert.equal(report.endpoint, 'http://127.0.0.1:1');
    const checks = target.callsOf('checkReadiness');
    assert.equal(checks.length, 3, 'checked until ready, then stopped');
    for (const check of checks) {
      assert.deepEqual(check.spec, spec);
      assert.equal(check.signal, env.context.cancellationSignal, 'the check gets the activity’s abort signal');
    }
    for (let i = 1; i < checks.length; i++) {
      const gap = checks[i]!.at - checks[i - 1]!.at;
      assert.ok(gap >= pollMs - 5, `polls ${pollMs} ms apart (gap ${gap} ms)`);
    }

    const details = heartbeats as WaitDetails[];
    assert.deepEqual(
      details.map((d) => [d.readyReplicas, d.reason]),
      [
        [0, 'replicas starting'],
        [1, '1 of 2 replicas starting'],
        [2, undefined],
      ],
      'one heartbeat per check, with its report',
    );
    const firstPolledAt = details[0]!.firstPolledAt;
    assert.ok(firstPolledAt >= startedAt && firstPolledAt <= checks[0]!.at, 'the clock starts at the first poll');
    assert.ok(
      details.every((d) => d.firstPolledAt === firstPolledAt),
      'every heartbeat carries the same start',
    );
  });

  test('the wait’s own poll interval (the workflow passes it) overrides the table’s default', async () => {
    const { target, activities } = activitiesWith({
      readiness: (n) => (n < 3 ? readiness(0, 2, 'starting') : readiness(2, 2)),
    });
    const { env } = environment();
    const started = Date.now();
    const options: WaitOptions = { timeoutSeconds: 30, pollIntervalMs: 20 };
    const report: ReadinessReport = await env.run(activities.waitForDeployment, spec, options);
    assert.equal(report.ready, true);
    assert.equal(target.callsOf('checkReadiness').length, 3);
    const tableMs = TARGET_TIMINGS[spec.target].readinessPollSeconds * 1000;
    assert.ok(Date.now() - started < 2 * tableMs, `polled every 20 ms, not every ${tableMs} ms`);
  });

  test('a deployment that cannot become ready fails at once with DeploymentFailed', async () => {
    const { target, activities } = activitiesWith({
      readiness: () => ({ ...readiness(0, 2, 'replica 0 exited with code 1: model file unreadable'), fatal: true }),
    });
    const { env, heartbeats } = environment();
    const err = await rejection(env.run(activities.waitForDeployment, spec, { timeoutSeconds: 30 }), 'the wait');
    const failure = permanent(err, FailureType.DeploymentFailed);
    assert.match(failure.message, /"fake-deployment" cannot become ready: replica 0 exited with code 1/);
    assert.equal(target.callsOf('checkReadiness').length, 1, 'no second check');
    assert.equal(heartbeats.length, 1, 'the fatal report was heartbeated');
  });

  test('the deadline counts from the first attempt: a retry keeps it and fails with DeploymentNotReady', async () => {
    const timeoutSeconds = 2;
    const options: WaitOptions = { timeoutSeconds, pollIntervalMs: 50 };
    // Never ready; the fifth check fails the way a dropped connection would (a plain, retryable error).
    const { target, activities } = activitiesWith({
      readiness: (n) => {
        if (n === 5) throw new Error('connection reset by peer');
        return readiness(0, 2, 'pulling the image');
      },
    });

    const first = environment({ attempt: 1 });
    const crash = await rejection(first.env.run(activities.waitForDeployment, spec, options), 'the first attempt');
    assert.ok(crash instanceof Error && !(crash instanceof ApplicationFailure), 'a transient error stays retryable');
    assert.match(crash.message, /connection reset/);
    const firstDetails = first.heartbeats as WaitDetails[];
    assert.equal(firstDetails.length, 4, 'a heartbeat per answered check');
    const carried = firstDetails.at(-1)!;
    const deadline = carried.firstPolledAt + timeoutSeconds * 1000;

    // The retry backoff: the second attempt starts when most of the time is gone (300 ms before the deadline,
    // counted from the carried start, not from whenever the first attempt happened to end).
    await delay(Math.max(0, deadline - 300 - Date.now()));
    const second = environment({ attempt: 2, heartbeatDetails: carried });
    const secondStarted = Date.now();
    const err = await rejection(second.env.run(activities.waitForDeployment, spec, options), 'the second attempt');
    const secondEnded = Date.now();

    const failure = permanent(err, FailureType.DeploymentNotReady);
    assert.match(
      failure.message,
      /"fake-deployment" was not ready after 2s \(0\/2 replicas ready\): pulling the image/,
    );
    assert.ok(secondEnded >= deadline, 'it waited until the original deadline');
    // A retry that restarted the clock would end no sooner than its own start plus the whole timeout: ending
    // before that is the proof, with the deadline's 300 ms against the timeout's 2 s as the margin for load.
    assert.ok(
      secondEnded < secondStarted + timeoutSeconds * 1000,
      `the retry did not restart the clock (it waited ${secondEnded - secondStarted} ms of ${timeoutSeconds * 1000})`,
    );
    const secondDetails = second.heartbeats as WaitDetails[];
    assert.ok(secondDetails.length > 0, 'the second attempt heartbeats too');
    assert.ok(
      secondDetails.every((d) => d.firstPolledAt === carried.firstPolledAt),
      'the second attempt carries the first attempt’s start on',
    );
    assert.ok(target.callsOf('checkReadiness').length > 5, 'the second attempt polled again');
  });

  test('a retry past its deadline checks once: a deployment ready by now is returned, else DeploymentNotReady', async () => {
    const longAgo = { firstPolledAt: Date.now() - 60_000, readyReplicas: 0 };

    const stuck = activitiesWith({ readiness: () => readiness(1, 2, 'one replica crash-looping') });
    const late = environment({ attempt: 3, heartbeatDetails: longAgo });
    const err = await rejection(
      late.env.run(stuck.activities.waitForDeployment, spec, { timeoutSeconds: 30, pollIntervalMs: 10 }),
      'the late attempt',
    );
    assert.match(permanent(err, FailureType.DeploymentNotReady).message, /after 30s \(1\/2 replicas ready\)/);
    assert.equal(stuck.target.callsOf('checkReadiness').length, 1);

    const ready = activitiesWith({ readiness: () => readiness(2, 2) });
    const report: ReadinessReport = await environment({ attempt: 3, heartbeatDetails: longAgo }).env.run(
      ready.activities.waitForDeployment,
      spec,
      { timeoutSeconds: 30 },
    );
    assert.equal(report.ready, true, 'readiness is checked before the deadline');
  });

  // A wait that ignores cancellation would sleep out its minute: fail in seconds instead.
  test('cancellation while waiting between polls stops the wait at once', { timeout: 10_000 }, async () => {
    const { target, activities } = activitiesWith({ readiness: () => readiness(0, 2, 'starting') });
    const { env, heartbeats } = environment();
    env.on('heartbeat', () => env.cancel());
    const started = Date.now();
    const err = await rejection(
      env.run(activities.waitForDeployment, spec, { timeoutSeconds: 300, pollIntervalMs: 60_000 }),
      'a cancelled wait',
    );
    assert.ok(err instanceof CancelledFailure, `cancelled, got ${String(err)}`);
    assert.ok(Date.now() - started < 5_000, 'did not sleep out the poll interval');
    assert.equal(target.callsOf('checkReadiness').length, 1, 'no check after the cancellation');
    assert.equal(heartbeats.length, 1);
  });

  test('cancellation during a readiness check aborts the check through its signal', { timeout: 10_000 }, async () => {
    let checkStarted!: () => void;
    const started = new Promise<void>((resolve) => (checkStarted = resolve));
    const { target, activities } = activitiesWith({
      // A check that, like an HTTP call given the signal, only ends when it is aborted.
      readiness: (_n, signal) =>
        new Promise<ReadinessReport>((_resolve, reject) => {
          assert.ok(signal, 'the check gets a signal');
          signal.addEventListener('abort', () => reject(signal.reason as Error));
          checkStarted();
        }),
    });
    const { env, heartbeats } = environment();
    const run = env.run(activities.waitForDeployment, spec, { timeoutSeconds: 300 });
    await started;
    env.cancel();
    const err = await rejection(run, 'a cancelled wait');
    assert.ok(err instanceof CancelledFailure, `cancelled, got ${String(err)}`);
    assert.equal(target.callsOf('checkReadiness')[0]?.signal?.aborted, true);
    assert.equal(target.callsOf('checkReadiness').length, 1);
    assert.equal(heartbeats.length, 0, 'no report to heartbeat');
  });
});

describe('long deploy steps', () => {
  test('provision heartbeats each progress line the target reports, and passes the abort signal', async () => {
    const lines = ['creating cluster inferctl-fake: Creating, 0m10s', 'creating cluster inferctl-fake: Succeeded'];
    const { target, activities } = activitiesWith({ provisionProgress: lines });
    const { env, heartbeats } = environment();
    const result: ProvisionResult = await env.run(activities.provision, spec);
    assert.equal(result.clusterId, 'fake/fake-deployment');
    assert.deepEqual(
      heartbeats.filter((d) => d !== undefined),
      lines.map((progress) => ({ progress })),
      'each progress line heartbeated as { progress }',
    );
    assert.equal(target.callsOf('provision')[0]?.signal, env.context.cancellationSignal);
  });

  test('a spec for a target this worker does not drive fails with TargetUnavailable', async () => {
    const { target, activities } = activitiesWith({});
    const aksSpec: DeploymentSpec = { ...spec, target: 'aks' };
    const err = await rejection(environment().env.run(activities.provision, aksSpec), 'provision');
    assert.match(permanent(err, FailureType.TargetUnavailable).message, /cannot deploy to target "aks".*serves: local/);
    assert.equal(target.calls.length, 0);
  });
});

describe('smokeQuery activity', () => {
  const apiKey = 'test-key-7f3a9c';
  let server: http.Server;
  let endpoint: string;
  let dir: string;
  let samplePath: string;
  let sample: Buffer;
  /** What the endpoint answers a request that carries the key. */
  let answer: () => { status: number; body: string };
  /** When true the endpoint answers without checking the key. */
  let unprotected: boolean;
  let requests: Array<{ method?: string; url?: string; authorization?: string; contentType?: string; body: Buffer }>;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-smoke-'));
    samplePath = path.join(dir, 'red.jpg');
    sample = Buffer.from('not really a jpeg, but the endpoint is not a model either');
    await fs.writeFile(samplePath, sample);
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const { authorization, 'content-type': contentType } = req.headers;
        requests.push({ method: req.method, url: req.url, authorization, contentType, body: Buffer.concat(chunks) });
        const { status, body } =
          unprotected || authorization === `Bearer ${apiKey}` ? answer() : { status: 401, body: '{"error":"no key"}' };
        res.writeHead(status, { 'content-type': 'application/json' }).end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Runs the smoke query against the test server, which gives `reply` to a request with the key. */
  function smoke(expectedLabel: string | undefined, reply: { status?: number; body: string; unprotected?: boolean }) {
    requests = [];
    unprotected = reply.unprotected ?? false;
    answer = () => ({ status: reply.status ?? 200, body: reply.body });
    const { target, activities } = activitiesWith({ access: { endpoint, apiKey } });
    const run: Promise<SmokeResult> = environment().env.run(activities.smokeQuery, spec, {
      samplePath,
      ...(expectedLabel === undefined ? {} : { expectedLabel }),
    });
    return { run, target };
  }

  const answerOf = (...predictions: Array<{ label: string; score: number }>) => JSON.stringify({ predictions });

  test('sends the sample without a key (refused) then with it, and returns the answer', async () => {
    const { run, target } = smoke('red', {
      body: answerOf({ label: 'red', score: 0.91 }, { label: 'blue', score: 0.05 }),
    });
    const result: SmokeResult = await run;
    assert.deepEqual(result.predictions, [
      { label: 'red', score: 0.91 },
      { label: 'blue', score: 0.05 },
    ]);
    assert.ok(result.latencyMs >= 0);
    assert.deepEqual(target.callsOf('endpointAccess').length, 1);
    assert.equal(requests.length, 2);
    const [anonymous, keyed] = requests;
    assert.equal(anonymous?.authorization, undefined, 'the first request carries no key');
    assert.equal(keyed?.authorization, `Bearer ${apiKey}`);
    for (const r of requests) {
      assert.equal(r.method, 'POST');
      assert.equal(r.url, '/score');
      assert.equal(r.contentType, 'image/jpeg');
      assert.ok(r.body.equals(sample), 'the sample is what is sent');
    }
  });

  test('without an expected label any well-formed answer passes', async () => {
    const result: SmokeResult = await smoke(undefined, { body: answerOf({ label: 'green', score: 0.4 }) }).run;
    assert.equal(result.predictions[0]?.label, 'green');
  });

  test('a top label other than the expected one fails with SmokeQueryMismatch', async () => {
    const err = await rejection(smoke('blue', { body: answerOf({ label: 'red', score: 0.9 }) }).run, 'the smoke query');
    const failure = permanent(err, FailureType.SmokeQueryMismatch);
    assert.match(failure.message, /expected top label "blue" but the model answered "red" \(score 0\.900\)/);
  });

  test('an endpoint that answers without the key fails with EndpointUnprotected, and never gets the key', async () => {
    const { run } = smoke('red', { body: answerOf({ label: 'red', score: 0.9 }), unprotected: true });
    const err = await rejection(run, 'the smoke query');
    const failure = permanent(err, FailureType.EndpointUnprotected);
    assert.match(failure.message, /answered 200 to a request without a key; it must refuse with 401/);
    assert.equal(requests.length, 1, 'stopped after the unauthenticated request');
    assert.equal(requests[0]?.authorization, undefined);
  });

  test('a malformed answer fails with SmokeQueryFailed', async () => {
    const malformed = [
      'this is not json',
      '{}',
      '{"predictions":[]}',
      '{"predictions":"red"}',
      '{"predictions":[{"label":"red"}]}',
      '{"predictions":[{"score":0.9}]}',
      '{"predictions":[{"label":"red","score":1.5}]}',
      '{"predictions":[{"label":"red","score":0.9},{"label":"blue","score":-0.1}]}',
    ];
    for (const body of malformed) {
      const err = await rejection(smoke(undefined, { body }).run, `the smoke query answered ${body}`);
      const failure = permanent(err, FailureType.SmokeQueryFailed);
      assert.match(failure.message, /not well formed/, body);
      assert.ok(failure.message.includes(body), `the message quotes the answer (${body})`);
    }
  });

  test('a refusal with the key fails with SmokeQueryFailed; a server error stays retryable', async () => {
    const refused = await rejection(smoke('red', { status: 403, body: 'forbidden' }).run, 'a 403');
    assert.match(
      permanent(refused, FailureType.SmokeQueryFailed).message,
      /Smoke query got 403 from .*\/score: forbidden/,
    );

    const unavailable = await rejection(smoke('red', { status: 503, body: 'warming up' }).run, 'a 503');
    assert.ok(unavailable instanceof Error);
    assert.ok(!(unavailable instanceof ApplicationFailure), 'a 5xx is thrown plainly, so the activity is retried');
    assert.match(unavailable.message, /Smoke query got 503 .*warming up/);
  });
});
