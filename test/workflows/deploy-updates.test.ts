/**
 * The deploy workflow's Updates on the local target, against the run's real dev server and a real control
 * worker: a request its validator refuses leaves nothing in history, extend and scale answer with their
 * result, scaling up and down keeps the endpoint and its answers, teardown answers with what it removed,
 * a deploy of the same spec attaches, and an idle TTL tears down once the replicas' counters stop moving.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, test } from 'node:test';

import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

import type { DeployOutcome, DeployStatus } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import type { deploy } from '../../workflows/deploy';
import { attachUpdate, extendUpdate, scaleUpdate, statusQuery, teardownUpdate } from '../../workflows/deploy';
import { workflowSuite } from '../helpers/workflow-suite';
import { eventually, uniqueName } from '../helpers/workers';

type DeployHandle = WorkflowHandle<typeof deploy>;

function serving(handle: DeployHandle): Promise<DeployStatus> {
  return eventually(async () => {
    const s = await handle.query(statusQuery);
    return s.stage === 'serving' ? s : undefined;
  }, 'the deployment to serve');
}

/** The Update's refusal: a WorkflowUpdateFailedError whose cause is the validator's ApplicationFailure. */
async function refused(send: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(send, (err: unknown) => {
    assert.ok(err instanceof WorkflowUpdateFailedError, `a WorkflowUpdateFailedError, got ${String(err)}`);
    assert.ok(err.cause instanceof ApplicationFailure, 'caused by the validator’s ApplicationFailure');
    assert.match(err.cause.message, message);
    return true;
  });
}

async function historyText(handle: DeployHandle): Promise<string> {
  return JSON.stringify(await handle.fetchHistory());
}

function updateEvents(history: string): number {
  return (history.match(/workflowExecutionUpdateAcceptedEventAttributes/g) ?? []).length;
}

async function score(endpoint: string, key: string, image: Buffer): Promise<number> {
  const res = await fetch(`${endpoint}/score`, {
    method: 'POST',
    body: image,
    headers: { authorization: `Bearer ${key}` },
  });
  await res.arrayBuffer();
  return res.status;
}

describe('deploy workflow Updates on the local target', () => {
  const suite = workflowSuite('deploy-updates');

  test('refused Updates leave no event in history; extend answers with the new expiry', async () => {
    const name = uniqueName('upd');
    const handle = await suite.startDeploy(suite.deployInput({ name, ttlSeconds: 300 }));
    const before = await serving(handle);
    assert.ok(before.expiresAt);
    assert.match(before.endsBecause ?? '', /^ends when its TTL ends at /);

    await refused(handle.executeUpdate(extendUpdate, { args: [{ seconds: 0 }], updateId: 'extend-zero' }), /positive/);
    await refused(
      handle.executeUpdate(extendUpdate, { args: [{ seconds: -5 }], updateId: 'extend-negative' }),
      /positive/,
    );
    await refused(
      handle.executeUpdate(scaleUpdate, { args: [{ replicas: 17 }], updateId: 'scale-too-many' }),
      /replicas must be a whole number from 1 to 16 for target "local" \(got 17\)/,
    );
    await refused(
      handle.executeUpdate(attachUpdate, {
        args: [{ ...suite.deployInput({ name }), replicas: 2 }],
        updateId: 'attach-different',
      }),
      /already running with a different spec: replicas 2 \(it serves 1\).*inferctl scale/,
    );
    let history = await historyText(handle);
    for (const id of ['extend-zero', 'extend-negative', 'scale-too-many', 'attach-different']) {
      assert.ok(!history.includes(id), `the refused Update ${id} is not in history`);
    }
    assert.equal(updateEvents(history), 0, 'no Update was accepted');

    const extended = await handle.executeUpdate(extendUpdate, { args: [{ seconds: 7200 }], updateId: 'extend-2h' });
    assert.ok(
      Date.parse(extended.expiresAt!) > Date.now() + 7100_000,
      `about two hours from now: ${extended.expiresAt}`,
    );
    assert.equal((await handle.query(statusQuery)).expiresAt, extended.expiresAt);

    const attached = await handle.executeUpdate(attachUpdate, { args: [suite.deployInput({ name, ttlSeconds: 60 })] });
    assert.equal(attached.stage, 'serving', 'the same spec attaches and gets the status');
    history = await historyText(handle);
    assert.ok(history.includes('extend-2h'));
    assert.equal(updateEvents(history), 2, 'the extend and the attach were accepted');

    const { removed } = await handle.executeUpdate(teardownUpdate, { args: [{ reason: 'test' }] });
    assert.ok(
      removed.some((r) => r.startsWith('process ')),
      `teardown answers with what it removed: ${removed.join(', ')}`,
    );
    const outcome: DeployOutcome = await handle.result();
    assert.equal(outcome.endedBy, 'signal');
    assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).processMarker), []);
  });

  test('scale up and down: every replica ready when it answers, the endpoint keeps its address and answers', async (t) => {
    const name = uniqueName('scale');
    const red = suite.sample('red');
    const handle = await suite.startDeploy(suite.deployInput({ name, ttlSeconds: 300 }));
    const first = await serving(handle);
    const key = (await fs.readFile(first.apiKeyRef!, 'utf8')).trim();
    const image = await fs.readFile(red.path);
    const marker = new LocalLayout(name).processMarker;

    // Requests keep flowing through the endpoint while it scales.
    const statuses: number[] = [];
    let loading = true;
    const load = (async () => {
      while (loading) statuses.push(await score(first.endpoint!, key, image));
    })();

    const up = await handle.executeUpdate(scaleUpdate, { args: [{ replicas: 3 }] });
    assert.equal(up.replicas, 3);
    assert.equal(up.previousReplicas, 1);
    assert.equal(up.replicaUrls.length, 3);
    assert.equal(up.endpoint, first.endpoint, 'the endpoint keeps its address');
    assert.equal((await findProcessesByMarker(marker)).length, 4, 'three replicas and the gateway');
    for (const url of up.replicaUrls) assert.equal(await score(url, key, image), 200, `${url} answers`);

    const down = await handle.executeUpdate(scaleUpdate, { args: [{ replicas: 1 }] });
    assert.equal(down.replicas, 1);
    assert.equal(down.previousReplicas, 3);
    assert.deepEqual(down.replicaUrls, [up.replicaUrls[0]], 'the first replica stays');
    assert.equal((await findProcessesByMarker(marker)).length, 2, 'one replica and the gateway');
    loading = false;
    await load;
    t.diagnostic(`scale 1 → 3 → 1 under load: ${statuses.length} requests`);
    assert.ok(statuses.length > 5, `the load loop ran (${statuses.length} requests)`);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'no request failed while scaling',
    );

    const status = await handle.query(statusQuery);
    assert.equal(status.replicas, 1);
    assert.deepEqual(
      status.steps.filter((s) => s.step === 'scale').map((s) => s.detail),
      ['1 → 3', '3 → 1'],
    );
    await handle.executeUpdate(teardownUpdate, { args: [{}] });
    await handle.result();
    assert.deepEqual(await findProcessesByMarker(marker), []);
  });

  test('--ttl none with an idle TTL serves while requests come, and tears down once they stop', async () => {
    const name = uniqueName('idle');
    const red = suite.sample('red');
    const idleSeconds = 4;
    const handle = await suite.startDeploy(suite.deployInput({ name, ttlSeconds: null, idleTtlSeconds: idleSeconds }));
    const first = await serving(handle);
    assert.equal(first.expiresAt, undefined, 'no TTL');
    assert.match(first.endsBecause ?? '', /after 4\.0s without a scoring request \(no TTL\)/);
    await refused(handle.executeUpdate(extendUpdate, { args: [{ seconds: 60 }] }), /no TTL.*nothing to extend/);

    const key = (await fs.readFile(first.apiKeyRef!, 'utf8')).trim();
    const image = await fs.readFile(red.path);
    const busyUntil = Date.now() + (idleSeconds + 3) * 1000;
    let lastRequest = 0;
    while (Date.now() < busyUntil) {
      // Taken before the request is sent: the replica counts it on arrival, so the idle clock starts after this.
      const sentAt = Date.now();
      assert.equal(await score(first.endpoint!, key, image), 200);
      lastRequest = sentAt;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal((await handle.query(statusQuery)).stage, 'serving', 'still serving after longer than the idle TTL');

    const outcome: DeployOutcome = await handle.result();
    const idleFor = Date.now() - lastRequest;
    assert.equal(outcome.endedBy, 'idle');
    assert.ok(idleFor >= idleSeconds * 1000, `torn down ${idleFor} ms after the last request`);
    assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).processMarker), []);
    assert.match(suite.worker.output(), /Deployment idle: tears down soon unless a scoring request arrives/);
  });

  test('a TTL logs a warning ahead of its end', async () => {
    const name = uniqueName('warn');
    const handle = await suite.startDeploy(suite.deployInput({ name, ttlSeconds: 3 }));
    const outcome: DeployOutcome = await handle.result();
    assert.equal(outcome.endedBy, 'ttl');
    assert.match(suite.worker.output(), /Deployment ends soon: its TTL runs out/);
  });
});
