/**
 * The Kubernetes half of the aks target against a real kube-apiserver (no Azure): server-side apply is
 * repeatable, the API key Secret keeps its first key, a rollout becomes ready once the LoadBalancer has an
 * address, and a crash-looping or image-less pod turns into a fatal report after the grace period (a crash
 * loop's with the container's log tail, fetched through the apiserver from the node's kubelet).
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject, V1Pod } from '@kubernetes/client-node';

import {
  applyObjects,
  deleteNamespace,
  ensureApiKeySecret,
  isKubeNotFound,
  kubeConfigFromYaml,
  rolloutStatus,
} from '../../../src/targets/aks/kubernetes-deployment';
import { KubernetesRefusedError, kubernetesFailure } from '../../../src/targets/aks/kubernetes-errors';
import { FailureType } from '../../../src/shared/failure-types';
import { scoringManifests } from '../../../src/targets/aks/kubernetes-manifests';
import { testTlsFromEnv } from '../../helpers/azure/test-tls';
import { startControlPlane } from '../../helpers/kubernetes/control-plane';
import type { ControlPlane } from '../../helpers/kubernetes/control-plane';
import { eventually } from '../../helpers/workers';

describe('Kubernetes rollout of the scoring deployment', () => {
  let plane: ControlPlane;
  let kc: KubeConfig;
  let core: CoreV1Api;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-k8s-'));

  before(async () => {
    plane = await startControlPlane({ dir, tls: testTlsFromEnv() });
    kc = kubeConfigFromYaml(plane.kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    // One GPU per test's pod: a pod that crash-loops keeps its GPU until its namespace is gone.
    const resources = { cpu: '24', memory: '448Gi', pods: '110', 'nvidia.com/gpu': '4' };
    await core.createNode({
      body: {
        metadata: {
          name: 'gpu-0',
          annotations: { 'kwok.x-k8s.io/node': 'fake' },
          labels: { 'inferctl.dev/pool': 'gpu' },
        },
        spec: { taints: [{ key: 'sku', value: 'gpu', effect: 'NoSchedule' }] },
        status: { capacity: resources, allocatable: resources },
      },
    });
  });

  after(async () => {
    await plane?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function manifests(name: string) {
    return scoringManifests({
      namespace: `ns-${name}`,
      name,
      ownerId: `deploy-${name}`,
      image: 'registry.example/scorer:1',
      replicas: 1,
      topK: 3,
      servicePort: 8080,
    });
  }

  async function appliedAndAvailable(name: string) {
    const [namespace, secret, ...workload] = manifests(name);
    await applyObjects(kc, [namespace!]);
    const key = await ensureApiKeySecret(kc, secret!, () => 'first-key');
    assert.equal(await ensureApiKeySecret(kc, secret!, () => 'second-key'), key, 'the first key is kept');
    await applyObjects(kc, workload);
    await applyObjects(kc, workload); // server-side apply again: no conflict, same objects
    await eventually(
      async () => ((await rolloutStatus(kc, `ns-${name}`, name, 1, 60_000)).readyReplicas === 1 ? true : undefined),
      'the deployment to become available',
    );
  }

  test('becomes ready only once the LoadBalancer has an address', async () => {
    await appliedAndAvailable('ok');
    const before = await rolloutStatus(kc, 'ns-ok', 'ok', 1, 60_000);
    assert.equal(before.ready, false);
    assert.match(before.reason ?? '', /LoadBalancer has no external address/);

    const svc = await core.readNamespacedService({ name: 'ok', namespace: 'ns-ok' });
    await core.replaceNamespacedServiceStatus({
      name: 'ok',
      namespace: 'ns-ok',
      body: { ...svc, status: { loadBalancer: { ingress: [{ ip: '20.1.2.3' }] } } },
    });
    const ready = await rolloutStatus(kc, 'ns-ok', 'ok', 1, 60_000);
    assert.equal(ready.ready, true);
    assert.deepEqual(ready.loadBalancer, { address: '20.1.2.3', port: 8080 });
    assert.equal(await deleteNamespace(kc, 'ns-ok'), true);
    assert.equal(await deleteNamespace(kc, 'ns-ok'), false, 'deleting again finds nothing: done');
  });

  for (const reason of ['CrashLoopBackOff', 'ImagePullBackOff'] as const) {
    test(`a pod in ${reason} is reported, and fatal after the grace period`, async () => {
      const name = reason.toLowerCase();
      await appliedAndAvailable(name);
      const pods = await core.listNamespacedPod({ namespace: `ns-${name}`, labelSelector: `app=${name}` });
      const pod = pods.items[0]!;
      // What the kubelet reports for such a pod (kwok plays the kubelet and leaves this state alone).
      const status: V1Pod['status'] = {
        ...pod.status,
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'False' }],
        containerStatuses: [
          {
            name: 'scorer',
            image: 'registry.example/scorer:1',
            imageID: '',
            ready: false,
            restartCount: 4,
            state: { waiting: { reason, message: `back-off restarting failed container (${reason})` } },
          },
        ],
      };
      // What the container printed before it exited, as the kubelet (kwok here) serves it.
      const crash = `Error: cannot load /models/model.onnx (${name}): protobuf parsing failed`;
      const at = new Date().toISOString();
      fs.writeFileSync(plane.containerLogFile, `${at} stdout F starting scorer\n${at} stderr F ${crash}\n`);
      await core.replaceNamespacedPodStatus({
        name: pod.metadata!.name!,
        namespace: `ns-${name}`,
        body: { ...pod, status },
      });

      const lenient = await eventually(async () => {
        const r = await rolloutStatus(kc, `ns-${name}`, name, 1, 10 * 60_000);
        return r.reason?.includes(reason) ? r : undefined;
      }, `the ${reason} to be reported`);
      assert.equal(lenient.fatal, false, 'within the grace period it is only reported');
      const strict = await rolloutStatus(kc, `ns-${name}`, name, 1, 0);
      assert.equal(strict.fatal, true);
      assert.match(strict.reason ?? '', new RegExp(`pod ${name}-[a-z0-9-]+: ${reason}`));
      assert.match(strict.reason ?? '', reason === 'ImagePullBackOff' ? /--attach-acr/ : /exits on start/);
      if (reason === 'CrashLoopBackOff') {
        assert.ok(strict.reason?.includes(`--- log tail ---\nstarting scorer\n${crash}`), strict.reason);
      } else {
        assert.doesNotMatch(strict.reason ?? '', /log tail/, 'an image that never ran has no log');
      }
      assert.equal(await deleteNamespace(kc, `ns-${name}`), true);
    });
  }

  test('the API server’s 401, 403 and 422 become permanent errors that say what to do; a 404 does not', async () => {
    const refused = async (call: Promise<unknown>, doing: string) => {
      const err = await call.then(
        () => assert.fail('the API server accepted the call'),
        (e: unknown) => e,
      );
      return kubernetesFailure(err, doing);
    };

    const stranger = kubeConfigFromYaml(plane.kubeconfig.replace(/token: \S+/, 'token: not-a-token-of-this-cluster'));
    const unauthorised = await refused(rolloutStatus(stranger, 'ns-x', 'x', 1, 1000), 'reading the rollout');
    assert.ok(unauthorised instanceof KubernetesRefusedError, String(unauthorised));
    assert.equal(unauthorised.type, FailureType.KubernetesUnauthorized);
    assert.equal(unauthorised.status, 401);
    assert.match(
      unauthorised.message,
      /rejected inferctl's credentials while reading the rollout \(401.*Cluster User Role/,
    );

    const nobody = kubeConfigFromYaml(plane.unprivilegedKubeconfig);
    const [namespace] = manifests('rbac');
    const forbidden = await refused(applyObjects(nobody, [namespace!]), 'applying the namespace');
    assert.ok(forbidden instanceof KubernetesRefusedError, String(forbidden));
    assert.equal(forbidden.type, FailureType.KubernetesForbidden);
    assert.match(forbidden.message, /RBAC forbids .* \(403: .*"nobody".*\)\. Give the worker's identity/);

    const [ns, , ...workload] = manifests('invalid');
    await applyObjects(kc, [ns!]);
    const deployment = workload.find((o) => o.kind === 'Deployment') as KubernetesObject & {
      spec: { replicas: number };
    };
    const invalid = await refused(
      applyObjects(kc, [{ ...deployment, spec: { ...deployment.spec, replicas: -1 } } as KubernetesObject]),
      'applying the Deployment',
    );
    assert.ok(invalid instanceof KubernetesRefusedError, String(invalid));
    assert.equal(invalid.type, FailureType.KubernetesInvalidObject);
    assert.match(invalid.message, /refused an object while applying the Deployment \(422: .*replicas.*\)/);
    assert.equal(await deleteNamespace(kc, 'ns-invalid'), true);

    // Not found is not a refusal: callers decide what it means ("not there yet", "already gone").
    const missing = await refused(
      kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: 'none', namespace: 'default' }),
      'reading a Secret',
    );
    assert.ok(!(missing instanceof KubernetesRefusedError) && isKubeNotFound(missing));
  });
});
