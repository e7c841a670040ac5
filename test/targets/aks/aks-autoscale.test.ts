/**
 * Autoscaling on aks, against the testbed (ARM double, real control plane with kwok nodes, the kubelet
 * stand-in running the scoring image with a slow model, the cloud load balancer), every flag through
 * `bin/inferctl.js`: under a load loop the replicas go 1 → 3 and the GPU pool grows 1 → 3 nodes first; after
 * the loop both go back to 1, the nodes once their pods are gone; no request fails; each decision says what
 * it did to the pool. With the subscription's quota too low the pool is held at its node count, the decision
 * says "quota" and why, the deployment keeps serving. `scale --min-replicas --max-replicas` moves replicas and
 * pool into new bounds. `--max-gpu-nodes` is refused where it cannot hold.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import type { DeployStatus } from '../../../src/shared/deploy-types';
import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeploymentSpec } from '../../../src/shared/target-types';
import { aksSettingsFromEnv } from '../../../src/targets/aks/aks-config';
import { AksTarget } from '../../../src/targets/aks/aks-target';
import { createAzureClients } from '../../../src/targets/aks/azure-clients';
import { endpointRequest } from '../../../src/targets/endpoint-request';
import { statusQuery } from '../../../workflows/deploy';
import { TEST_RESOURCE_GROUP } from '../../helpers/azure/aks-testbed';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { recordFigure } from '../../helpers/reliability';
import { buildSlowCnn } from '../../helpers/slow-model';
import { eventually, uniqueName } from '../../helpers/workers';

const BIN = path.resolve(__dirname, '..', '..', '..', '..', 'bin', 'inferctl.js');

describe('aks autoscale: replicas follow the load, the GPU pool grows and shrinks with them', () => {
  const suite = aksSuite('aks-as-tq');
  let slowModel: string;

  before(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-aks-autoscale-'));
    slowModel = path.join(dir, 'slow.onnx');
    // Tens of milliseconds per image: requests queue at one replica under the load loop.
    fs.writeFileSync(slowModel, buildSlowCnn({ layers: 12, channels: 64 }));
  });

  function inferctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [BIN, ...args],
        { timeout: 300_000, env: suite.workerEnv() },
        (err, stdout, stderr) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
        },
      );
    });
  }

  test('--max-gpu-nodes: refused below what --min-replicas need, without --target-concurrency, off aks', async () => {
    const base = ['deploy', '--model', suite.assets.modelPath, '--name', uniqueName('aks-mgn'), '--dry-run'];
    const below = await inferctl([
      ...base,
      '--target',
      'aks',
      '--min-replicas',
      '2',
      '--max-replicas',
      '4',
      '--target-concurrency',
      '2',
      '--max-gpu-nodes',
      '1',
    ]);
    assert.equal(below.code, 2, below.stderr);
    assert.match(
      below.stderr,
      /--max-gpu-nodes 1 is fewer than --min-replicas 2 need \(2 node\(s\) of Standard_NC4as_T4_v3/,
    );
    const alone = await inferctl([...base, '--target', 'aks', '--max-gpu-nodes', '2']);
    assert.equal(alone.code, 2, alone.stderr);
    assert.match(alone.stderr, /--max-gpu-nodes go with --target-concurrency/);
    const local = await inferctl([
      ...base,
      '--target',
      'local',
      '--max-replicas',
      '2',
      '--target-concurrency',
      '2',
      '--max-gpu-nodes',
      '2',
    ]);
    assert.equal(local.code, 2, local.stderr);
    assert.match(local.stderr, /--max-gpu-nodes is for --target aks/);
    const notANumber = await inferctl([...base, '--target', 'aks', '--max-gpu-nodes', 'two']);
    assert.notEqual(notANumber.code, 0);
    assert.match(notANumber.stderr, /--max-gpu-nodes must be a whole number ≥ 1/);
  });

  test('1 → 3 replicas and 1 → 3 GPU nodes under a load loop, back to 1 and 1 after it; a low quota holds the pool', async () => {
    const name = uniqueName('aks-as');
    const cluster = `inferctl-${name}`;
    const green = suite.assets.samples.find((s) => s.label === 'green')!;
    const deployed = await inferctl([
      'deploy',
      '--model',
      slowModel,
      '--name',
      name,
      '--target',
      'aks',
      '--min-replicas',
      '1',
      '--max-replicas',
      '3',
      '--target-concurrency',
      '1.5',
      '--max-gpu-nodes',
      '3',
      '--autoscale-period',
      '1s',
      '--scale-up-window',
      '0s',
      '--scale-down-window',
      '4s',
      '--ttl',
      '1h',
      '--smoke-sample',
      green.path,
      '--json',
      '--task-queue',
      suite.taskQueue,
    ]);
    assert.equal(deployed.code, 0, deployed.stderr);
    const first = (JSON.parse(deployed.stdout) as { status: DeployStatus }).status;
    assert.equal(first.replicas, 1);
    assert.equal(first.autoscale?.maxGpuNodes, 3);

    Object.assign(process.env, suite.bed.workerEnv()); // this process reads the endpoint and the pool as the worker does
    const settings = aksSettingsFromEnv();
    const target = new AksTarget(settings);
    const spec: DeploymentSpec = {
      name,
      target: 'aks',
      ownerId: deployWorkflowId(name),
      modelPath: slowModel,
      replicas: 1,
      topK: 5,
    };
    const azure = createAzureClients(settings);
    const poolCount = async () =>
      (await azure.containerService.agentPools.get(TEST_RESOURCE_GROUP, cluster, 'gpu')).count;
    const status = () => suite.client.workflow.getHandle(deployWorkflowId(name)).query(statusQuery);
    const at = (replicas: number, timeoutMs = 240_000) =>
      eventually(
        async () => {
          const s = await status();
          return s.replicas === replicas ? s : undefined;
        },
        `${name} at ${replicas} replica(s)`,
        timeoutMs,
      );
    assert.equal(await poolCount(), 1);

    const access = await target.endpointAccess(spec);
    const image = fs.readFileSync(green.path);
    const codes = new Map<number, number>();
    const load = (clients: number) => {
      let stop = false;
      const one = async () => {
        while (!stop) {
          const res = await endpointRequest(access, '/score', {
            method: 'POST',
            headers: { authorization: `Bearer ${access.apiKey}`, 'content-type': 'image/png' },
            body: image,
          }).catch((err: unknown) => ({ status: 0, text: String(err) }));
          codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
        }
      };
      const running = Promise.all(Array.from({ length: clients }, one));
      return async () => {
        stop = true;
        await running;
      };
    };

    // Four clients in a closed loop: about four in flight, 4 / 1.5 per replica → 3 replicas, 3 GPU nodes.
    const started = performance.now();
    let stopLoad = load(4);
    let up: DeployStatus;
    try {
      up = await at(3);
      recordFigure({
        test: 'aks-autoscale.test.ts',
        figure: 'aks testbed: load loop start to 3 replicas ready on 3 GPU nodes (pool grown 1 → 3 first)',
        value: Math.round(performance.now() - started),
        unit: 'ms',
      });
      assert.equal(await poolCount(), 3, 'the pool grew to 3 nodes');
    } finally {
      await stopLoad();
    }
    // Each scale up grew the pool first (the status keeps the last ten decisions; the steps keep every fit).
    const grew = up.autoscale!.decisions.filter((d) => d.to > d.from);
    assert.ok(grew.length > 0, JSON.stringify(up.autoscale?.decisions));
    for (const d of grew) {
      assert.ok(d.nodes && d.nodes.from < d.nodes.to && d.nodes.to >= d.to && !d.nodes.held, JSON.stringify(d));
      assert.ok(d.reading.samples > 0 && d.reading.meanInFlight > 1.5, JSON.stringify(d));
      assert.match(d.reason, /; scale up [12] → [23]; GPU pool [12] → [23] node\(s\)$/);
    }
    const fits = up.steps.filter((s) => s.step === 'gpu-pool-grow');
    assert.match(fits[0]?.detail ?? '', /^1 → [23] GPU node\(s\) of at most 3$/, JSON.stringify(up.steps));
    assert.ok(fits.every((s) => s.ok === true));
    assert.equal(up.gpuNodes, 3, 'the ledger bills the pool’s 3 nodes');

    // After the loop: replicas back to 1, then the pool, once the pods are gone.
    const down = await at(1);
    const shrunk = await eventually(
      async () => {
        const s = await status();
        return s.autoscale?.gpuPool?.nodes === 1 ? s : undefined;
      },
      'the pool back to 1 node',
      120_000,
    );
    assert.equal(await poolCount(), 1);
    const back = shrunk.autoscale!.decisions.find((d) => d.to < d.from && d.nodes)!;
    assert.ok(back, JSON.stringify(shrunk.autoscale?.decisions));
    assert.match(back.reason, /scale down .*; GPU pool [23] → 1 node\(s\)/);
    assert.ok(down.autoscale!.scaledDown >= 1);
    assert.equal(shrunk.gpuNodes, 1);
    // The ledger: the pool's nodes billed as they came and went (one line per count), 1 node open now.
    const poolLines = shrunk.ledger!.lines.filter((l) => /GPU pool/.test(l.item));
    assert.deepEqual(
      poolLines.filter((l) => l.until === undefined).map((l) => l.quantity),
      [1],
      JSON.stringify(poolLines),
    );
    assert.ok(
      poolLines.some((l) => l.quantity === 3),
      JSON.stringify(poolLines),
    );
    assert.deepEqual([...codes.keys()], [200], `every answer 200: ${JSON.stringify([...codes])}`);

    // The quota too low for one more node: the pool is held at 1, the decision says why, it keeps serving.
    const t4 = suite.bed.arm.quotas['standardNCASv3_T4Family']!;
    const limit = t4.limit;
    t4.limit = t4.used;
    try {
      stopLoad = load(4);
      let held: DeployStatus;
      try {
        held = await eventually(
          async () => {
            const s = await status();
            return s.autoscale?.gpuPool?.held ? s : undefined;
          },
          'the pool held by the quota',
          120_000,
        );
        assert.equal(held.replicas, 1, 'no replica without a GPU node');
      } finally {
        await stopLoad();
      }
      const refused = held.autoscale!.decisions.find((d) => d.nodes?.held)!;
      assert.match(refused.reason, /; held at 1 GPU node\(s\): quota: QuotaExceeded .*Current Limit/);
      assert.equal(refused.to, 1);
      assert.equal(held.stage, 'serving');
      assert.equal(held.lastError, undefined, 'a quota refusal is a decision, not a failure');
      assert.equal(await poolCount(), 1);
      const human = await inferctl(['status', name]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /GPU pool: 1 of at most 3 node\(s\).*held at 1 node\(s\): quota/);
      assert.match(human.stdout, /held at 1 GPU node\(s\): quota/);
    } finally {
      t4.limit = limit;
    }
    assert.deepEqual([...codes.keys()], [200], `every answer 200: ${JSON.stringify([...codes])}`);
    // The pods' own gauge (what the autoscaler read) is back to zero once every answer is in.
    await eventually(
      async () => ((await target.gatewayCounts(spec)).inFlight === 0 ? true : undefined),
      'nothing in flight at the pods',
      10_000,
    );

    // `scale` sets the bounds as on local: pinned at 2, the pool grows to 2 nodes first, the decision says so.
    const pinned = await inferctl(['scale', name, '--min-replicas', '2', '--max-replicas', '2']);
    assert.equal(pinned.code, 0, pinned.stderr);
    const two = await status();
    assert.equal(two.replicas, 2);
    assert.equal(await poolCount(), 2);
    assert.match(
      two.autoscale!.decisions.at(-1)!.reason,
      /^bounds set to 2-2 replicas: 1 → 2; GPU pool 1 → 2 node\(s\)$/,
    );

    const gone = await inferctl(['teardown', name, '--json']);
    assert.equal(gone.code, 0, gone.stderr);
    assert.ok(!suite.bed.arm.clusterNames().includes(cluster), 'the cluster went with the teardown');
  });
});
