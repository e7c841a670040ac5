/**
 * A mirror rollout's bake survives its gateway's crash (#25 §2): `inferctl rollout --mirror --compare
 * --min-agreement --min-pairs` through bin/inferctl.js, the local gateway SIGKILLed mid-bake (found by the pid
 * and start time the local target recorded and the marker it was started with, never by a command line).
 * The candidate is the demo model with the wrong preprocessing (BGR for an RGB model): it disagrees on the red
 * and blue samples, sent BEFORE the kill only, and agrees on the green ones sent after it, enough of them to
 * be promoted on their own. The bake starts the gateway again on its address, the gateway resumes the counts,
 * and the candidate is kept off naming a pre-kill disagreement, the final count holding the pre-kill pairs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { readJsonFile } from '../../src/json-file';
import { mirrorRefusal } from '../../src/shared/mirror-types';
import type { MirrorReport } from '../../src/shared/mirror-types';
import { mirrorReportFile } from '../../src/targets/local/gateway';
import type { GatewayRecord } from '../../src/targets/local/gateway-process';
import { LocalLayout } from '../../src/targets/local/layout';
import { findOwnProcesses, findProcessesByMarker, isSameProcess } from '../../src/targets/local/processes';
import { localEndpoint, mirrorFlags, runInferctl } from '../helpers/cli';
import { recordReliability } from '../helpers/reliability';
import { demoAssets, eventually, startControlWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

const inferctl = (args: string[], timeoutMs = 600_000) => runInferctl(args, { timeoutMs });
const MIN_PAIRS = 30;
const BEFORE = 12;
const AFTER = 40;

/** POSTs each sample in turn, paced so the mirror's queue never fills; the statuses seen. */
async function send(endpoint: string, key: string, samples: Buffer[], count: number, tag: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${endpoint}/score`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg', 'x-request-id': `${tag}-${i}` },
      body: samples[i % samples.length],
    });
    await res.arrayBuffer();
    statuses.push(res.status);
    await delay(25);
  }
  return statuses;
}

describe('inferctl rollout --mirror: the gateway SIGKILLed mid-bake', () => {
  const taskQueue = uniqueName('cli-mirror-restart-tq');
  let worker: WorkerProcess;
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-cli-mirror-restart-'));
    worker = await startControlWorker(taskQueue);
  });
  after(async () => {
    await worker?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('the candidate that disagreed before the kill is kept off; the final count holds the pre-kill pairs', async () => {
    const assets = await demoAssets();
    const sample = (label: string) => fs.readFile(assets.samples.find((s) => s.label === label)!.path);
    const disagreeing = [await sample('red'), await sample('blue')];
    const agreeing = [await sample('green')];
    const name = uniqueName('mirror-kill');
    const layout = new LocalLayout(name);
    const deployed = await inferctl([
      'deploy',
      '--model',
      assets.modelPath,
      '--ttl',
      '30m',
      '--name',
      name,
      '--task-queue',
      taskQueue,
    ]);
    let leaked = -1;
    let keptOff = false;
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
      const endpoint = localEndpoint(deployed.stdout);
      const key = (await fs.readFile(layout.apiKeyFile, 'utf8')).trim();
      const bgr = path.join(dir, 'bgr.json');
      await fs.writeFile(bgr, JSON.stringify({ channelOrder: 'BGR' }));

      const rollout = inferctl([
        'rollout',
        name,
        '--model',
        assets.modelPath,
        '--preprocess',
        bgr,
        ...mirrorFlags({ minAgreement: 0.99, minPairs: MIN_PAIRS, bake: '30s' }),
      ]);
      // The bake has begun once the gateway's routes carry the mirror.
      const mirrorId = await eventually(async () => {
        const routes = await readJsonFile<{ mirror?: { id: string } }>(layout.routesFile);
        return routes?.mirror?.id;
      }, 'the mirror to be routed');

      // 1. Before the kill: red and blue, on which the candidate disagrees; every copy compared and written.
      assert.deepEqual(await send(endpoint, key, disagreeing, BEFORE, 'before'), Array(BEFORE).fill(200));
      const reportFile = mirrorReportFile(layout.routesFile);
      const beforeKill = await eventually(async () => {
        const r = await readJsonFile<MirrorReport>(reportFile);
        return r?.id === mirrorId && r.pairs + r.dropped === BEFORE ? r : undefined;
      }, 'the pre-kill pairs to be written');
      assert.ok(beforeKill.pairs > 0 && beforeKill.agreed === 0, JSON.stringify(beforeKill));
      assert.ok(beforeKill.epoch, 'the report names its epoch');

      // 2. SIGKILL the gateway: the one the local target recorded, checked to be this deployment's own process.
      const gateway = (await readJsonFile<{ gateway?: GatewayRecord }>(layout.replicasFile))?.gateway;
      assert.ok(gateway, 'replicas.json records the gateway');
      const own = await findOwnProcesses(layout.processMarker);
      assert.ok(
        own.some(
          (p) => p.pid === gateway.pid && (gateway.startTime === undefined || p.startTime === gateway.startTime),
        ),
        `pid ${gateway.pid} is one of the deployment's own processes`,
      );
      process.kill(gateway.pid, 'SIGKILL');
      await eventually(
        async () => ((await isSameProcess(gateway.pid, gateway.startTime)) ? undefined : true),
        'the gateway to die',
      );

      // 3. The bake's next reading starts it again on the same address; it resumes the counts.
      const restarted = await eventually(
        async () => {
          const g = (await readJsonFile<{ gateway?: GatewayRecord }>(layout.replicasFile))?.gateway;
          if (!g || g.pid === gateway.pid) return undefined;
          return (await fetch(`${endpoint}/healthz`)).ok ? g : undefined;
        },
        'the gateway to be started again on its address',
        30_000,
      );
      // 4. After the kill: green only, on which the candidate agrees.
      assert.deepEqual(await send(endpoint, key, agreeing, AFTER, 'after'), Array(AFTER).fill(200));
      const afterKill = await eventually(async () => {
        const r = await readJsonFile<MirrorReport>(reportFile);
        return r && r.pairs + r.dropped >= beforeKill.pairs + beforeKill.dropped + AFTER ? r : undefined;
      }, 'the post-kill pairs to be written');
      assert.equal(afterKill.epoch, beforeKill.epoch, 'the gateway started again resumed the counts of the file');
      const status = await inferctl(['status', name], 60_000);
      const shown = /comparison: (\d+) pair\(s\) compared/.exec(status.stdout);
      assert.ok(shown, status.stdout);
      assert.ok(Number(shown[1]) >= beforeKill.pairs, `status counts the pre-kill pairs too: ${shown[0]}`);

      // 5. The verdict covers both: kept off naming a pre-kill disagreement.
      const rolled = await rollout;
      const out = rolled.stderr + rolled.stdout;
      assert.notEqual(rolled.code, 0, out);
      const kept = /Kept off: the candidate agreed on (\d+) of (\d+) pair\(s\)/.exec(out);
      assert.ok(kept, out);
      const [agreed, pairs] = [Number(kept[1]), Number(kept[2])];
      assert.match(out, /\[before-\d+\] top label "(red|blue)" vs "(blue|red)"/);
      assert.ok(pairs >= beforeKill.pairs + MIN_PAIRS, `the final count (${pairs}) holds the pre-kill pairs`);
      assert.equal(agreed, pairs - beforeKill.pairs, 'every post-kill pair agreed, every pre-kill one not');
      // The post-kill pairs alone would have promoted it: what a count from zero would have done.
      const postOnly = { ...afterKill, pairs: pairs - beforeKill.pairs, agreed, disagreements: [] };
      assert.equal(
        mirrorRefusal(postOnly, { percent: 100, compare: { mode: 'top1' }, minAgreement: 0.99, minPairs: MIN_PAIRS }),
        undefined,
      );
      keptOff = true;

      // The endpoint kept its address and serves the old version; the candidate is gone.
      const answer = await fetch(`${endpoint}/score`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg' },
        body: disagreeing[0],
      });
      assert.equal(answer.status, 200);
      assert.equal(((await answer.json()) as { predictions: Array<{ label: string }> }).predictions[0]!.label, 'red');
      assert.deepEqual(await findProcessesByMarker(layout.candidateMarker), [], 'the candidate is gone');
      assert.ok(await isSameProcess(restarted.pid, restarted.startTime), 'the gateway started again still serves');
    } finally {
      const down = await inferctl(['teardown', name]);
      assert.equal(down.code, 0, down.stderr);
      leaked = (await findProcessesByMarker(layout.processMarker)).length;
      recordReliability({
        test: 'rollout --mirror: the local gateway SIGKILLed mid-bake (pre-kill disagreements kept the candidate off)',
        faultsInjected: 1,
        survived: keptOff,
        resourcesLeaked: leaked,
      });
    }
    assert.equal(leaked, 0, 'no process is left after teardown');
  });
});
