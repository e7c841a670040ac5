/**
 * A mirror rollout's bake on aks survives its front's restart (#25 §2): `inferctl rollout --mirror` through
 * bin/inferctl.js against the doubles (ARM, the real API server and controller manager, the kubelet stand-in
 * running the front as a process). Mid-bake the front's pod is deleted through the API server; its
 * ReplicaSet starts a new one, whose comparison counts from zero under a new epoch. The candidate (BGR for an
 * RGB model) disagrees on the red and blue samples, sent BEFORE the restart only, and agrees on the green ones
 * sent after it, enough to be promoted on their own: the bake adds up both runs and keeps it off, naming a
 * pre-restart disagreement.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { CoreV1Api } from '@kubernetes/client-node';

import { FRONT_LABEL } from '../../../src/targets/aks/front-manifests';
import { kubeConfigFromYaml } from '../../../src/targets/aks/kubernetes-deployment';
import { endpointRequest } from '../../../src/targets/endpoint-request';
import type { EndpointAccess } from '../../../src/targets/target';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { aksEndpointAccess, assertNamespaceGone } from '../../helpers/aks-fixtures';
import { mirrorFlags, runInferctl } from '../../helpers/cli';
import { recordReliability } from '../../helpers/reliability';
import { eventually, uniqueName } from '../../helpers/workers';

const MIN_PAIRS = 30;
const BEFORE = 12;
const AFTER = 40;

/** POSTs each sample in turn through the endpoint, paced; the statuses seen. */
async function send(access: EndpointAccess, samples: Buffer[], count: number, tag: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await endpointRequest(access, '/score', {
      method: 'POST',
      body: samples[i % samples.length]!,
      headers: {
        authorization: `Bearer ${access.apiKey}`,
        'content-type': 'image/jpeg',
        'x-request-id': `${tag}-${i}`,
      },
    });
    statuses.push(res.status);
    await delay(25);
  }
  return statuses;
}

describe('inferctl rollout --mirror on aks: the front pod deleted mid-bake', () => {
  const suite = aksSuite('aks-mirror-restart-tq');
  let dir: string;
  const inferctl = (args: string[]) => runInferctl(args, { env: suite.workerEnv(), timeoutMs: 600_000 });

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-aks-mirror-restart-'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  test('the candidate that disagreed before the restart is kept off; both runs are added up', async () => {
    const name = uniqueName('aks-mirror-rs');
    const namespace = `inferctl-${name}`;
    const sample = (label: string) => fs.readFile(suite.assets.samples.find((s) => s.label === label)!.path);
    const disagreeing = [await sample('red'), await sample('blue')];
    const agreeing = [await sample('green')];
    const deployed = await inferctl([
      'deploy',
      '--model',
      suite.assets.modelPath,
      '--name',
      name,
      '--target',
      'aks',
      '--gpu-nodes',
      '2',
      '--ttl',
      '1h',
      '--smoke-sample',
      suite.assets.samples.find((s) => s.label === 'red')!.path,
      '--task-queue',
      suite.taskQueue,
    ]);
    let keptOff = false;
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
      const access = await aksEndpointAccess(suite, name, { aks: { gpuNodeCount: 2 } });
      const core = kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig).makeApiClient(CoreV1Api);
      const frontPods = async () =>
        (await core.listNamespacedPod({ namespace, labelSelector: `${FRONT_LABEL}=${name}` })).items.filter(
          (p) => !p.metadata?.deletionTimestamp,
        );
      const bgr = path.join(dir, 'bgr.json');
      await fs.writeFile(bgr, JSON.stringify({ channelOrder: 'BGR' }));

      const rollout = inferctl([
        'rollout',
        name,
        '--model',
        suite.assets.modelPath,
        '--preprocess',
        bgr,
        ...mirrorFlags({ minAgreement: 0.99, minPairs: MIN_PAIRS, bake: '75s' }),
      ]);
      // The bake has begun once `status` shows the comparison (the endpoint's Service is on the front then).
      const pairsShown = async () => {
        const s = await inferctl(['status', name]);
        const m = /comparison: (\d+) pair\(s\) compared[^\n]*/.exec(s.stdout);
        return m ? { pairs: Number(m[1]), line: m[0] } : undefined;
      };
      await eventually(pairsShown, 'the comparison in `inferctl status`', 300_000);

      // 1. Before the restart: red and blue, on which the candidate disagrees; read by the bake before it.
      assert.deepEqual(await send(access, disagreeing, BEFORE, 'before'), Array(BEFORE).fill(200));
      const before = await eventually(
        async () => ((await pairsShown())?.pairs ?? 0) >= BEFORE || undefined,
        'the bake to read the pre-restart pairs',
      );
      assert.ok(before);
      const [old] = await frontPods();
      assert.ok(old, 'the front runs');

      // 2. The front's pod deleted: its ReplicaSet starts another, which counts from zero.
      await core.deleteNamespacedPod({ name: old.metadata!.name!, namespace });
      await eventually(
        async () => {
          const pods = await frontPods();
          const fresh = pods.find((p) => p.metadata!.name !== old.metadata!.name);
          const ready = fresh?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
          return ready ? fresh : undefined;
        },
        'a new front pod to be ready',
        120_000,
      );
      // The endpoint answers through the new front (a request in the handover may be refused: retried here).
      await eventually(async () => {
        const res = await endpointRequest(access, '/healthz', { method: 'GET' }).catch(() => undefined);
        return res?.status === 200 || undefined;
      }, 'the endpoint to answer through the new front');

      // 3. After it: green only, on which the candidate agrees.
      assert.deepEqual(await send(access, agreeing, AFTER, 'after'), Array(AFTER).fill(200));
      const shown = await eventually(async () => {
        const s = await pairsShown();
        return s && s.pairs >= BEFORE + MIN_PAIRS ? s : undefined;
      }, '`inferctl status` to count both runs');
      assert.match(shown.line, /added up over 2 runs of the mirror's process/);

      // 4. The verdict covers both runs: kept off naming a pre-restart disagreement.
      const rolled = await rollout;
      const out = rolled.stderr + rolled.stdout;
      assert.notEqual(rolled.code, 0, out);
      const kept = /Kept off: the candidate agreed on (\d+) of (\d+) pair\(s\)/.exec(out);
      assert.ok(kept, out);
      assert.match(out, /\[before-\d+\] top label "(red|blue)" vs "(blue|red)"/);
      assert.match(out, /added up over 2 runs of the mirror's process \(it restarted 1 time\(s\)/);
      const [agreed, pairs] = [Number(kept[1]), Number(kept[2])];
      assert.ok(pairs >= BEFORE + MIN_PAIRS, `the final count (${pairs}) holds the pre-restart pairs`);
      assert.ok(agreed >= MIN_PAIRS, `the post-restart pairs alone (${agreed} agreeing) would have been promoted`);
      keptOff = true;
    } finally {
      const down = await inferctl(['teardown', name, '--json']);
      assert.equal(down.code, 0, down.stderr);
      recordReliability({
        test: 'aks rollout --mirror: the front pod deleted mid-bake (pre-restart disagreements kept the candidate off)',
        faultsInjected: 1,
        survived: keptOff,
      });
    }
    await assertNamespaceGone(suite, namespace);
  });
});
