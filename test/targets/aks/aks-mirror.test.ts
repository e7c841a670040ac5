/**
 * `inferctl rollout --mirror --compare` on the aks target, through bin/inferctl.js against the doubles (ARM,
 * the real API server, the kubelet stand-in running the scoring servers and the front as processes), with a
 * client load through the endpoint's load balancer throughout. The mirror places the front before the serving
 * pods for the bake (mirror-front.ts): with the wrong preprocessing (BGR for an RGB model: red and blue swap)
 * the comparison disagrees, the candidate is kept off and removed, the report naming the disagreement with
 * the request id and both answers; with the model's own preprocessing it agrees and is promoted. The load
 * sees no failed request and only the serving version's answers while mirrored; `inferctl status` shows the
 * comparison while it runs; the comparison is not readable through the public endpoint with the key; after
 * each rollout the front and its Service are gone, and teardown leaves no namespace or cluster. ONNX → ONNX,
 * and script → ONNX: the how-to's score.py (its conda file built into the image) moved to the ONNX fast path.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { KubernetesObjectApi } from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';

import type { DeployStatus } from '../../../src/shared/deploy-types';
import { ENVIRONMENT_ANNOTATION } from '../../../src/targets/aks/environment-tag';
import { FRONT_LABEL } from '../../../src/targets/aks/front-manifests';
import { kubeConfigFromYaml } from '../../../src/targets/aks/kubernetes-deployment';
import { MANAGED_BY_LABEL, OWNER_ANNOTATION } from '../../../src/targets/aks/kubernetes-manifests';
import { endpointRequest } from '../../../src/targets/endpoint-request';
import type { EndpointAccess } from '../../../src/targets/target';
import {
  aksClientTarget,
  aksEndpointAccess,
  assertNamespaceGone,
  clientSpec,
  endpointLoad,
  namespaceObjects,
} from '../../helpers/aks-fixtures';
import type { LoadResult } from '../../helpers/aks-fixtures';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { mirrorFlags, runInferctl } from '../../helpers/cli';
import type { CliRun } from '../../helpers/cli';
import { recordFigure } from '../../helpers/reliability';
import { PYTHON_SKIP, fixture } from '../../helpers/script-fixtures';
import { uniqueName } from '../../helpers/workers';

describe('inferctl rollout --mirror on the aks target', () => {
  const suite = aksSuite('aks-mirror-tq');
  let dir: string;
  let bgr: string;
  const inferctl = (args: string[]) => runInferctl(args, { env: suite.workerEnv(), timeoutMs: 600_000 });

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-aks-mirror-'));
    bgr = path.join(dir, 'bgr.json');
    await fs.writeFile(bgr, JSON.stringify({ channelOrder: 'BGR' }));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  const samplePath = (label: string) => suite.assets.samples.find((s) => s.label === label)!.path;
  const samples = () =>
    Promise.all(['red', 'blue', 'green'].map(async (label) => ({ label, body: await fs.readFile(samplePath(label)) })));
  const deployFlags = (name: string) => [
    '--name',
    name,
    '--target',
    'aks',
    '--gpu-nodes',
    '2',
    '--ttl',
    '1h',
    '--json',
    '--task-queue',
    suite.taskQueue,
  ];
  const events = (namespace: string) =>
    [...suite.bed.kubelet.events.filter((e) => e.includes(namespace)), ...suite.bed.lb.events].join('\n');

  /** A rollout of `name` under the client load; with `watch`, `inferctl status` is read until it shows the comparison. */
  async function underLoad(name: string, access: EndpointAccess, args: string[], watch = false) {
    const stop = new AbortController();
    const load = endpointLoad(access, await samples(), stop.signal);
    const watched = watch ? watchComparison(name, access, stop.signal) : undefined;
    const run = await inferctl(['rollout', name, ...args]);
    stop.abort();
    return { run, seen: await load, watched: await watched };
  }

  /** Runs `inferctl status` until it shows the comparison; then tries to read it through the public endpoint. */
  async function watchComparison(name: string, access: EndpointAccess, stop: AbortSignal) {
    const seen: string[] = [];
    while (!stop.aborted) {
      const s = await inferctl(['status', name]);
      const line = /comparison: \d+ pair\(s\) compared, [^\n]*/.exec(s.stdout)?.[0];
      seen.push(`${s.code} ${/rolling out [^\n]*/.exec(s.stdout)?.[0]} ${s.stderr}`);
      if (line) {
        const probe = await endpointRequest(access, '/gateway/mirror', {
          method: 'GET',
          headers: { authorization: `Bearer ${access.apiKey}` },
        });
        return { line, seen, probe };
      }
      await delay(300);
    }
    return { line: undefined, seen, probe: undefined };
  }

  /** BGR kept off: the report names a red/blue disagreement; every client got the serving answer; the figure. */
  async function assertKeptOff(name: string, run: CliRun, seen: LoadResult, figure: string) {
    assert.notEqual(run.code, 0, run.stdout);
    const report = run.stderr + run.stdout;
    assert.match(report, /rolled back \(Kept off: the candidate agreed on \d+ of \d+ pair\(s\)/);
    assert.match(report, /\[load-\d-\d+\] top label "(red|blue)" vs "(blue|red)": serving 200 \{"predictions"/);
    const kept = /agreed on (\d+) of (\d+) pair\(s\)/.exec(report)!;
    recordFigure({
      test: 'aks-mirror.test.ts',
      figure,
      value: Math.round((1000 * Number(kept[1])) / Number(kept[2])) / 10,
      unit: '%',
    });
    assert.ok(seen.requests > 20, `the load ran (${seen.requests} requests)`);
    assert.deepEqual(seen.wrong, [], `every client got the serving version’s answer, none failed\n${events(name)}`);
    const objects = await namespaceObjects(suite, `inferctl-${name}`);
    assert.deepEqual(objects, { deployments: [name], services: [name] }, 'the candidate and the front are gone');
  }

  const objectApi = () => KubernetesObjectApi.makeApiClient(kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig));

  /**
   * Objects this inferctl did not make, under the mirror's names (`<name>-front`, `<name>-scorers`) in
   * `namespace`, with its labels and `annotations`: a Deployment of no replicas and a ClusterIP Service.
   */
  async function bystanders(name: string, namespace: string, annotations: Record<string, string>) {
    const metadata = (n: string) => ({
      name: n,
      namespace,
      labels: { app: name, [MANAGED_BY_LABEL]: 'inferctl' },
      annotations,
    });
    const selector = { [FRONT_LABEL]: name };
    const objects: KubernetesObject[] = [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: metadata(`${name}-front`),
        spec: {
          replicas: 0,
          selector: { matchLabels: selector },
          template: {
            metadata: { labels: selector },
            spec: { containers: [{ name: 'theirs', image: 'example.invalid/theirs:1' }] },
          },
        },
      } as KubernetesObject,
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: metadata(`${name}-scorers`),
        spec: { type: 'ClusterIP', selector: { app: 'theirs' }, ports: [{ port: 9000 }] },
      } as KubernetesObject,
    ];
    return Promise.all(objects.map((o) => objectApi().create(o)));
  }

  /** Each object is still there as it was made: the same uid, generation, labels, annotations and spec. */
  async function assertUntouched(objects: KubernetesObject[]) {
    for (const made of objects) {
      const now = await objectApi().read({
        apiVersion: made.apiVersion!,
        kind: made.kind!,
        metadata: { name: made.metadata!.name!, namespace: made.metadata!.namespace! },
      });
      const what = `${made.kind} ${made.metadata!.namespace}/${made.metadata!.name}`;
      const seen = (o: KubernetesObject) => ({
        uid: o.metadata?.uid,
        generation: o.metadata?.generation,
        labels: o.metadata?.labels,
        // The deployment controller adds its own (deployment.kubernetes.io/revision): the ones set when made.
        annotations: Object.keys(made.metadata!.annotations!).map((k) => o.metadata?.annotations?.[k]),
        spec: (o as { spec?: unknown }).spec,
      });
      assert.deepEqual(seen(now), seen(made), `${what} is left as it was`);
    }
  }

  /** Promoted at 100 % agreement on at least 10 pairs; no client request failed; the candidate and front gone. */
  async function assertPromoted(name: string, run: CliRun, seen: LoadResult) {
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const compared = /Comparison: (\d+) pair\(s\) compared, 100\.0% agree/.exec(run.stdout);
    assert.ok(compared && Number(compared[1]) >= 10, run.stdout);
    assert.deepEqual(seen.wrong, [], `no client request failed through the mirror and the promotion\n${events(name)}`);
    const objects = await namespaceObjects(suite, `inferctl-${name}`);
    assert.deepEqual(objects, { deployments: [name], services: [name] }, 'the candidate and the front are gone');
  }

  test('ONNX → ONNX: the wrong preprocessing is kept off naming the disagreement, the right one promoted', async () => {
    const name = uniqueName('aks-mirror');
    const namespace = `inferctl-${name}`;
    const deployed = await inferctl([
      'deploy',
      '--model',
      suite.assets.modelPath,
      '--smoke-sample',
      samplePath('red'),
      ...deployFlags(name),
    ]);
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
      const first = (JSON.parse(deployed.stdout) as { status: DeployStatus }).status;
      const access = await aksEndpointAccess(suite, name, { aks: { gpuNodeCount: 2 } });

      // 1. The wrong preprocessing: kept off, the candidate and the front removed; the load saw the serving answers.
      const bad = await underLoad(
        name,
        access,
        [
          ...['--model', suite.assets.modelPath, '--preprocess', bgr],
          ...mirrorFlags({ minAgreement: 0.99, minPairs: 10, bake: '10s' }),
        ],
        true,
      );
      await assertKeptOff(
        name,
        bad.run,
        bad.seen,
        'aks mirror ONNX → ONNX with BGR for an RGB model: agreement (kept off; red and blue swap)',
      );
      const watched = bad.watched!;
      assert.ok(watched.line, `\`inferctl status\` showed the comparison while it ran: ${watched.seen.join('\n')}`);
      assert.ok(watched.probe, 'the comparison was probed through the public endpoint');
      assert.notEqual(watched.probe.status, 200, 'the key alone does not read the comparison');
      assert.doesNotMatch(watched.probe.text, /"pairs"/);

      // 2. The model's own preprocessing: agrees, promoted; the front gone again. The same network under another
      // graph name: a new digest, a new image, the same answers.
      const bytes = Buffer.from(await fs.readFile(suite.assets.modelPath));
      const at = bytes.indexOf('inferctl-tiny-colour-cnn');
      assert.ok(at > 0, 'the graph name is in the model file');
      bytes.write('inferctl-tiny-colour-cn2', at);
      const v2 = path.join(dir, `${name}-v2.onnx`);
      await fs.writeFile(v2, bytes);
      const good = await underLoad(name, access, ['--model', v2, ...mirrorFlags({ minPairs: 10, bake: '8s' })]);
      await assertPromoted(name, good.run, good.seen);
      const status = await inferctl(['status', name, '--json']);
      const after = (JSON.parse(status.stdout) as { status: DeployStatus }).status;
      assert.equal(after.endpoint, first.endpoint, 'the same endpoint');
      assert.notEqual(after.imageRef, first.imageRef, 'the promoted version serves');
    } finally {
      const down = await inferctl(['teardown', name, '--json']);
      assert.equal(down.code, 0, down.stderr);
    }
    await assertNamespaceGone(suite, namespace);
  });

  test(
    'script → ONNX: the how-to script’s ONNX version kept off with BGR, promoted with its own preprocessing',
    { skip: PYTHON_SKIP },
    async () => {
      const name = uniqueName('aks-mirror-so');
      const namespace = `inferctl-${name}`;
      const elsewhere = `elsewhere-${name}`;
      let copies: KubernetesObject[] = [];
      const deployed = await inferctl([
        'deploy',
        ...['--entry-script', fixture('howto', 'score.py'), '--environment', fixture('howto', 'myenv.yml')],
        ...['--model', suite.assets.modelPath, '--model-name', 'tiny-cnn'],
        ...['--smoke-sample', samplePath('red'), '--expect-label', 'red'],
        ...deployFlags(name),
      ]);
      try {
        assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout + events(namespace));
        const first = (JSON.parse(deployed.stdout) as { status: DeployStatus }).status;
        const access = await aksEndpointAccess(suite, name, { aks: { gpuNodeCount: 2 } });
        const answer = async () => {
          const res = await endpointRequest(access, '/score', {
            method: 'POST',
            body: await fs.readFile(samplePath('red')),
            headers: { authorization: `Bearer ${access.apiKey}`, 'content-type': 'image/jpeg' },
          });
          assert.equal(res.status, 200, res.text);
          return JSON.parse(res.text) as object;
        };
        assert.ok('probabilities' in (await answer()), 'the how-to script serves');
        const onnx = ['--onnx-server', '--model', suite.assets.modelPath];

        // 0. Bystanders. In another namespace, the mirror's names with its labels and this deployment's whole owner;
        // in the deployment's own, the same names and labels made by another installation. The mirror is refused
        // before it applies anything, saying what to do, the candidate removed; neither set is changed or deleted.
        const owner = aksClientTarget(suite).owner(clientSpec(name));
        await objectApi().create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: elsewhere } });
        copies = await bystanders(name, elsewhere, {
          [OWNER_ANNOTATION]: owner.id,
          [ENVIRONMENT_ANNOTATION]: owner.environment,
        });
        const theirs = await bystanders(name, namespace, {
          [OWNER_ANNOTATION]: owner.id,
          [ENVIRONMENT_ANNOTATION]: 'other-temporal:7233/other',
        });
        const refused = await inferctl(['rollout', name, ...onnx, ...mirrorFlags({ minPairs: 10, bake: '10s' })]);
        assert.notEqual(refused.code, 0, refused.stdout);
        assert.match(
          refused.stderr + refused.stdout,
          new RegExp(
            `Deployment ${namespace}/${name}-front already exists and belongs to ${owner.id} of other-temporal:7233/other, ` +
              `not to ${owner.id} of .*kubectl delete deployment ${name}-front -n ${namespace}\\) and run the rollout again`,
          ),
        );
        await assertUntouched([...theirs, ...copies]);
        assert.deepEqual(
          await namespaceObjects(suite, namespace),
          { deployments: [name, `${name}-front`], services: [name, `${name}-scorers`] },
          'the candidate is gone, the bystanders are not',
        );
        for (const o of theirs) await objectApi().delete(o); // as the refusal says, once nobody uses them

        // 1. The ONNX version with BGR for the RGB model: kept off; the script answered every client.
        const bad = await underLoad(name, access, [
          ...[...onnx, '--preprocess', bgr],
          ...mirrorFlags({ minAgreement: 0.99, minPairs: 10, bake: '10s' }),
        ]);
        await assertKeptOff(
          name,
          bad.run,
          bad.seen,
          'aks mirror script → ONNX with BGR for an RGB model: agreement (kept off; red and blue swap)',
        );
        assert.match(bad.run.stderr + bad.run.stdout, /still serves/);

        // 2. The ONNX version with the model's own preprocessing: agrees with the script, promoted.
        const good = await underLoad(name, access, [...onnx, ...mirrorFlags({ minPairs: 10, bake: '8s' })]);
        await assertPromoted(name, good.run, good.seen);
        assert.match(good.run.stdout, new RegExp(`${name} now serves ${path.basename(suite.assets.modelPath)}`));
        assert.ok(!('probabilities' in (await answer())), 'inferctl’s ONNX server answers now');
        const status = await inferctl(['status', name, '--json']);
        const after = (JSON.parse(status.stdout) as { status: DeployStatus }).status;
        assert.equal(after.endpoint, first.endpoint, 'the same endpoint');
      } finally {
        const down = await inferctl(['teardown', name, '--json']);
        assert.equal(down.code, 0, down.stderr);
      }
      await assertNamespaceGone(suite, namespace);
      assert.deepEqual(
        await namespaceObjects(suite, elsewhere),
        { deployments: [`${name}-front`], services: [`${name}-scorers`] },
        'the same names in another namespace survived the three rollouts and the teardown',
      );
      await assertUntouched(copies);
      await objectApi().delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: elsewhere } });
    },
  );
});
