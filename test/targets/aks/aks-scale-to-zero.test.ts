/**
 * Scale to zero on aks, against the testbed (ARM double, real control plane with kwok nodes, the kubelet
 * stand-in running the scoring image, the cloud load balancer), every flag through `bin/inferctl.js`: the
 * front runs on the system pool and holds the public endpoint (HTTPS, the key checked there); after the quiet
 * period the scoring pods go and the GPU pool goes to 0 nodes (kept, not deleted); held requests are answered
 * after the wake brings the pool back to 1 node and the replica up; then back to 0 again; a caller without
 * the key gets 401 and wakes nothing; the janitor leaves the scaled-to-zero deployment alone; a rollout is
 * refused (not built behind the front yet), the deployment going on.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';

import { CoreV1Api } from '@kubernetes/client-node';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeployStatus } from '../../../src/shared/deploy-types';
import { aksSettingsFromEnv } from '../../../src/targets/aks/aks-config';
import { createAzureClients } from '../../../src/targets/aks/azure-clients';
import { FRONT_LABEL } from '../../../src/targets/aks/front-manifests';
import { kubeConfigFromYaml } from '../../../src/targets/aks/kubernetes-deployment';
import { endpointRequest } from '../../../src/targets/endpoint-request';
import { statusQuery } from '../../../workflows/deploy';
import { TEST_RESOURCE_GROUP } from '../../helpers/azure/aks-testbed';
import { aksClientTarget, clientSpec } from '../../helpers/aks-fixtures';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { runInferctl } from '../../helpers/cli';
import { recordFigure } from '../../helpers/reliability';
import { eventually, uniqueName } from '../../helpers/workers';

describe('aks scale to zero: the front on the system pool, the GPU pool 0 → 1 → 0', () => {
  const suite = aksSuite('aks-stz-tq');

  const inferctl = (args: string[]) => runInferctl(args, { env: suite.workerEnv(), timeoutMs: 300_000 });

  const core = () => kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig).makeApiClient(CoreV1Api);

  test('cold after the quiet period, held requests answered after the wake, cold again; the pool kept', async () => {
    const name = uniqueName('aks-stz');
    const namespace = `inferctl-${name}`;
    const cluster = `inferctl-${name}`;
    const green = suite.assets.samples.find((s) => s.label === 'green')!;
    const deployed = await inferctl([
      'deploy',
      '--model',
      suite.assets.modelPath,
      '--name',
      name,
      '--target',
      'aks',
      '--replicas',
      '1',
      '--min-replicas',
      '0',
      '--max-replicas',
      '1',
      '--scale-down-after',
      '4s',
      '--wake-timeout',
      '180s',
      '--ttl',
      '1h',
      '--smoke-sample',
      green.path,
      '--json',
      '--task-queue',
      suite.taskQueue,
    ]);
    assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout + suite.bed.kubelet.events.join('\n'));
    const first = (JSON.parse(deployed.stdout) as { status: DeployStatus }).status;
    assert.equal(first.scaleToZero?.state, 'warm');
    assert.equal(first.smoke?.predictions[0]?.label, 'green', 'the smoke query went through the front');
    const endpoint = first.endpoint!;
    assert.match(endpoint, /^https:\/\//, 'the front serves the deployment’s certificate');

    const target = aksClientTarget(suite); // this process reads the endpoint and the pool as the worker does
    const spec = clientSpec(name, { modelPath: suite.assets.modelPath, hold: { wakeTimeoutSeconds: 180 } });
    const azure = createAzureClients(aksSettingsFromEnv());
    const gpuPool = () => azure.containerService.agentPools.get(TEST_RESOURCE_GROUP, cluster, 'gpu');
    const gpuNodes = async () => (await suite.bed.nodeNames()).filter((n) => n.startsWith(`aks-gpu-`)).length;
    const status = () => suite.client.workflow.getHandle(deployWorkflowId(name)).query(statusQuery);

    // The front: one pod on a system-pool node, selected by the public Service; the scorers behind a ClusterIP.
    const frontPods = (await core().listNamespacedPod({ namespace, labelSelector: `${FRONT_LABEL}=${name}` })).items;
    assert.equal(frontPods.length, 1);
    const frontNode = await core().readNode({ name: frontPods[0]!.spec!.nodeName! });
    assert.equal(frontNode.metadata?.labels?.['kubernetes.azure.com/mode'], 'system');
    assert.equal(frontNode.metadata?.labels?.['kubernetes.azure.com/agentpool'], 'system');
    assert.equal(frontPods[0]!.spec?.containers[0]?.resources?.limits?.['nvidia.com/gpu'], undefined, 'no GPU');
    const service = await core().readNamespacedService({ name, namespace });
    assert.deepEqual(service.spec?.selector, { [FRONT_LABEL]: name });
    const scorers = await core().readNamespacedService({ name: `${name}-scorers`, namespace });
    assert.equal(scorers.spec?.type, 'ClusterIP');

    // Quiet: the scoring pod goes, then the GPU pool's node; the pool itself stays, at 0.
    const cold = () =>
      eventually(
        async () => {
          const s = await status();
          return s.scaleToZero?.state === 'cold' && s.replicas === 0 ? s : undefined;
        },
        `${name} cold`,
        120_000,
      );
    const atZero = await cold();
    assert.equal(atZero.endpoint, endpoint, 'the endpoint keeps its address');
    const poolAtZero = await gpuPool();
    assert.equal(poolAtZero.count, 0, 'the GPU pool at 0 nodes');
    assert.equal(poolAtZero.provisioningState, 'Succeeded');
    assert.equal(poolAtZero.mode, 'User');
    await eventually(async () => ((await gpuNodes()) === 0 ? true : undefined), 'the GPU node gone');
    assert.equal((await core().listNamespacedPod({ namespace, labelSelector: `app=${name}` })).items.length, 0);
    const human = await inferctl(['status', name]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /scale to zero: cold/);

    // A caller without the key is refused at the front and wakes nothing.
    const access = await target.endpointAccess({ ...spec, replicas: 0 });
    const image = fs.readFileSync(suite.assets.samples.find((s) => s.label === 'red')!.path);
    const post = (headers: Record<string, string>) =>
      endpointRequest(access, '/score', {
        method: 'POST',
        headers: { 'content-type': 'image/png', ...headers },
        body: image,
      });
    const refused = await post({ authorization: 'Bearer not-the-key' });
    assert.equal(refused.status, 401, refused.text);
    assert.equal((await target.gatewayCounts({ ...spec, replicas: 0 })).heldTotal, 0, 'nothing was held');

    // Three requests at zero: held while the pool gets its node and the replica starts, then all answered.
    const started = performance.now();
    const answers = await Promise.all(
      [0, 1, 2].map(async () => {
        const res = await post({ authorization: `Bearer ${access.apiKey}` });
        return { ...res, ms: performance.now() - started };
      }),
    );
    for (const a of answers) {
      assert.equal(a.status, 200, a.text);
      assert.equal((JSON.parse(a.text) as { predictions: { label: string }[] }).predictions[0]?.label, 'red');
    }
    const counts = await target.gatewayCounts({ ...spec, replicas: 1 });
    assert.equal(counts.heldTotal, 3, 'the three were held');
    assert.equal(counts.heldAnsweredTotal, 3);
    assert.equal(counts.heldRefusedTotal, 0);
    const woken = await eventually(
      async () => ((await status()).scaleToZero?.state === 'warm' ? status() : undefined),
      'the wake recorded',
    );
    assert.equal(woken.scaleToZero?.wakes, 1);
    const ms = Math.max(...answers.map((a) => a.ms));
    recordFigure({
      test: 'aks-scale-to-zero.test.ts',
      figure: 'aks testbed cold start: first request at 0 GPU nodes to its answer (pool 0 → 1, 3 requests held)',
      value: Math.round(ms),
      unit: 'ms',
    });

    // Quiet again: back to zero, the pool still there.
    await cold();
    assert.equal((await gpuPool()).count, 0);

    // The janitor (dry run) lists nothing of a deployment whose workflow runs, at zero replicas too.
    const janitor = await inferctl(['janitor', '--dry-run', '--task-queue', suite.taskQueue, '--json']);
    assert.equal(janitor.code, 0, janitor.stderr);
    assert.ok(!janitor.stdout.includes(name), `the janitor left ${name} alone: ${janitor.stdout}`);

    // A rollout is refused, saying what to do instead (its candidate is not built behind the front yet).
    const rollout = await inferctl(['rollout', name, '--model', suite.assets.modelPath]);
    assert.notEqual(rollout.code, 0, rollout.stdout);
    assert.match(
      rollout.stderr,
      /rollout of an aks deployment that scales to zero .* is not supported yet; deploy the new/,
    );
    assert.equal((await status()).stage, 'serving', 'the deployment goes on');

    const down = await inferctl(['teardown', name, '--json']);
    assert.equal(down.code, 0, down.stderr);
    assert.ok(!suite.bed.arm.clusterNames().includes(cluster), 'the cluster went with the teardown');
  });
});
