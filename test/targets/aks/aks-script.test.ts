/**
 * `inferctl deploy --entry-script … --target aks` through bin/inferctl.js, on the aks doubles: the script's
 * image built in the registry double from script-image.ts's context, the kubelet stand-in assembling it as
 * its Dockerfile says (python-image.ts: the venv and pip install inside it) and running it as the image's
 * non-root user with the key and TLS Secrets mounted 0440 and a read-only root; the smoke query with its
 * expectation through the front on the pod, via the LoadBalancer; teardown leaves no namespace or cluster.
 * And a script whose init() raises: CrashLoopBackOff, the deployment fails with the traceback's last
 * lines from the container's last state, once (not retried as transient), and teardown runs. And an
 * environment pip cannot resolve: the registry's build runs pip and fails, the image step fails once,
 * naming the package and pip's last lines, and teardown runs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import { kubeConfigFromYaml } from '../../../src/targets/aks/kubernetes-deployment';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { runInferctl } from '../../helpers/cli';
import { PYTHON_SKIP, fixture } from '../../helpers/script-fixtures';
import { uniqueName } from '../../helpers/workers';

describe('inferctl deploy --entry-script --target aks', { skip: PYTHON_SKIP }, () => {
  const suite = aksSuite('aks-script-tq');
  let dir: string;
  const inferctl = (args: string[]) =>
    runInferctl([...args, ...(args[0] === 'deploy' ? ['--task-queue', suite.taskQueue] : [])], {
      timeoutMs: 600_000,
    });

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-aks-script-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('the script image is built in the registry, run by the kubelet as its Dockerfile says, smoke-queried through the front, torn down', async () => {
    const sample = path.join(dir, 'index1.json');
    await fs.writeFile(sample, '{"index": 1}');
    const name = uniqueName('aksscript');
    const deployed = await inferctl([
      'deploy',
      '--entry-script',
      fixture('v2', 'score.py'),
      '--environment',
      fixture('v2', 'requirements.txt'),
      '--model',
      fixture('v2-model', 'colours'),
      '--smoke-sample',
      sample,
      '--expect-json',
      'label=green',
      '--target',
      'aks',
      '--name',
      name,
    ]);
    const kc = kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig);
    const namespace = `inferctl-${name}`;
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout + suite.bed.kubelet.events.join('\n'));
      assert.match(deployed.stdout, /✔ validate \([^)]+\): scoring script: score\.py on Python 3\.\d+\.\d+/);
      assert.match(deployed.stdout, /✔ buildImage \([^)]+\): sha256:/);
      assert.match(deployed.stdout, /✔ smokeQuery \([^)]+\): 200, label = green/);
      assert.match(deployed.stdout, /Endpoint: https:\/\/inferctl-[^ ]+\/score, any method/);

      // The image the registry built is the script's (its Dockerfile, its bundle), and the pod runs it.
      const deployment = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name, namespace });
      const pod = deployment.spec!.template.spec!;
      const container = pod.containers[0]!;
      const record = [...suite.bed.arm.images.values()].find((i) => container.image!.endsWith(`:${i.tag}`));
      assert.ok(record, `the registry holds ${container.image}`);
      assert.deepEqual(container.args!.slice(0, 5), [
        'dist/src/script/front-main.js',
        '--bundle',
        '/var/azureml-app',
        '--python',
        '/opt/venv/bin/python',
      ]);
      assert.ok(container.args!.includes('--tls-cert'), 'HTTPS, as the ONNX server');
      assert.deepEqual(
        {
          nonRoot: pod.securityContext?.runAsNonRoot,
          user: pod.securityContext?.runAsUser,
          fsGroup: pod.securityContext?.fsGroup,
        },
        { nonRoot: true, user: 1000, fsGroup: 1000 },
      );
      assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
      assert.deepEqual(
        pod.volumes!.map((v) => [v.name, v.secret?.defaultMode ?? (v.emptyDir ? 'emptyDir' : undefined)]),
        [
          ['tmp', 'emptyDir'],
          ['api-key', 0o440],
          ['tls', 0o440],
        ],
      );
      const started = suite.bed.kubelet.events.find((e) => e.startsWith(`started ${namespace}/`));
      assert.match(started ?? suite.bed.kubelet.events.join('\n'), /as 1000:1000 \(groups 1000\)/);
    } finally {
      const down = await inferctl(['teardown', name]);
      assert.equal(down.code, 0, down.stderr + down.stdout);
    }
    const core = kc.makeApiClient(CoreV1Api);
    for (let i = 0; i < 100 && (await suite.bed.namespaces()).includes(namespace); i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(!(await suite.bed.namespaces()).includes(namespace), 'the namespace is gone');
    assert.deepEqual(
      (await core.listPodForAllNamespaces({})).items.filter((p) => p.metadata?.namespace === namespace),
      [],
    );
    assert.ok(!suite.bed.arm.clusterNames().includes(namespace), 'the cluster it made is deleted');
  });

  test('an environment pip cannot resolve fails the image step in the registry, once, naming the package; torn down', async () => {
    const name = uniqueName('akspip');
    const run = await inferctl([
      'deploy',
      '--entry-script',
      fixture('v2', 'score.py'),
      '--environment',
      fixture('unresolvable', 'requirements.txt'),
      '--model',
      fixture('v2-model', 'colours'),
      '--target',
      'aks',
      '--name',
      name,
    ]);
    const output = run.stderr + run.stdout;
    assert.equal(run.code, 1, output);
    assert.match(
      output,
      /pip could not install the scoring script's environment \(inferctl-no-such-package-7f3e9==1\.0\)/,
    );
    assert.match(output, /No matching distribution found for inferctl-no-such-package-7f3e9==1\.0/);
    assert.match(output, /Full log: az acr task logs -r \S+ --run-id \S+/);
    assert.match(output, /Teardown completed/);
    assert.equal((output.match(/✘ buildImage/g) ?? []).length, 1, 'failed once, not retried');
    assert.ok(!(await suite.bed.namespaces()).includes(`inferctl-${name}`));
    const history = await suite.client.workflow.getHandle(deployWorkflowId(name)).fetchHistory();
    const failed = (history.events ?? []).filter((e) => e.activityTaskFailedEventAttributes);
    const builds = failed.map((e) => e.activityTaskFailedEventAttributes!.failure?.applicationFailureInfo);
    assert.deepEqual(
      builds.map((b) => [b?.type, b?.nonRetryable]),
      [['ScriptEnvironmentFailed', true]],
    );
  });

  test('init() raising: CrashLoopBackOff, the traceback from the container’s last state, not retried, torn down', async () => {
    const name = uniqueName('aksinit');
    const run = await inferctl([
      'deploy',
      '--entry-script',
      fixture('init-raises', 'score.py'),
      '--environment',
      fixture('v2', 'requirements.txt'),
      '--model',
      fixture('v2-model', 'colours'),
      '--target',
      'aks',
      '--name',
      name,
    ]);
    const output = run.stderr + run.stdout;
    assert.equal(run.code, 1, output);
    assert.match(output, /CrashLoopBackOff/);
    assert.match(output, /the scoring script's init\(\) raised; the Python server exited with code 3/);
    assert.match(
      output,
      /FileNotFoundError: no model at \S*\/var\/azureml-app\/app\/azureml-models\/colours\/1\/missing\.onnx/,
    );
    assert.match(output, /Teardown completed/);
    assert.equal((output.match(/✘ waitForDeployment/g) ?? []).length, 1, 'failed once, not retried');
    assert.ok(!(await suite.bed.namespaces()).includes(`inferctl-${name}`));
    // The wait failed on its first attempt, non-retryable: a crash loop is the script's, not a transient fault.
    const history = await suite.client.workflow.getHandle(deployWorkflowId(name)).fetchHistory();
    const events = history.events ?? [];
    const waits = events.filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'waitForDeployment',
    );
    assert.equal(waits.length, 1);
    const failed = events.find(
      (e) => String(e.activityTaskFailedEventAttributes?.scheduledEventId) === String(waits[0]!.eventId),
    );
    const started = events.find(
      (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(waits[0]!.eventId),
    );
    assert.equal(started?.activityTaskStartedEventAttributes?.attempt, 1, 'one attempt');
    assert.equal(failed?.activityTaskFailedEventAttributes?.failure?.applicationFailureInfo?.nonRetryable, true);
  });
});
