/**
 * The kubelet stand-in against a real kube-apiserver (kwok schedules, the stand-in runs the container from
 * the image its build context's Dockerfile assembles), and the old defects it catches: each test runs the
 * old manifest or context, which fails as it would on a real cluster, next to the fixed one, which serves.
 *   (a) the key Secret mounted 0644 root:root (no defaultMode, no fsGroup) while the image runs as 1000;
 *   (b) a model without embedded labels whose labels sidecar was not in the build context;
 *   (c) an image that only worked with the host's node_modules (a dependency missing from its lock);
 * and a pull the registry refuses, which never starts the container; a read-only root refuses writes into the image.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';

import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { onnx } from 'onnx-proto';

import { makeColourJpeg } from '../../../src/demo/sample-images';
import { LABELS_KEY, labelsSidecarPath } from '../../../src/model/metadata';
import { buildContext, DOCKERFILE, servedWith } from '../../../src/targets/aks/build-context';
import {
  applyObjects,
  deleteNamespace,
  ensureApiKeySecret,
  kubeConfigFromYaml,
  rolloutStatus,
} from '../../../src/targets/aks/kubernetes-deployment';
import { scoringManifests } from '../../../src/targets/aks/kubernetes-manifests';
import { readTar } from '../../helpers/azure/arm-endpoint';
import { testTlsFromEnv } from '../../helpers/azure/test-tls';
import { startControlPlane } from '../../helpers/kubernetes/control-plane';
import type { ControlPlane } from '../../helpers/kubernetes/control-plane';
import { Kubelet } from '../../helpers/kubernetes/kubelet';
import type { PullVerdict } from '../../helpers/kubernetes/kubelet';
import { demoAssets, eventually } from '../../helpers/workers';

const KEY = 'k'.repeat(40);

describe('kubelet stand-in: the image as its Dockerfile builds it, run as a kubelet would', () => {
  let plane: ControlPlane;
  let kc: KubeConfig;
  let kubelet: Kubelet;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-kubelet-'));
  fs.chmodSync(dir, 0o711); // the container's user (1000) reaches its image and volumes below it
  const images = new Map<string, Map<string, Buffer>>();
  let pullVerdict: PullVerdict = { ok: true };
  let modelPath: string;

  before(async () => {
    modelPath = (await demoAssets()).modelPath;
    plane = await startControlPlane({ dir: path.join(dir, 'k8s'), tls: testTlsFromEnv() });
    kc = kubeConfigFromYaml(plane.kubeconfig);
    const resources = { cpu: '24', memory: '448Gi', pods: '110', 'nvidia.com/gpu': '8' };
    await kc.makeApiClient(CoreV1Api).createNode({
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
    kubelet = new Kubelet({
      kc,
      dir: path.join(dir, 'kubelet'),
      manages: (image) => image.startsWith('registry.test/'),
      imageContext: (image) => Promise.resolve(images.get(image)),
      canPull: () => Promise.resolve(pullVerdict),
      backoffMs: 500,
      logFile: plane.containerLogFile,
    }).start();
  });

  after(async () => {
    await kubelet?.stop();
    await plane?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Pushes the context to the test registry as `registry.test/<name>:1`. */
  function push(name: string, files: Map<string, Buffer>): string {
    const image = `registry.test/${name}:1`;
    images.set(image, files);
    return image;
  }

  async function contextFiles(model: string, served = { modelPath: model }): Promise<Map<string, Buffer>> {
    const context = await buildContext(model, await servedWith(served));
    return readTar(zlib.gunzipSync(context.archive));
  }

  /** Applies the manifests (changed by `edit`, as an old version would have them) and returns the pod. */
  async function deploy(name: string, image: string, edit: (d: V1Deployment) => void = () => undefined) {
    const [namespace, secret, deployment, service] = scoringManifests({
      namespace: `ns-${name}`,
      name,
      ownerId: `deploy-${name}`,
      image,
      replicas: 1,
      topK: 3,
      servicePort: 8080,
    });
    edit(deployment as V1Deployment);
    await applyObjects(kc, [namespace!]);
    await ensureApiKeySecret(kc, secret!, () => KEY);
    await applyObjects(kc, [deployment!, service!] as KubernetesObject[]);
    return eventually(async () => {
      const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: `ns-${name}` });
      return pods.items[0];
    }, `a pod of ${name}`);
  }

  async function containerStatus(pod: V1Pod, until: (cs: NonNullable<V1Pod['status']>) => boolean) {
    let last: unknown;
    return eventually(
      async () => {
        const current = await kc
          .makeApiClient(CoreV1Api)
          .readNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace! });
        last = current.status;
        return current.status && until(current.status) ? current.status : undefined;
      },
      `pod ${pod.metadata!.name} to reach the expected state`,
      90_000,
    ).catch(async (err: unknown) => {
      const events = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: pod.metadata!.namespace! });
      const said = events.items.map((e) => `${e.reason}: ${e.message}`).join('\n');
      throw new Error(
        `${String(err)}\nlast status: ${JSON.stringify(last)}\nevents:\n${said}\nkubelet: ${kubelet.events.join('\n')}`,
      );
    });
  }

  const crashLooping = (s: NonNullable<V1Pod['status']>) =>
    s.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff' &&
    (s.containerStatuses[0].restartCount ?? 0) >= 2;

  async function score(name: string): Promise<{ label: string }[]> {
    const [endpoint] = kubelet.readyEndpoints(`ns-${name}`, { app: name });
    assert.ok(endpoint, 'a ready endpoint');
    const res = await fetch(`http://${endpoint}/score`, {
      method: 'POST',
      body: await makeColourJpeg('cyan'),
      headers: { authorization: `Bearer ${KEY}` },
    });
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { predictions: { label: string }[] }).predictions;
  }

  /** Until the stand-in's readiness probe passes (kwok's own first status says ready too: not enough). */
  async function serving(name: string): Promise<void> {
    await eventually(
      () => Promise.resolve(kubelet.readyEndpoints(`ns-${name}`, { app: name }).length > 0 || undefined),
      `${name} to pass its readiness probe`,
      90_000,
    );
  }

  test('(a) the key Secret: 0644 root-owned (old manifest) crash-loops as USER 1000; 0440 + fsGroup serves', async () => {
    const image = push('scorer', await contextFiles(modelPath));
    const old = await deploy('old-key', image, (d) => {
      const spec = d.spec!.template.spec!;
      delete spec.securityContext;
      delete spec.volumes!.find((v) => v.name === 'api-key')!.secret!.defaultMode;
    });
    const status = await containerStatus(old, crashLooping);
    const last = status.containerStatuses![0]!.lastState!.terminated!;
    assert.equal(last.exitCode, 1);
    assert.match(last.message ?? '', /API key file \S+\/volumes\/api-key\/api-key is readable by others \(mode 644\)/);
    const report = await rolloutStatus(kc, 'ns-old-key', 'old-key', 1, 0);
    assert.equal(report.fatal, true);
    assert.match(report.reason ?? '', /CrashLoopBackOff/);
    assert.match(report.reason ?? '', /--- log tail ---\nscoring server: API key file .* readable by others/);

    const fixed = await deploy('new-key', image);
    await serving('new-key');
    const keyFile = path.join(dir, 'kubelet', 'pods', fixed.metadata!.uid!, 'volumes', 'api-key', 'api-key');
    const stat = fs.statSync(keyFile);
    assert.deepEqual([stat.mode & 0o777, stat.uid, stat.gid], [0o440, 0, 1000], 'root:1000, mode 0440');
    assert.ok(fs.lstatSync(keyFile).isSymbolicLink(), 'through ..data, as the atomic writer lays it out');
    assert.ok(
      kubelet.events.some((e) => e.startsWith(`started ns-new-key/`) && e.includes('as 1000:1000')),
      kubelet.events.join('\n'),
    );
    assert.equal((await score('new-key'))[0]?.label, 'cyan');
    await deleteNamespace(kc, 'ns-old-key');
    await deleteNamespace(kc, 'ns-new-key');
  });

  test('(b) a model whose labels are a sidecar: left out of the context it fails to start; carried, it serves', async () => {
    const bare = path.join(dir, 'bare.onnx');
    const model = onnx.ModelProto.decode(fs.readFileSync(modelPath));
    model.metadataProps = model.metadataProps.filter((p) => p.key !== LABELS_KEY);
    fs.writeFileSync(bare, onnx.ModelProto.encode(model).finish());
    const labels = ['red', 'green', 'blue', 'yellow', 'CYAN-FROM-SIDECAR', 'magenta', 'white', 'black'];
    fs.writeFileSync(labelsSidecarPath(bare), labels.join('\n') + '\n');

    // The old context: the model alone (COPY model.onnx ./), and the server run without --labels.
    const files = await contextFiles(bare);
    files.delete('model.labels.txt');
    files.delete('preprocess.json');
    files.set(
      'Dockerfile',
      Buffer.from(DOCKERFILE.replace('COPY model.onnx model.labels.txt preprocess.json ./', 'COPY model.onnx ./')),
    );
    const oldImage = push('old-labels', files);
    const old = await deploy('old-labels', oldImage, (d) => {
      const c = d.spec!.template.spec!.containers[0]!;
      const args = c.args!;
      c.args = args.filter(
        (a, i) => !['--labels', '--preprocess'].includes(a) && !['--labels', '--preprocess'].includes(args[i - 1]!),
      );
    });
    const status = await containerStatus(old, crashLooping);
    assert.match(
      status.containerStatuses![0]!.lastState!.terminated!.message ?? '',
      /cannot load the model: .*labels/i,
    );

    const image = push('labels', await contextFiles(bare));
    await deploy('labels', image);
    await serving('labels');
    assert.equal((await score('labels'))[0]?.label, 'CYAN-FROM-SIDECAR', 'the labels the deployment resolved');
    await deleteNamespace(kc, 'ns-old-labels');
    await deleteNamespace(kc, 'ns-labels');
  });

  test('(c) the container has only the image: a dependency missing from its lock is missing at run time', async () => {
    const files = await contextFiles(modelPath);
    const manifest = JSON.parse(files.get('package.json')!.toString()) as { dependencies: Record<string, string> };
    const lock = JSON.parse(files.get('package-lock.json')!.toString()) as {
      packages: Record<string, { dependencies?: Record<string, string> }>;
    };
    delete manifest.dependencies['prom-client'];
    delete lock.packages['']!.dependencies!['prom-client'];
    delete lock.packages['node_modules/prom-client'];
    files.set('package.json', Buffer.from(JSON.stringify(manifest, null, 2)));
    files.set('package-lock.json', Buffer.from(JSON.stringify(lock, null, 2)));
    const pod = await deploy('no-dep', push('no-dep', files));
    const status = await containerStatus(pod, crashLooping);
    assert.match(
      status.containerStatuses![0]!.lastState!.terminated!.message ?? '',
      /Cannot find module 'prom-client'/,
    );
    await deleteNamespace(kc, 'ns-no-dep');
  });

  test('readOnlyRootFilesystem: a write into the image fails with EROFS, its emptyDir takes writes; without it the image’s modes decide', async () => {
    const image = push('writer', await contextFiles(modelPath));
    // Runs as root, whom the image's modes let write anywhere in it: only the flag can stop the write.
    const script = [
      "const fs = require('fs');",
      'const [inImage, inEmptyDir] = process.argv.slice(1);',
      "fs.writeFileSync(inEmptyDir, 'x');",
      "let said = 'emptyDir written; ';",
      "try { fs.writeFileSync(inImage, 'x'); said += 'image written'; } catch (e) { said += 'image ' + e.code; }",
      'console.log(said);',
      'process.exit(3);',
    ].join('\n');
    const writer = (readOnlyRootFilesystem: boolean) => (d: V1Deployment) => {
      const spec = d.spec!.template.spec!;
      delete spec.securityContext!.runAsNonRoot;
      const c = spec.containers[0]!;
      c.securityContext = { ...c.securityContext, runAsUser: 0, readOnlyRootFilesystem };
      c.args = ['-e', script, `/app/written-${readOnlyRootFilesystem}`, '/tmp/written'];
      delete c.startupProbe;
      delete c.readinessProbe;
      delete c.livenessProbe;
    };
    const messages: string[] = [];
    for (const readOnly of [true, false]) {
      const pod = await deploy(`writer-${readOnly}`, image, writer(readOnly));
      const status = await containerStatus(pod, crashLooping);
      messages.push(status.containerStatuses![0]!.lastState!.terminated!.message ?? '');
      await deleteNamespace(kc, `ns-writer-${readOnly}`);
    }
    assert.match(messages[0]!, /emptyDir written; image EROFS/, 'read-only root');
    assert.match(messages[1]!, /emptyDir written; image written/, 'the image’s own modes');
    // The scorer runs with the flag (its manifest sets it) and writes only to its /tmp emptyDir: test (a) serves.
    const scorer = (
      scoringManifests({
        namespace: 'ns-x',
        name: 'x',
        ownerId: 'deploy-x',
        image,
        replicas: 1,
        topK: 3,
        servicePort: 8080,
      })[2] as V1Deployment
    ).spec!.template.spec!.containers[0]!;
    assert.equal(scorer.securityContext?.readOnlyRootFilesystem, true);
  });

  test('a pull the registry refuses is ImagePullBackOff with the reason, and the container never starts', async () => {
    const image = push('refused', await contextFiles(modelPath));
    pullVerdict = { ok: false, reason: 'unauthorized: authentication required (401)' };
    try {
      const pod = await deploy('refused', image);
      const status = await containerStatus(
        pod,
        (s) => s.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff',
      );
      assert.match(status.containerStatuses![0]!.state!.waiting!.message ?? '', /401/);
      const events = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: 'ns-refused' });
      assert.ok(
        events.items.some(
          (e) => e.reason === 'Failed' && /Failed to pull image .*: unauthorized.*401/.test(e.message ?? ''),
        ),
      );
      assert.ok(!kubelet.events.some((e) => e.startsWith('started ns-refused/')), 'never started');
      assert.deepEqual(kubelet.readyEndpoints('ns-refused', { app: 'refused' }), []);
    } finally {
      pullVerdict = { ok: true };
    }
    await deleteNamespace(kc, 'ns-refused');
  });
});
