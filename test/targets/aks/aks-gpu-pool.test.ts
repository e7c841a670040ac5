/**
 * `score --target aks --gpu-nodes N`: the gpuPoolBatchScore workflow end to end. The real Temporal dev
 * server and control worker; the real Azure SDK against the local ARM endpoint, where the job adds an
 * agent pool to a cluster that has none; the real Kubernetes control plane, where the pool's nodes appear
 * with `nvidia.com/gpu` and the GPU-worker pods (built in the registry, pulled with AcrPull) are scheduled
 * onto them only, and really run the GPU worker (CPU provider) through the kubelet stand-in, scoring the
 * job's inputs. Every path ends with the pods and the pool gone and the user's cluster left standing:
 * success, a failed job, a cancelled job, and a control worker SIGKILLed while the job runs; and when a
 * job is terminated (no teardown runs), the janitor removes them.
 *
 * Inputs and outputs: the first job scores Azurite to Azurite (az:// inputs and outputs), with payload
 * encryption on (keys from INFERCTL_CODEC_KEYS_FILE); the pods' Secret, as the API server holds it, has no
 * storage connection string and no old payload key: a SAS per container of the job and the current key. The fault cases read and write local
 * directories, which the pods reach only because the kubelet stand-in has no mount namespace (made
 * readable and writable for the pods' user 1000 here); on AKS they must be az:// or a shared volume.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CoreV1Api } from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import crypto from 'node:crypto';

import { Client, WorkflowFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';

import type { BatchScoreInput } from '../../../src/shared/batch-types';
import { FailureType } from '../../../src/shared/failure-types';
import type { GpuPoolBatchInput, GpuPoolOptions } from '../../../src/shared/gpu-pool-types';
import { formatGpuPoolDryRun, gpuPoolDryRun } from '../../../src/targets/aks/gpu-pool-dry-run';
import { kubeConfigFromYaml } from '../../../src/targets/aks/kubernetes-deployment';
import { FAILURE_CONVERTER_PATH } from '../../../src/temporal/connection';
import { codecFromEnv } from '../../../src/temporal/payload-codec';
import { gpuPoolBatchScore } from '../../../workflows/gpu-pool';
import { janitor } from '../../../workflows/janitor';
import type { JanitorReport } from '../../../src/shared/janitor-types';
import { podImageFolders, seedUserCluster } from '../../helpers/aks-fixtures';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { AZURITE_KEY, useAzurite } from '../../helpers/azurite';
import { readJsonl } from '../../helpers/jsonl';
import { recordReliability } from '../../helpers/reliability';
import { demoAssets, eventually, startControlWorker, uniqueName } from '../../helpers/workers';

const CLUSTER = 'team-cpu';

interface Row {
  index: number;
  path: string;
  predictions: Array<{ label: string; score: number }>;
}

describe('batch scoring on a GPU pool the job adds to an AKS cluster', () => {
  const suite = aksSuite('aks-gpupool');
  const azurite = useAzurite();
  const { taskQueue } = suite;

  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-gpupool-'));
    await fs.chmod(dir, 0o755); // the pods run as the image's user (1000): they read the inputs, write the shards
    await seedUserCluster(suite, CLUSTER, { team: 'research' });
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));
  const scratch = (name: string, images: number) => podImageFolders(dir, name, images);

  function start(
    name: string,
    batch: Pick<BatchScoreInput, 'inputPath' | 'outputDir'> & Partial<BatchScoreInput>,
    pool: Partial<GpuPoolOptions> = {},
    client: Client = suite.client,
  ) {
    const input: GpuPoolBatchInput = {
      batch: {
        name,
        modelPath: suite.assets.modelPath,
        shardSize: 4,
        batchSize: 2,
        maxShardsInFlight: 2,
        errorThreshold: -1,
        topK: 1,
        heartbeatTimeoutSeconds: 10,
        ...batch,
      },
      pool: { cluster: CLUSTER, gpuNodes: 2, ...pool },
      readyTimeoutSeconds: 240,
      heartbeatTimeoutSeconds: 10,
      pollIntervalSeconds: 0.5,
    };
    return client.workflow.start(gpuPoolBatchScore, {
      taskQueue,
      workflowId: `score-${name}`,
      args: [input],
    });
  }

  const randomKey = () => crypto.randomBytes(32).toString('base64');

  const core = () => kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig).makeApiClient(CoreV1Api);

  /** The job's worker pods once all of them run, with the nodes they run on. */
  async function runningWorkers(handle: WorkflowHandle, wanted: number) {
    return eventually(
      async () => {
        const desc = await handle.describe();
        if (desc.status.name !== 'RUNNING') throw new Error(`the job ended early: ${desc.status.name}`);
        const pods = (await core().listPodForAllNamespaces({ labelSelector: 'app=gpu-worker' })).items.filter(
          (p) => p.metadata?.annotations?.['inferctl.dev/owner'] === handle.workflowId,
        );
        const running = pods.filter((p) => p.status?.phase === 'Running' && p.spec?.nodeName);
        return running.length >= wanted ? running : undefined;
      },
      'the GPU-worker pods to run',
      240_000,
    );
  }

  /** The agent pool a node belongs to: the job's, `g` + 11 hex digits. */
  async function poolOf(nodeName: string): Promise<string> {
    const labels = (await core().readNode({ name: nodeName })).metadata?.labels;
    const pool = labels?.['kubernetes.azure.com/agentpool'] ?? '';
    assert.match(pool, /^g[0-9a-f]{11}$/, `node ${nodeName} is in the job's pool`);
    return pool;
  }

  /** Nothing of the job is left: no pool in ARM, no pool nodes, no namespace; the cluster is still there. */
  async function assertAllGone(poolName: string, namespace: string) {
    assert.ok(suite.bed.arm.clusterNames().includes(CLUSTER), 'the user’s cluster is left standing');
    const pools = suite.bed.arm.requests.filter((r) => r.path.includes(`/agentPools/${poolName}`));
    assert.ok(
      pools.some((r) => r.method === 'DELETE' && r.status === 202),
      'the pool was deleted through ARM',
    );
    assert.deepEqual(suite.bed.arm.clusterPools(CLUSTER), ['system'], 'ARM has only the cluster’s own pool left');
    const nodes = await suite.bed.nodeNames();
    assert.deepEqual(
      nodes.filter((n) => n.startsWith(`aks-${poolName}-`)),
      [],
      'the pool’s nodes are gone',
    );
    assert.ok(!(await suite.bed.namespaces()).includes(namespace), `namespace ${namespace} is gone`);
  }

  test('adds a pool, runs the worker pods on its GPU nodes only, scores Azurite to Azurite, removes pods and pool', async (t) => {
    const name = uniqueName('gp');
    const { samples } = await scratch(name, 12);
    // The inputs in blob storage; the control worker has the storage connection string, the pods get it
    // through their Secret.
    await azurite.container('inputs');
    await azurite.container('scores');
    const blobOf = new Map<string, string>();
    for (const [i, s] of samples.entries()) {
      const blob = `day1/${String(i).padStart(3, '0')}-${path.basename(s.path)}`;
      await azurite.put('inputs', blob, await fs.readFile(s.path));
      blobOf.set(azurite.url('inputs', blob), s.label);
    }
    // Payload encryption with a rotated key file: the control worker holds both keys, the pods only the current.
    const keys = { current: 'k2', keys: { k2: randomKey(), k1: randomKey() } };
    const keysFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-keys-')), 'keys.json');
    await fs.writeFile(keysFile, JSON.stringify(keys), { mode: 0o600 });
    const codecEnv = { INFERCTL_CODEC_KEYS_FILE: keysFile };
    const sealed = new Client({
      connection: suite.client.connection,
      namespace: suite.client.options.namespace,
      dataConverter: { payloadCodecs: [codecFromEnv(codecEnv)!], failureConverterPath: FAILURE_CONVERTER_PATH },
    });
    await suite.worker.stop();
    suite.worker = await startControlWorker(taskQueue, [], { ...suite.workerEnv(), ...azurite.env, ...codecEnv });
    // The other tests start jobs without encryption, which a worker holding keys refuses: put it back after this one.
    t.after(async () => {
      await suite.worker.stop();
      suite.worker = await startControlWorker(taskQueue, [], { ...suite.workerEnv(), ...azurite.env });
    });
    const handle = await start(
      name,
      { inputPath: azurite.url('inputs', 'day1'), outputDir: azurite.url('scores', name) },
      {},
      sealed,
    );

    const pods = await runningWorkers(handle, 2);
    const nodes = await core().listNode({});
    for (const pod of pods) {
      const node = nodes.items.find((n) => n.metadata?.name === pod.spec?.nodeName);
      const pool = node?.metadata?.labels?.['kubernetes.azure.com/agentpool'] ?? '';
      assert.match(pool, /^g[0-9a-f]{11}$/, `pod ${pod.metadata?.name} runs on the job's pool, not ${pool}`);
      assert.equal(node?.status?.allocatable?.['nvidia.com/gpu'], '1', 'a GPU node');
      assert.equal(pod.spec?.containers[0]?.resources?.limits?.['nvidia.com/gpu'], '1');
    }
    assert.equal(new Set(pods.map((p) => p.spec?.nodeName)).size, 2, 'one pod per GPU node');
    // The pods got the Temporal connection from the Secret, not from their spec.
    const env = pods[0]!.spec!.containers[0]!.env ?? [];
    assert.ok(env.length > 0 && env.every((e) => e.valueFrom?.secretKeyRef?.name === 'temporal-connection'));
    // What landed in the cluster: the Secret as the API server holds it.
    const secret = await core().readNamespacedSecret({
      name: 'temporal-connection',
      namespace: pods[0]!.metadata!.namespace!,
    });
    const held = Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    );
    assert.deepEqual(Object.keys(held).sort(), [
      'INFERCTL_CODEC_KEYS',
      'INFERCTL_STORAGE_CONTAINER_SAS',
      'TEMPORAL_ADDRESS',
      'TEMPORAL_NAMESPACE',
    ]);
    const everything = JSON.stringify(held);
    assert.ok(!everything.includes(AZURITE_KEY), 'no account key, no connection string');
    assert.ok(!everything.includes(keys.keys.k1), 'not the old payload key');
    assert.equal(held.INFERCTL_CODEC_KEYS, `k2=${keys.keys.k2}`, 'only the current one');
    const sas = JSON.parse(held.INFERCTL_STORAGE_CONTAINER_SAS!) as Record<string, string>;
    assert.deepEqual(Object.keys(sas).sort(), ['devstoreaccount1/inputs', 'devstoreaccount1/scores']);
    assert.ok(sas['devstoreaccount1/inputs']!.startsWith(`${azurite.endpoint}/inputs?`));
    const inputs = new URL(sas['devstoreaccount1/inputs']!).searchParams;
    const scores = new URL(sas['devstoreaccount1/scores']!).searchParams;
    assert.deepEqual(
      [inputs.get('sr'), inputs.get('sp'), scores.get('sr'), scores.get('sp')],
      ['c', 'rl', 'c', 'racwdl'],
    );
    const lifetime = new Date(inputs.get('se')!).getTime() - Date.now();
    assert.ok(lifetime > 23 * 3_600_000 && lifetime <= 24 * 3_600_000, `expires with the job (${lifetime} ms)`);
    // The container SAS opens its container and no other.
    const other = await fetch(`${azurite.endpoint}/other-container?restype=container&comp=list&${inputs.toString()}`);
    await other.arrayBuffer();
    assert.equal(other.status, 403, 'another container is refused with the inputs’ SAS');
    recordReliability({
      test: 'aks GPU-pool pods: only the job’s scoped credentials reach the user’s cluster',
      faultsInjected: 0,
      survived: true,
      attack: 'credentials-in-user-cluster',
      attacksTried: 3,
      attacksRefused: 3,
    });

    const outcome = await handle.result();
    assert.equal(outcome.batch.totalItems, 12);
    assert.equal(outcome.batch.itemsOk, 12);
    assert.equal(outcome.batch.itemsFailed, 0);
    assert.equal(outcome.batch.executionProvider, 'cpu', 'the CPU fallback: this machine has no GPU');
    assert.equal(outcome.batch.predictionsFile, azurite.url('scores', `${name}/predictions.jsonl`));
    const text = await azurite.text('scores', `${name}/predictions.jsonl`);
    const rows = (text ?? '')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Row);
    assert.deepEqual(
      rows.map((r) => r.index),
      [...Array(12).keys()],
      'every input once, in order, in the blob output',
    );
    for (const row of rows) assert.equal(row.predictions[0]?.label, blobOf.get(row.path), row.path);
    assert.ok(
      suite.bed.kubelet.events.every((e) => !e.includes('CreateContainerConfigError')),
      'the pods found every Secret key',
    );

    const poolName = outcome.pool.poolName;
    const namespace = `inferctl-${name}-`;
    assert.ok(outcome.pool.removed.includes(`agent pool ${poolName}`), outcome.pool.removed.join(', '));
    const ns = outcome.pool.removed.find((r) => r.startsWith(`namespace ${namespace}`));
    assert.ok(ns, outcome.pool.removed.join(', '));
    assert.match(outcome.pool.imageRef ?? '', /^inferctltests\.azurecr\.io\/inferctl-gpu-worker:[0-9a-f]{64}$/);
    await assertAllGone(poolName, ns.slice('namespace '.length));
    const put = suite.bed.arm.requests.find((r) => r.method === 'PUT' && r.path.endsWith(`/agentPools/${poolName}`));
    assert.equal(put?.status, 201, 'the pool was created through ARM');
    // The shards were scored by the pods: their worker names are the pod names.
    const workers = suite.bed.kubelet.events.filter((e) => e.startsWith(`started ${ns.slice('namespace '.length)}/`));
    assert.ok(workers.length >= 2, suite.bed.kubelet.events.join('\n'));
  });

  test('a failed job still removes its pods and pool', async () => {
    const name = uniqueName('gpfail');
    const { input, output } = await scratch(name, 4);
    await fs.writeFile(path.join(input, 'broken.jpg'), 'not an image');
    const handle = await start(name, { inputPath: input, outputDir: output, errorThreshold: 0 });
    const err = await handle.result().then(
      () => assert.fail('the job must fail: one input is not an image and no error is tolerated'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, FailureType.GpuPoolJobFailed);
    assert.match(err.cause.message, /input\(s\) could not be scored, over the error threshold/, 'names the cause');
    assert.match(
      err.cause.message,
      /The GPU pool and its pods were removed \(namespace inferctl-gpfail-.*, agent pool g[0-9a-f]{11}\)/,
    );
    const poolName = /agent pool (g[0-9a-f]{11})/.exec(err.cause.message)![1]!;
    const ns = /namespace (\S+),/.exec(err.cause.message)![1]!;
    await assertAllGone(poolName, ns);
  });

  test('a pool the quota cannot cover, or a retired size, is refused before anything is created', async () => {
    const name = uniqueName('gpquota');
    const { input, output } = await scratch(name, 2);
    const puts = () =>
      suite.bed.arm.requests.filter((r) => r.method === 'PUT' && r.path.includes('/agentPools/')).length;
    const before = puts();
    // 3 × 24 vCPUs of A100 against the family's quota of 48.
    const handle = await start(
      name,
      { inputPath: input, outputDir: output },
      { gpuVmSize: 'Standard_NC24ads_A100_v4', gpuNodes: 3 },
    );
    const err = await handle.result().then(
      () => assert.fail('the job must be refused'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, FailureType.GpuPoolJobFailed);
    assert.match(err.cause.message, /Not enough vCPU quota in eastus: the node pools need 72 vCPUs .* only 48 /);
    assert.match(err.cause.message, /nothing was left/);
    const retired = await start(
      uniqueName('gpold'),
      { inputPath: input, outputDir: output },
      { gpuVmSize: 'Standard_NC6s_v3' },
    );
    const old = await retired.result().then(
      () => assert.fail('a retired size must be refused'),
      (e: unknown) => e,
    );
    assert.ok(old instanceof WorkflowFailedError);
    assert.match(String(old.cause?.message), /VM size Standard_NC6s_v3 was retired by Azure on 2025-09-30/);
    assert.equal(puts(), before, 'no agent pool was asked for');
    assert.deepEqual(suite.bed.arm.clusterPools(CLUSTER), ['system']);
  });

  test('a cancelled job removes its pods and pool, and a control worker SIGKILLed mid-job changes nothing', async () => {
    // Cancel once the workers run.
    const name = uniqueName('gpcancel');
    const { input, output } = await scratch(name, 40);
    const handle = await start(name, { inputPath: input, outputDir: output, shardSize: 2, maxShardsInFlight: 1 });
    const pods = await runningWorkers(handle, 2);
    const nsName = pods[0]!.metadata!.namespace!;
    const poolName = await poolOf(pods[0]!.spec!.nodeName!);
    await handle.cancel();
    const err = await handle.result().then(
      () => assert.fail('the job must end cancelled'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof CancelledFailure, String(err.cause));
    await assertAllGone(poolName, nsName);

    // SIGKILL the control worker while the pods score; a new one finishes the job and removes everything.
    const killed = uniqueName('gpkill');
    const k = await scratch(killed, 16);
    const job = await start(killed, { inputPath: k.input, outputDir: k.output, shardSize: 2, maxShardsInFlight: 1 });
    await runningWorkers(job, 2);
    await suite.worker.kill();
    await new Promise((r) => setTimeout(r, 2000));
    suite.worker = await startControlWorker(taskQueue, [], suite.workerEnv());
    const outcome = await job.result();
    assert.equal(outcome.batch.itemsOk, 16, 'every input scored once despite the crash');
    const rows = await readJsonl<Row>(outcome.batch.predictionsFile);
    assert.deepEqual(
      rows.map((r) => r.index),
      [...Array(16).keys()],
    );
    const ns = outcome.pool.removed.find((r) => r.startsWith('namespace '))?.slice('namespace '.length);
    assert.ok(ns && outcome.pool.removed.includes(`agent pool ${outcome.pool.poolName}`), outcome.pool.removed.join());
    await assertAllGone(outcome.pool.poolName, ns);
  });

  test('a terminated job runs no teardown: the janitor removes its pool and pods', async () => {
    const name = uniqueName('gpterm');
    const { input, output } = await scratch(name, 40);
    const handle = await start(name, { inputPath: input, outputDir: output, shardSize: 2, maxShardsInFlight: 1 });
    const pods = await runningWorkers(handle, 2);
    const namespace = pods[0]!.metadata!.namespace!;
    await handle.terminate('test: no teardown runs');
    const poolName = await poolOf(pods[0]!.spec!.nodeName!);
    assert.ok((await suite.bed.namespaces()).includes(namespace), 'terminated: the namespace is still there');

    const report: JanitorReport = await suite.client.workflow.execute(janitor, {
      taskQueue,
      workflowId: uniqueName('janitor-gpupool'),
      args: [{}],
    });
    assert.ok(report.deleted.includes(`namespace ${namespace} in cluster ${CLUSTER}`), report.deleted.join(', '));
    assert.ok(report.deleted.includes(`agent pool ${poolName} in cluster ${CLUSTER}`), report.deleted.join(', '));
    await assertAllGone(poolName, namespace);
  });
});

describe('score --target aks --dry-run', () => {
  test('prints the pool request, the worker objects without secrets, and the GPU cost; refuses a retired size', async () => {
    const assets = await demoAssets();
    const env = { AZURE_SUBSCRIPTION_ID: 'sub', INFERCTL_AKS_RESOURCE_GROUP: 'ml', INFERCTL_ACR_NAME: 'reg' };
    const pool = { cluster: 'ml-aks', gpuNodes: 4 };
    const report = await gpuPoolDryRun({ jobName: 'nightly', modelPath: assets.modelPath, pool, hours: 2, env });
    const [put, build, del] = report.armRequests;
    assert.equal(put?.method, 'PUT');
    assert.match(put.path, /\/managedClusters\/ml-aks\/agentPools\/g[0-9a-f]{11}\?api-version=/);
    const body = put.body as { properties: Record<string, unknown> };
    assert.deepEqual(
      {
        count: body.properties.count,
        vmSize: body.properties.vmSize,
        mode: body.properties.mode,
        taints: body.properties.nodeTaints,
        owner: (body.properties.tags as Record<string, string>)['inferctl-owner'],
      },
      {
        count: 4,
        vmSize: 'Standard_NC4as_T4_v3',
        mode: 'User',
        taints: ['sku=gpu:NoSchedule'],
        owner: 'score-nightly',
      },
    );
    assert.match(build!.path, /\/registries\/reg\/scheduleRun/);
    assert.equal(del?.method, 'DELETE');
    assert.equal(del?.path, put?.path);
    const secret = report.kubernetesObjects.find((o) => o.kind === 'Secret') as KubernetesObject & {
      stringData?: unknown;
    };
    assert.equal(secret.stringData, undefined, 'the Secret is shown without values');
    const deployment = report.kubernetesObjects.find((o) => o.kind === 'Deployment') as KubernetesObject & {
      spec: { replicas: number; template: { spec: { nodeSelector: Record<string, string> } } };
    };
    assert.equal(deployment.spec.replicas, 4);
    assert.deepEqual(deployment.spec.template.spec.nodeSelector, { 'inferctl.dev/pool': report.plan.poolName });
    assert.equal(report.cost.hourly, 4 * 0.526);
    assert.equal(report.jobCost.total, Math.round(4 * 0.526 * 2 * 100) / 100);
    const text = formatGpuPoolDryRun(report);
    assert.match(text, /Standard_NC4as_T4_v3 VM +× {2}4 {2}\$2\.104\/h/);
    assert.match(text, /for 2 h of job +\$4\.21/);

    await assert.rejects(
      gpuPoolDryRun({
        jobName: 'old',
        modelPath: assets.modelPath,
        pool: { ...pool, gpuVmSize: 'Standard_NC6s_v3' },
        env,
      }),
      /VM size Standard_NC6s_v3 was retired by Azure on 2025-09-30/,
    );
  });
});
