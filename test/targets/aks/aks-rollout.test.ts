/**
 * Rollout, scale and the idle TTL on the aks target, against the testbed (real control plane, the kubelet
 * stand-in running the scoring servers as processes, the load balancer double, the API server reaching the
 * pods through the pod network): a good version replaces the old one under a load loop with no failed
 * request, the candidate a second Deployment sharing the endpoint by replica ratio and counted through the
 * pods' own /metrics; a bad one (a wrong smoke answer, reached through the candidate's own load balancer) is
 * rolled back with the old one serving throughout; scale up and down within the GPU pool, refused past it;
 * an endpoint with no scoring requests is torn down by its idle TTL.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

import { deployWorkflowId, v2ModelName } from '../../../src/shared/deploy-types';
import type { DeployInput, DeployStatus } from '../../../src/shared/deploy-types';
import { FailureType } from '../../../src/shared/failure-types';
import type { AksTarget } from '../../../src/targets/aks/aks-target';
import { canaryReplicas } from '../../../src/targets/aks/candidate-deployment';
import { kubeConfigFromYaml } from '../../../src/targets/aks/kubernetes-deployment';
import { endpointRequest } from '../../../src/targets/endpoint-request';
import type { EndpointAccess } from '../../../src/targets/target';
import { deploy, rolloutUpdate, scaleUpdate, statusQuery, teardownUpdate } from '../../../workflows/deploy';
import { aksClientTarget, clientSpec, endpointLoad } from '../../helpers/aks-fixtures';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { eventually, uniqueName } from '../../helpers/workers';

type DeployHandle = WorkflowHandle<typeof deploy>;

/** Requests through the endpoint, two at a time, until stopped (endpointLoad): every one answered "red"? */
function loadLoop(access: EndpointAccess, image: Buffer) {
  const stop = new AbortController();
  const done = endpointLoad(access, [{ label: 'red', body: image }], stop.signal);
  return {
    stop: () => {
      stop.abort();
      return done;
    },
  };
}

describe('rollout, scale and idle TTL on the aks target', () => {
  const suite = aksSuite('aks-rollout-tq');
  let scratch: string;
  let target: AksTarget;
  before(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-aks-rollout-'));
    target = aksClientTarget(suite);
  });
  after(() => fs.rm(scratch, { recursive: true, force: true }));

  const kc = () => kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig);
  const red = () => suite.assets.samples.find((s) => s.label === 'red')!;

  function start(input: Omit<DeployInput, 'modelPath' | 'target'> & Partial<DeployInput>): Promise<DeployHandle> {
    return suite.client.workflow.start(deploy, {
      taskQueue: suite.taskQueue,
      workflowId: deployWorkflowId(input.name),
      args: [
        {
          modelPath: suite.assets.modelPath,
          target: 'aks',
          timings: { readyTimeoutSeconds: 120, readinessPollSeconds: 0.2 },
          ...input,
        } satisfies DeployInput,
      ],
    });
  }

  async function serving(handle: DeployHandle): Promise<DeployStatus> {
    return eventually(
      async () => {
        const s = await handle.query(statusQuery);
        if (s.stage === 'failed') throw new Error(`deployment failed: ${s.lastError}`);
        return s.stage === 'serving' ? s : undefined;
      },
      'the AKS deployment to serve',
      240_000,
    );
  }

  /** A deployment of one replica on a pool of two GPUs (room for the candidate), and how a client reaches it. */
  async function deployed(name: string) {
    const handle = await start({
      name,
      replicas: 1,
      ttlSeconds: null,
      smoke: { samplePath: red().path, expectedLabel: 'red' },
      aks: { gpuNodeCount: 2 },
    });
    const status = await serving(handle);
    const access = await target.endpointAccess(clientSpec(name, { aks: { gpuNodeCount: 2 } }));
    return { handle, status, access, image: await fs.readFile(red().path) };
  }

  async function scoringDeployments(name: string): Promise<Array<{ name: string; image?: string; replicas?: number }>> {
    const list = await kc()
      .makeApiClient(AppsV1Api)
      .listNamespacedDeployment({ namespace: `inferctl-${name}` });
    return list.items.map((d) => ({
      name: d.metadata!.name!,
      image: d.spec?.template.spec?.containers[0]?.image,
      replicas: d.spec?.replicas,
    }));
  }

  test('the canary share is a replica ratio', () => {
    assert.equal(canaryReplicas(1, 50), 1); // 1 of 2 ready pods
    assert.equal(canaryReplicas(4, 20), 1); // 1 of 5 = 20 %
    assert.equal(canaryReplicas(4, 10), 1); // at least one: 20 %, rounded up from 0.44
    assert.equal(canaryReplicas(3, 50), 3);
    assert.equal(canaryReplicas(3, 100), 3);
  });

  test('a good version replaces the old one under load; scale up and down; teardown leaves nothing', async (t) => {
    const name = uniqueName('aks-roll');
    const { handle, status, access, image } = await deployed(name);
    // The same network under another graph name: a new file, a new digest, a new image, the same answers.
    const bytes = Buffer.from(await fs.readFile(suite.assets.modelPath));
    const at = bytes.indexOf('inferctl-tiny-colour-cnn');
    assert.ok(at > 0, 'the graph name is in the model file');
    bytes.write('inferctl-tiny-colour-cn2', at);
    const v2 = path.join(scratch, `${name}-v2.onnx`);
    await fs.writeFile(v2, bytes);

    const load = loadLoop(access, image);
    const result = await handle.executeUpdate(rolloutUpdate, {
      args: [{ modelPath: v2, canaryPercent: 50, bakeSeconds: 4 }],
    });
    const answers = await load.stop();
    t.diagnostic(`aks rollout under load: ${answers.requests} requests, ${result.bake.requests} to the canary`);
    assert.notEqual(result.modelDigest, result.previousModelDigest);
    assert.ok(result.bake.requests > 0, `the canary answered part of the load (${result.bake.requests})`);
    assert.equal(result.bake.errors, 0);
    assert.ok(answers.requests > 20, `the load loop ran (${answers.requests} requests)`);
    assert.deepEqual(answers.wrong, [], 'every request during the rollout was answered, correctly');
    const after = await handle.query(statusQuery);
    assert.notEqual(after.imageRef, status.imageRef, 'a new image');
    assert.deepEqual(
      await scoringDeployments(name),
      [{ name, image: after.imageRef, replicas: 1 }],
      'one Deployment, on the new image: the candidate is gone',
    );
    assert.equal(after.endpoint, status.endpoint, 'the same endpoint');
    // The Open Inference Protocol name follows the model's file name, on the replicas and in the status.
    assert.equal(status.v2ModelName, v2ModelName(suite.assets.modelPath));
    assert.equal(after.v2ModelName, v2ModelName(v2));
    const v2Headers = { authorization: `Bearer ${access.apiKey}` };
    const model = await endpointRequest(access, `/v2/models/${after.v2ModelName}`, {
      method: 'GET',
      headers: v2Headers,
    });
    assert.equal(model.status, 200, model.text);
    const old = await endpointRequest(access, `/v2/models/${status.v2ModelName}`, {
      method: 'GET',
      headers: v2Headers,
    });
    assert.equal(old.status, 404, 'the old name is gone with the old version');
    assert.deepEqual(
      after.versions?.map((v) => [path.basename(v.modelPath), v.until === undefined]),
      [
        [path.basename(suite.assets.modelPath), false],
        [path.basename(v2), true],
      ],
    );
    const service = await kc()
      .makeApiClient(CoreV1Api)
      .listNamespacedService({ namespace: `inferctl-${name}` });
    assert.deepEqual(
      service.items.map((s) => s.metadata?.name),
      [name],
      'the candidate’s load balancer is gone',
    );

    // Scale within the GPU pool (two GPUs), each returning once the replicas are ready; past it, refused.
    const scaleLoad = loadLoop(access, image);
    const up = await handle.executeUpdate(scaleUpdate, { args: [{ replicas: 2 }] });
    assert.equal(up.replicas, 2);
    const readyUp = await kc()
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name, namespace: `inferctl-${name}` });
    assert.equal(readyUp.status?.availableReplicas, 2, 'both replicas available when scale returned');
    assert.equal(suite.bed.kubelet.readyEndpoints(`inferctl-${name}`, { app: name }).length, 2, 'two servers run');
    await assert.rejects(handle.executeUpdate(scaleUpdate, { args: [{ replicas: 3 }] }), (err: unknown) => {
      assert.ok(err instanceof WorkflowUpdateFailedError);
      assert.match(String(err.cause?.message), /3 replicas need 3 GPUs .* has 2\./);
      return true;
    });
    const down = await handle.executeUpdate(scaleUpdate, { args: [{ replicas: 1 }] });
    assert.equal(down.previousReplicas, 2);
    const scaleAnswers = await scaleLoad.stop();
    t.diagnostic(`aks scale 1 → 2 → 1 under load: ${scaleAnswers.requests} requests`);
    assert.deepEqual(scaleAnswers.wrong, [], 'no request failed while scaling');
    await eventually(
      async () => ((await scoringDeployments(name))[0]?.replicas === 1 ? true : undefined),
      'one replica',
    );

    await handle.executeUpdate(teardownUpdate, { args: [{}] });
    await handle.result();
    assert.ok(!(await suite.bed.namespaces()).includes(`inferctl-${name}`), 'the namespace is gone');
    assert.deepEqual(await scoringDeployments(name), []);
  });

  test('a version with a wrong smoke answer is rolled back; the old one serves throughout; teardown mid-bake', async (t) => {
    const name = uniqueName('aks-rollback');
    const { handle, status, access, image } = await deployed(name);
    // The same model with its labels reversed: it answers, with the wrong label.
    const labels = (await fs.readFile(suite.assets.labelsPath, 'utf8')).trim().split('\n').reverse();
    const badLabels = path.join(scratch, `${name}-labels.txt`);
    await fs.writeFile(badLabels, labels.join('\n') + '\n');

    const load = loadLoop(access, image);
    await assert.rejects(
      handle.executeUpdate(rolloutUpdate, {
        args: [{ modelPath: suite.assets.modelPath, labelsPath: badLabels, canaryPercent: 50, bakeSeconds: 3 }],
      }),
      (err: unknown) => {
        assert.ok(err instanceof WorkflowUpdateFailedError, `a WorkflowUpdateFailedError, got ${String(err)}`);
        const failure = err.cause;
        assert.ok(failure instanceof ApplicationFailure);
        assert.equal(failure.type, FailureType.RolloutFailed);
        assert.match(
          failure.message,
          /rolled back \(The candidate's smoke query expected top label "red" but it answered/,
        );
        return true;
      },
    );
    const answers = await load.stop();
    t.diagnostic(`aks rollback under load: ${answers.requests} requests`);
    assert.ok(answers.requests > 5, `the load loop ran (${answers.requests} requests)`);
    assert.deepEqual(answers.wrong, [], 'the old version answered every request');
    const after = await handle.query(statusQuery);
    assert.equal(after.stage, 'serving');
    assert.equal(after.imageRef, status.imageRef);
    assert.deepEqual(await scoringDeployments(name), [{ name, image: status.imageRef, replicas: 1 }]);
    assert.match(after.versions?.[1]?.ended ?? '', /^rolled back: The candidate's smoke query/);

    // A teardown during a bake rolls that rollout back, then removes both Deployments with the namespace.
    const rolling = handle
      .executeUpdate(rolloutUpdate, {
        args: [{ modelPath: suite.assets.modelPath, canaryPercent: 50, bakeSeconds: 300 }],
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    await eventually(
      async () => ((await scoringDeployments(name)).length === 2 ? true : undefined),
      'the candidate Deployment beside the serving one',
      120_000,
    );
    await eventually(
      async () => ((await handle.query(statusQuery)).rollout?.stage.startsWith('baking') ? true : undefined),
      'the bake',
      120_000,
    );
    await handle.executeUpdate(teardownUpdate, { args: [{ reason: 'test' }] });
    const failed = await rolling;
    assert.ok(failed instanceof WorkflowUpdateFailedError);
    assert.match(String(failed.cause?.message), /rolled back \(a teardown was requested\)/);
    await handle.result();
    assert.ok(!(await suite.bed.namespaces()).includes(`inferctl-${name}`), 'the namespace is gone');
    assert.deepEqual(await scoringDeployments(name), []);
  });

  test('--idle-ttl: read from every pod’s counter, an endpoint without scoring requests is torn down', async () => {
    const name = uniqueName('aks-idle');
    const idleSeconds = 6;
    const handle = await start({
      name,
      replicas: 2,
      ttlSeconds: null,
      idleTtlSeconds: idleSeconds,
      smoke: { samplePath: red().path, expectedLabel: 'red' },
    });
    const first = await serving(handle);
    assert.match(first.endsBecause ?? '', /without a scoring request/);
    const access = await target.endpointAccess(clientSpec(name, { replicas: 2 }));
    const image = await fs.readFile(red().path);
    const busyUntil = Date.now() + (idleSeconds + 4) * 1000;
    let lastRequest = 0;
    while (Date.now() < busyUntil) {
      const res = await endpointRequest(access, '/score', {
        method: 'POST',
        body: image,
        headers: { authorization: `Bearer ${access.apiKey}` },
      });
      assert.equal(res.status, 200);
      lastRequest = Date.now();
      await new Promise((r) => setTimeout(r, 700));
    }
    assert.equal((await handle.query(statusQuery)).stage, 'serving', 'still serving after longer than the idle TTL');
    const counts = await target.requestCount(clientSpec(name, { replicas: 2 }));
    assert.equal(counts.replicasRead, 2, 'both pods read through the API server');
    assert.ok(counts.total >= 10, `the pods counted the requests (${counts.total})`);

    const outcome = await handle.result();
    assert.equal(outcome.endedBy, 'idle');
    const idleFor = Date.now() - lastRequest;
    assert.ok(idleFor >= idleSeconds * 1000, `torn down ${idleFor} ms after the last request`);
    assert.ok(!(await suite.bed.namespaces()).includes(`inferctl-${name}`), 'the namespace is gone');
  });
});
