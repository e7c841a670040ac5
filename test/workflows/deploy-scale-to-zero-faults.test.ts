/**
 * Scale to zero (local target) under faults and over runs, with real processes on the run's dev server:
 * - the control worker running the deploy workflow is SIGKILLed while a wake is in flight: a new worker
 *   finishes the wake, and every request held meanwhile is answered (200) or refused with 503 and
 *   Retry-After; none hangs, none is dropped without an answer;
 * - a deployment that scales to zero continues as new (a small history bound): the next run carries the
 *   state (cold or warm, the wakes counted, the last wake) and wakes on the next request as the first did.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, test } from 'node:test';

import type { DeployStatus } from '../../src/shared/deploy-types';
import { readGatewayCounts } from '../../src/targets/local/gateway-counts';
import type { deploy } from '../../workflows/deploy';
import { statusQuery, teardownSignal } from '../../workflows/deploy';
import { workflowSuite } from '../helpers/workflow-suite';
import { eventually, uniqueName } from '../helpers/workers';

interface Answer {
  status: number;
  retryAfter: string | null;
  body: string;
}

describe('scale to zero: a worker killed during a wake; continue-as-new', () => {
  const suite = workflowSuite('stz-faults', { control: false });

  async function score(endpoint: string, key: string, image: Buffer, timeoutMs: number): Promise<Answer> {
    const res = await fetch(`${endpoint}/score`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'image/png' },
      body: image,
      signal: AbortSignal.timeout(timeoutMs), // a hang fails the test here
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
  }

  function startStz(name: string, extra: Parameters<typeof suite.deployInput>[0] = {}) {
    const red = suite.sample('red');
    return suite.startDeploy(
      suite.deployInput({
        name,
        ttlSeconds: 600,
        scaleToZero: { maxReplicas: 1, scaleDownAfterSeconds: 2, wakeTimeoutSeconds: 60 },
        smoke: { samplePath: red.path, expectedLabel: 'red' },
        timings: { heartbeatTimeoutSeconds: 3, readinessPollSeconds: 0.2 },
        ...extra,
      }),
    );
  }

  const coldIn = (handle: { query: (q: typeof statusQuery) => Promise<DeployStatus> }) =>
    eventually(
      async () => {
        const s = await handle.query(statusQuery);
        return s.scaleToZero?.state === 'cold' && s.replicas === 0 ? s : undefined;
      },
      'the deployment cold',
      60_000,
    );

  test('a control worker SIGKILLed during a wake: the wake completes on restart; held requests answered', async () => {
    const first = await suite.startControlWorker();
    const name = uniqueName('stz-kill');
    const handle = await startStz(name);
    const cold = await coldIn(handle);
    const key = (await fs.readFile(cold.apiKeyRef!, 'utf8')).trim();
    const image = await fs.readFile(suite.sample('red').path);

    const held = Array.from({ length: 5 }, () => score(cold.endpoint!, key, image, 120_000));
    // Kill the worker the moment the workflow says it is waking.
    const waking = await eventually(
      async () => {
        const s = await handle.query(statusQuery);
        if (s.scaleToZero?.state === 'warm') throw new Error('the wake finished before the worker could be killed');
        return s.scaleToZero?.state === 'waking' ? s : undefined;
      },
      'the wake to start',
      30_000,
    );
    await first.kill();
    assert.equal(waking.scaleToZero?.wakes, 0);
    await suite.startControlWorker();

    const answers = await Promise.all(held);
    for (const a of answers) {
      assert.ok(
        a.status === 200 || (a.status === 503 && Number(a.retryAfter) > 0),
        `answered 200, or 503 with Retry-After (got ${a.status}, retry-after ${a.retryAfter})`,
      );
    }
    const warm = await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.scaleToZero?.state === 'warm' && s.replicas === 1 ? s : undefined;
    }, 'the wake completed by the new worker');
    assert.equal(warm.scaleToZero?.wakes, 1, 'one wake, finished once');
    const counts = await readGatewayCounts(cold.endpoint!);
    assert.equal(counts.heldTotal, 5);
    assert.equal(counts.heldAnsweredTotal + counts.heldRefusedTotal, 5, 'every held request got its answer');
    assert.equal(counts.held, 0, 'none left waiting');
    assert.equal((await score(cold.endpoint!, key, image, 30_000)).status, 200, 'warm after the restart');
    await handle.signal(teardownSignal, { reason: 'test done' });
    assert.equal((await handle.result()).stage, 'done');
  });

  test('continue-as-new carries cold/warm, the wakes and the last wake; the next run wakes as the first', async () => {
    await suite.startControlWorker();
    const name = uniqueName('stz-can');
    const handle = await startStz(name, { historyEventsPerRun: 50 });
    const image = await fs.readFile(suite.sample('red').path);
    const runOf = async () => (await handle.describe()).runId;

    // Wake and quiet again until the run that woke has continued as new.
    let before: DeployStatus | undefined;
    let wokeIn: string | undefined;
    for (let cycle = 0; ; cycle++) {
      assert.ok(cycle < 8, 'continued as new within eight wakes');
      const cold = await coldIn(handle);
      if (wokeIn && (await runOf()) !== wokeIn) {
        before = cold;
        break;
      }
      const key = (await fs.readFile(cold.apiKeyRef!, 'utf8')).trim();
      const answer = await score(cold.endpoint!, key, image, 60_000);
      assert.equal(
        answer.status,
        200,
        `cycle ${cycle}: answered after a wake (${answer.body}; ${JSON.stringify(await handle.query(statusQuery))})`,
      );
      await eventually(
        async () => ((await handle.query(statusQuery)).scaleToZero?.state === 'warm' ? true : undefined),
        'warm',
      );
      wokeIn = await runOf();
    }
    const s = before.scaleToZero!;
    assert.equal(s.state, 'cold', 'carried cold');
    assert.ok(s.wakes >= 1, `the wakes carried (${s.wakes})`);
    assert.ok(s.lastWakeAt && s.lastWakeMs! > 0, 'the last wake carried');
    const firstRun = suite.client.workflow.getHandle<typeof deploy>(handle.workflowId, wokeIn);
    const ended = ((await firstRun.fetchHistory()).events ?? []).at(-1);
    assert.ok(ended?.workflowExecutionContinuedAsNewEventAttributes, 'the run that woke continued as new');

    // The continued run, cold, wakes on its next request.
    const key = (await fs.readFile(before.apiKeyRef!, 'utf8')).trim();
    assert.equal((await score(before.endpoint!, key, image, 60_000)).status, 200);
    const after = await eventually(async () => {
      const now = await handle.query(statusQuery);
      return now.scaleToZero?.state === 'warm' && now.scaleToZero.wakes > s.wakes ? now : undefined;
    }, 'the next wake, counted on from the carried state');
    assert.equal(after.endpoint, before.endpoint, 'the same endpoint');
    await handle.signal(teardownSignal, { reason: 'test done' });
    assert.equal((await handle.result()).stage, 'done');
  });
});
