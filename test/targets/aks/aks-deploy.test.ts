/**
 * The deploy workflow with `--target aks`, end to end: the real Temporal dev server and control worker,
 * the real Azure SDK clients and DefaultAzureCredential against the local ARM endpoint, a real Kubernetes
 * control plane where kwok nodes appear with the cluster, and a smoke query that reaches a real scoring
 * server through the LoadBalancer address Kubernetes reports. Teardown leaves no cluster, no namespace
 * and no node behind; the endpoint key never enters workflow history.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, test } from 'node:test';

import { CoreV1Api } from '@kubernetes/client-node';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeployInput } from '../../../src/shared/deploy-types';
import { kubeConfigFromYaml, readApiKey } from '../../../src/targets/aks/kubernetes-deployment';
import { endpointRequest } from '../../../src/targets/endpoint-request';
import { deploy, statusQuery, teardownSignal } from '../../../workflows/deploy';
import { TEST_REGISTRY, TEST_RESOURCE_GROUP } from '../../helpers/azure/aks-testbed';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { eventually, uniqueName } from '../../helpers/workers';

describe('deploy workflow on the aks target', () => {
  const suite = aksSuite('aks-tq');
  const { taskQueue } = suite;

  function start(input: Omit<DeployInput, 'modelPath' | 'target'> & Partial<DeployInput>) {
    return suite.client.workflow.start(deploy, {
      taskQueue,
      workflowId: deployWorkflowId(input.name),
      args: [
        {
          modelPath: suite.assets.modelPath,
          target: 'aks',
          timings: { readyTimeoutSeconds: 90, readinessPollSeconds: 0.2 },
          ...input,
        } satisfies DeployInput,
      ],
    });
  }

  test('provisions a GPU cluster, builds in the registry, serves through the LoadBalancer, tears everything down', async () => {
    const name = uniqueName('aks');
    const red = suite.assets.samples.find((s) => s.label === 'red')!;
    const handle = await start({
      name,
      replicas: 2,
      ttlSeconds: 600,
      smoke: { samplePath: red.path, expectedLabel: 'red' },
    });

    const serving = await eventually(
      async () => {
        const s = await handle.query(statusQuery);
        if (s.stage === 'failed') throw new Error(`deployment failed: ${s.lastError}`);
        return s.stage === 'serving' ? s : undefined;
      },
      'the AKS deployment to serve',
      180_000,
    );
    assert.equal(serving.smoke?.predictions[0]?.label, 'red', 'a real scoring server answered through the LB');
    // A public endpoint is HTTPS by default, named by the DNS label its certificate was made for.
    const fqdn = new RegExp(`^inferctl-${name}-[0-9a-f]{8}\\.eastus\\.cloudapp\\.azure\\.com$`);
    assert.equal(serving.tls?.source, 'deployment-ca');
    assert.match(serving.tls.hostname, fqdn);
    assert.equal(serving.endpoint, `https://${serving.tls.hostname}:${new URL(serving.endpoint ?? 'x:').port}`);
    const kc = kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig);
    const tlsSecret = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: `${name}-tls`, namespace: `inferctl-${name}` });
    assert.equal(tlsSecret.type, 'kubernetes.io/tls');
    const caPem = Buffer.from(tlsSecret.data!['ca.crt']!, 'base64').toString();
    const tlsKey = Buffer.from(tlsSecret.data!['tls.key']!, 'base64').toString();
    assert.equal(serving.tls.fingerprint, new crypto.X509Certificate(caPem).fingerprint256, 'the CLI shows this CA');
    assert.equal(serving.tls.caPem, caPem);
    const frontend = suite.bed.lb.frontends.frontends.get(`inferctl-${name}/${name}`);
    assert.deepEqual(
      { kind: frontend?.kind, fqdn: frontend?.fqdn },
      { kind: 'public', fqdn: serving.tls.hostname },
      'a public IP named by the Service’s DNS label',
    );
    // Through the load balancer (L4: TLS passes through), the CA pins the server; without it, no handshake.
    const endpoint = serving.endpoint;
    const pinned = { endpoint, connectTo: frontend!.ip, tls: { ca: caPem, servername: serving.tls.hostname } };
    assert.equal((await endpointRequest(pinned, '/healthz', { method: 'GET' })).status, 200);
    await assert.rejects(endpointRequest({ endpoint, connectTo: frontend!.ip }, '/healthz', { method: 'GET' }), {
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    const lbPort = new URL(endpoint).port;
    await assert.rejects(
      endpointRequest({ endpoint: `http://${frontend!.ip}:${lbPort}` }, '/healthz', { method: 'GET' }),
      'no plain HTTP on the public IP',
    );
    assert.match(serving.imageRef ?? '', new RegExp(`^inferctltests\\.azurecr\\.io/inferctl-scorer:[0-9a-f]{64}$`));
    assert.match(serving.apiKeyRef ?? '', new RegExp(`secret inferctl-${name}/${name}-api-key`));

    const key = await readApiKey(kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig), `inferctl-${name}`, name);
    assert.ok(key && key.length >= 32, 'the endpoint key is in the Kubernetes Secret');

    // The cluster carries the owner tag, a system pool and a tainted GPU pool, and has kwok nodes.
    const clusterName = `inferctl-${name}`;
    assert.deepEqual(suite.bed.arm.clusterTags(clusterName)?.['inferctl-owner'], deployWorkflowId(name));
    const nodes = await suite.bed.nodeNames();
    assert.equal(nodes.filter((n) => n.startsWith('aks-gpu-')).length, 2, 'one GPU node per replica');
    // It served because inferctl granted the cluster's kubelet identity AcrPull on the registry.
    assert.ok(
      suite.bed.arm.roles
        .list()
        .some(
          (a) =>
            a.scope.endsWith(`/registries/${TEST_REGISTRY}`) &&
            /7f951dda-4ed3-4680-a7ca-43fe172d538d$/.test(a.roleDefinitionId),
        ),
      'an AcrPull assignment on the registry',
    );
    assert.ok(
      suite.bed.kubelet.events.every((e) => !e.startsWith('ImagePullBackOff')),
      suite.bed.kubelet.events.join('\n'),
    );
    assert.equal(nodes.filter((n) => n.startsWith('aks-system-')).length, 1);

    // Wire protocol: every ARM call carried an api-version; creation was a long-running operation.
    const armCalls = suite.bed.arm.requests.filter((r) => r.path.startsWith('/subscriptions/'));
    assert.ok(armCalls.length > 5);
    assert.deepEqual(
      armCalls.filter((r) => !r.apiVersion),
      [],
      'no ARM call without api-version',
    );
    assert.ok(
      armCalls.some(
        (r) => r.method === 'PUT' && r.path.endsWith(`/managedClusters/${clusterName}`) && r.status === 201,
      ),
    );
    assert.ok(
      armCalls.some((r) => r.path.includes('/operations/')),
      'the poller followed Azure-AsyncOperation',
    );
    assert.ok(
      armCalls.some((r) => r.path.endsWith('/scheduleRun')),
      'the image was built by ACR Tasks',
    );
    assert.ok(
      suite.bed.arm.requests.some((r) => r.path === '/msi/token' && r.status === 200),
      'DefaultAzureCredential got its token from the managed-identity endpoint',
    );

    await handle.signal(teardownSignal, { reason: 'test done' });
    const outcome = await handle.result();
    assert.equal(outcome.stage, 'done');
    assert.ok(outcome.teardownRemoved?.includes(`cluster ${clusterName}`), outcome.teardownRemoved?.join(', '));
    assert.ok(outcome.teardownRemoved?.includes(`namespace inferctl-${name}`));
    assert.deepEqual(suite.bed.arm.clusterNames(), [], 'the endpoint ends with zero clusters');
    // Each long step reported what it was doing (heartbeat details `{ progress }`, and the worker log).
    const log = suite.worker.output();
    for (const progress of [
      new RegExp(`creating cluster ${clusterName}: running, \\d`),
      new RegExp(`build run \\w+ in registry inferctltests: (Queued|Running|Succeeded), `),
      new RegExp(`applying namespace inferctl-${name}: API key Secret, Deployment \\(2 replicas\\), Service`),
      new RegExp(`deleting namespace inferctl-${name}`),
      new RegExp(`deleting cluster ${clusterName} \\(Succeeded\\)`),
    ]) {
      assert.match(log, progress, 'the worker reported its progress');
    }
    assert.ok(!(await suite.bed.namespaces()).includes(`inferctl-${name}`));
    assert.deepEqual(
      (await suite.bed.nodeNames()).filter((n) => n.startsWith('aks-')),
      [],
      'the nodes went with the cluster',
    );
    assert.ok(
      armCalls.length < suite.bed.arm.requests.length &&
        suite.bed.arm.requests.some((r) => r.method === 'DELETE' && r.path.endsWith(`/managedClusters/${clusterName}`)),
    );

    // The key lives in the Kubernetes Secret only: it is never in the workflow's history.
    const history = JSON.stringify(await suite.client.workflow.getHandle(deployWorkflowId(name)).fetchHistory());
    assert.ok(!history.includes(key), 'the endpoint key is not in the workflow history');
    const keyBody = tlsKey.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, '');
    assert.ok(!history.replace(/\\n/g, '').includes(keyBody.slice(0, 40)), 'nor is the TLS private key');
  });

  test('a second deployment of the same model reuses the image its digest names', async () => {
    const name = uniqueName('aks-reuse');
    const handle = await start({ name, replicas: 1, ttlSeconds: 1 });
    const first = await handle.result();
    assert.equal(first.stage, 'done');
    const builds = suite.bed.arm.requests.filter((r) => r.path.endsWith('/scheduleRun')).length;

    const again = await start({ name: uniqueName('aks-reuse'), replicas: 1, ttlSeconds: 1 });
    const second = await again.result();
    assert.equal(second.imageRef, first.imageRef);
    assert.equal(suite.bed.arm.requests.filter((r) => r.path.endsWith('/scheduleRun')).length, builds, 'no new build');
    assert.deepEqual(suite.bed.arm.clusterNames(), []);
  });

  test('an existing cluster is deployed into and left standing; only the namespace is removed', async () => {
    const registry = `${TEST_RESOURCE_GROUP}/${TEST_REGISTRY}`;
    await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'team-gpu', { team: 'research' }, 1, [registry]);
    const name = uniqueName('aks-existing');
    const outcome = await (await start({ name, replicas: 1, ttlSeconds: 1, aks: { cluster: 'team-gpu' } })).result();
    assert.equal(outcome.stage, 'done');
    assert.deepEqual(outcome.teardownRemoved, [`namespace inferctl-${name}`]);
    assert.deepEqual(suite.bed.arm.clusterNames(), ['team-gpu'], 'the cluster we did not create is still there');
    assert.ok(!(await suite.bed.namespaces()).includes(`inferctl-${name}`));

    await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'cpu-only', {});
    const handle = await start({
      name: uniqueName('aks-cpu'),
      replicas: 1,
      ttlSeconds: 1,
      aks: { cluster: 'cpu-only' },
    });
    const err = await handle.result().then(
      () => assert.fail('a cluster without a GPU pool must be refused'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.match(String(err.cause?.message), /Cluster cpu-only has no GPU node pool\. Add one \(az aks nodepool add/);

    // A GPU cluster whose kubelet identity may not pull from the registry: refused before anything is applied.
    await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'team-noacr', {}, 1);
    const noAcr = await (
      await start({ name: uniqueName('aks-noacr'), replicas: 1, ttlSeconds: 1, aks: { cluster: 'team-noacr' } })
    )
      .result()
      .then(
        () => assert.fail('a cluster without AcrPull must be refused'),
        (e: unknown) => e,
      );
    assert.ok(noAcr instanceof WorkflowFailedError);
    assert.match(
      String(noAcr.cause?.message),
      /Cluster team-noacr cannot pull from registry inferctltests.*az aks update -n team-noacr -g inferctl-tests --attach-acr \/subscriptions\/.*\/registries\/inferctltests/,
    );
    assert.deepEqual(suite.bed.arm.clusterNames().sort(), ['cpu-only', 'team-gpu', 'team-noacr']);
  });

  test('replicas beyond the GPU pool are refused before anything is deployed, and the cluster is deleted', async () => {
    const name = uniqueName('aks-gpus');
    const handle = await start({ name, replicas: 3, ttlSeconds: 60, aks: { gpuNodeCount: 1 } });
    const err = await handle.result().then(
      () => assert.fail('the deployment must fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.match(err.cause.message, /3 replicas need 3 GPUs \(one each\), but the GPU pool .* has 1/);
    assert.match(err.cause.message, /Teardown completed/);
    assert.ok(!suite.bed.arm.clusterNames().includes(`inferctl-${name}`), 'the cluster it created is deleted');
  });
});
