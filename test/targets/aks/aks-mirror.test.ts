/**
 * `inferctl rollout --mirror --compare` on the aks target, through bin/inferctl.js against the doubles (ARM,
 * the real API server, the kubelet stand-in running the scoring servers and the front as processes), with a
 * client load through the endpoint's load balancer throughout. The mirror places the front before the serving
 * pods for the bake (mirror-front.ts): with the wrong preprocessing (BGR for an RGB model: red and blue swap)
 * the comparison disagrees, the candidate is kept off and removed, the report naming the disagreement with
 * the request id and both answers; with the model's own preprocessing it agrees and is promoted. The load
 * sees no failed request and only the serving version's answers while mirrored; `inferctl status` shows the
 * comparison while it runs; the comparison is not readable through the public endpoint with the key; after
 * each rollout the front and its Service are gone, and teardown leaves no namespace or cluster.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeployStatus } from '../../../src/shared/deploy-types';
import { aksSettingsFromEnv } from '../../../src/targets/aks/aks-config';
import { AksTarget } from '../../../src/targets/aks/aks-target';
import { kubeConfigFromYaml } from '../../../src/targets/aks/kubernetes-deployment';
import { endpointRequest } from '../../../src/targets/endpoint-request';
import type { EndpointAccess } from '../../../src/targets/target';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { runInferctl } from '../../helpers/cli';
import { recordFigure } from '../../helpers/reliability';
import { uniqueName } from '../../helpers/workers';

interface LoadResult {
  requests: number;
  /** Answers that were not 200 with the sample's own label (the serving version's). */
  wrong: string[];
}

/** POSTs the samples round and round through the endpoint with the key, two at a time, until `stop`. */
async function clientLoad(
  access: EndpointAccess,
  samples: Array<{ label: string; body: Buffer }>,
  stop: AbortSignal,
): Promise<LoadResult> {
  const result: LoadResult = { requests: 0, wrong: [] };
  const worker = async (w: number) => {
    for (let i = 0; !stop.aborted; i++) {
      const sample = samples[i % samples.length]!;
      result.requests++;
      try {
        const res = await endpointRequest(access, '/score', {
          method: 'POST',
          body: sample.body,
          headers: {
            authorization: `Bearer ${access.apiKey}`,
            'content-type': 'image/jpeg',
            'x-request-id': `load-${w}-${i}`,
          },
        });
        const label = (JSON.parse(res.text) as { predictions?: Array<{ label: string }> }).predictions?.[0]?.label;
        if (res.status !== 200 || label !== sample.label) result.wrong.push(`${res.status} ${res.text.slice(0, 200)}`);
      } catch (err) {
        result.wrong.push(`${new Date().toISOString()} ${(err as Error).message}`);
      }
    }
  };
  await Promise.all([worker(0), worker(1)]);
  return result;
}

describe('inferctl rollout --mirror on the aks target', () => {
  const suite = aksSuite('aks-mirror-tq');
  let dir: string;
  const inferctl = (args: string[]) => runInferctl(args, { env: suite.workerEnv(), timeoutMs: 600_000 });

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-aks-mirror-'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  /** The namespace's Deployments and Services, by name. */
  async function objects(namespace: string) {
    const kc = kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig);
    const deployments = await kc.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace });
    const services = await kc.makeApiClient(CoreV1Api).listNamespacedService({ namespace });
    return {
      deployments: deployments.items.map((d) => d.metadata!.name!).sort(),
      services: services.items.map((s) => s.metadata!.name!).sort(),
    };
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

  test('ONNX → ONNX: the wrong preprocessing is kept off naming the disagreement, the right one promoted', async () => {
    const name = uniqueName('aks-mirror');
    const namespace = `inferctl-${name}`;
    const samples = await Promise.all(
      ['red', 'blue', 'green'].map(async (label) => ({
        label,
        body: await fs.readFile(suite.assets.samples.find((s) => s.label === label)!.path),
      })),
    );
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
      '--json',
      '--task-queue',
      suite.taskQueue,
    ]);
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
      const first = (JSON.parse(deployed.stdout) as { status: DeployStatus }).status;
      Object.assign(process.env, suite.bed.workerEnv()); // this process reads the endpoint as a client would
      const target = new AksTarget(aksSettingsFromEnv());
      const spec = { name, target: 'aks' as const, ownerId: deployWorkflowId(name), modelPath: '', replicas: 1 };
      const access = await target.endpointAccess({ ...spec, topK: 5, aks: { gpuNodeCount: 2 } });
      const bgr = path.join(dir, 'bgr.json');
      await fs.writeFile(bgr, JSON.stringify({ channelOrder: 'BGR' }));

      // 1. The wrong preprocessing: kept off, the candidate and the front removed; the load saw the serving answers.
      const stopBad = new AbortController();
      const badLoad = clientLoad(access, samples, stopBad.signal);
      const watch = watchComparison(name, access, stopBad.signal);
      const bad = await inferctl([
        'rollout',
        name,
        '--model',
        suite.assets.modelPath,
        '--preprocess',
        bgr,
        '--mirror',
        '100',
        '--compare',
        'top1',
        '--min-agreement',
        '0.99',
        '--min-pairs',
        '10',
        '--bake',
        '10s',
      ]);
      stopBad.abort();
      const badSeen = await badLoad;
      const watched = await watch;
      assert.notEqual(bad.code, 0, bad.stdout);
      const report = bad.stderr + bad.stdout;
      assert.match(report, /rolled back \(Kept off: the candidate agreed on \d+ of \d+ pair\(s\)/);
      assert.match(report, /\[load-\d-\d+\] top label "(red|blue)" vs "(blue|red)": serving 200 \{"predictions"/);
      const kept = /agreed on (\d+) of (\d+) pair\(s\)/.exec(report)!;
      recordFigure({
        test: 'aks-mirror.test.ts',
        figure: 'aks mirror ONNX → ONNX with BGR for an RGB model: agreement (kept off; red and blue swap)',
        value: Math.round((1000 * Number(kept[1])) / Number(kept[2])) / 10,
        unit: '%',
      });
      assert.ok(watched.line, `\`inferctl status\` showed the comparison while it ran: ${watched.seen.join('\n')}`);
      assert.ok(watched.probe, 'the comparison was probed through the public endpoint');
      assert.notEqual(watched.probe.status, 200, 'the key alone does not read the comparison');
      assert.doesNotMatch(watched.probe.text, /"pairs"/);
      assert.ok(badSeen.requests > 20, `the load ran (${badSeen.requests} requests)`);
      const events = () =>
        [...suite.bed.kubelet.events.filter((e) => e.includes(namespace)), ...suite.bed.lb.events].join('\n');
      assert.deepEqual(badSeen.wrong, [], `every client got the serving version’s answer, none failed\n${events()}`);
      assert.deepEqual(await objects(namespace), { deployments: [name], services: [name] }, 'candidate and front gone');

      // 2. The model's own preprocessing: agrees, promoted; the front gone again. The same network under another
      // graph name: a new digest, a new image, the same answers.
      const bytes = Buffer.from(await fs.readFile(suite.assets.modelPath));
      const at = bytes.indexOf('inferctl-tiny-colour-cnn');
      assert.ok(at > 0, 'the graph name is in the model file');
      bytes.write('inferctl-tiny-colour-cn2', at);
      const v2 = path.join(dir, `${name}-v2.onnx`);
      await fs.writeFile(v2, bytes);
      const stopGood = new AbortController();
      const goodLoad = clientLoad(access, samples, stopGood.signal);
      const good = await inferctl([
        'rollout',
        name,
        '--model',
        v2,
        '--mirror',
        '100',
        '--compare',
        'top1',
        '--min-pairs',
        '10',
        '--bake',
        '8s',
      ]);
      stopGood.abort();
      const goodSeen = await goodLoad;
      assert.equal(good.code, 0, good.stderr + good.stdout);
      const compared = /Comparison: (\d+) pair\(s\) compared, 100\.0% agree/.exec(good.stdout);
      assert.ok(compared && Number(compared[1]) >= 10, good.stdout);
      assert.deepEqual(
        goodSeen.wrong,
        [],
        `no client request failed through the mirror and the promotion\n${events()}`,
      );
      assert.deepEqual(await objects(namespace), { deployments: [name], services: [name] }, 'candidate and front gone');
      const status = await inferctl(['status', name, '--json']);
      const after = (JSON.parse(status.stdout) as { status: DeployStatus }).status;
      assert.equal(after.endpoint, first.endpoint, 'the same endpoint');
      assert.notEqual(after.imageRef, first.imageRef, 'the promoted version serves');
    } finally {
      const down = await inferctl(['teardown', name, '--json']);
      assert.equal(down.code, 0, down.stderr);
    }
    for (let i = 0; i < 100 && (await suite.bed.namespaces()).includes(namespace); i++) await delay(200);
    assert.ok(!(await suite.bed.namespaces()).includes(namespace), 'the namespace is gone');
    assert.ok(!suite.bed.arm.clusterNames().includes(namespace), 'the cluster it made is deleted');
  });
});
