/**
 * The aks target under Azure's and Kubernetes' failure modes, injected at the local ARM endpoint and the
 * real control plane: a failing image build (with its log tail), 429 storms honouring Retry-After and
 * 500s, quota and SKU refusals before anything bills, a cluster stuck in Updating, a delete that fails
 * once, pods that cannot be scheduled for want of GPUs, and a worker killed mid-provisioning. Every case
 * ends with zero clusters at the endpoint.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { WorkflowFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeployInput } from '../../../src/shared/deploy-types';
import { deploy } from '../../../workflows/deploy';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { recordReliability } from '../../helpers/reliability';
import { eventually, startControlWorker, uniqueName } from '../../helpers/workers';

describe('aks target fault handling', () => {
  const suite = aksSuite('aks-faults-tq', { INFERCTL_AKS_PROVISION_TIMEOUT_MS: '5000' });
  const { taskQueue } = suite;

  function start(name: string, extra: Partial<DeployInput> = {}): Promise<WorkflowHandle<typeof deploy>> {
    return suite.client.workflow.start(deploy, {
      taskQueue,
      workflowId: deployWorkflowId(name),
      args: [
        {
          name,
          modelPath: suite.assets.modelPath,
          target: 'aks',
          replicas: 1,
          ttlSeconds: 1,
          // A dead worker noticed in 15 s (the aks default is 60 s); readiness polled fast.
          timings: { readyTimeoutSeconds: 60, heartbeatTimeoutSeconds: 15, readinessPollSeconds: 0.2 },
          ...extra,
        } satisfies DeployInput,
      ],
    });
  }

  async function failure(handle: WorkflowHandle<typeof deploy>): Promise<ApplicationFailure> {
    const err = await handle.result().then(
      () => assert.fail('the deployment must fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.match(err.cause.message, /Teardown completed/, 'teardown ran before the workflow failed');
    return err.cause;
  }

  test('a failing image build fails the deployment with the build log tail, and the cluster is deleted', async () => {
    suite.bed.arm.faults.failBuildsWith = 'npm error code ETIMEDOUT (registry.npmjs.org)';
    try {
      const cause = await failure(await start(uniqueName('aks-build')));
      assert.match(cause.message, /Image build ca\d+ in registry inferctltests ended Failed/);
      assert.match(cause.message, /npm error code ETIMEDOUT/);
      assert.match(cause.message, /az acr task logs/);
    } finally {
      suite.bed.arm.faults.failBuildsWith = undefined;
    }
    assert.deepEqual(suite.bed.arm.clusterNames(), []);
  });

  test('429 storms (honouring Retry-After) and 500s are retried until the deployment succeeds', async () => {
    // The retries take longer than this file's 5 s provisioning deadline, which holds across attempts:
    // this test runs on a worker with a deadline of minutes, as a real one has.
    await suite.worker.stop();
    suite.worker = await startControlWorker(taskQueue, [], {
      ...suite.workerEnv(),
      INFERCTL_AKS_PROVISION_TIMEOUT_MS: String(10 * 60_000),
    });
    try {
      await stormedDeployment();
    } finally {
      await suite.worker.stop();
      suite.worker = await startControlWorker(taskQueue, [], suite.workerEnv());
    }
  });

  async function stormedDeployment() {
    const since = suite.bed.arm.requests.length;
    suite.bed.arm.faults.throttle = { count: 4, retryAfterSeconds: 1, pathIncludes: '/managedClusters/' };
    suite.bed.arm.faults.serverErrors = { count: 3, pathIncludes: '/managedClusters/' };
    const handle = await start(uniqueName('aks-storm'));
    const outcome = await handle.result();
    assert.equal(outcome.stage, 'done');
    const calls = suite.bed.arm.requests.slice(since);
    const throttled = calls.filter((r) => r.status === 429);
    assert.equal(throttled.length, 4);
    assert.equal(calls.filter((r) => r.status === 500).length, 3);
    // After each 429 the next call to that path waited the second Retry-After asked for.
    for (const t of throttled) {
      const next = calls.find((r) => r.at > t.at && r.path === t.path && r !== t);
      assert.ok(next, 'the throttled call was retried');
      assert.ok(next.at - t.at >= 900, `waited ${next.at - t.at} ms after a 429 with Retry-After: 1`);
    }
    assert.deepEqual(suite.bed.arm.clusterNames(), []);
    recordReliability({
      test: 'aks: ARM 429 storm and 500s',
      faultsInjected: 7,
      survived: outcome.stage === 'done',
      resourcesLeaked: suite.bed.arm.clusterNames().length,
    });
  }

  test('exhausted GPU quota is refused before anything is created, naming the quota to raise', async () => {
    const quota = suite.bed.arm.quotas.standardNCASv3_T4Family!;
    const used = quota.used;
    quota.used = quota.limit - 2;
    const since = suite.bed.arm.requests.length;
    try {
      const cause = await failure(await start(uniqueName('aks-quota')));
      assert.match(cause.message, /need 4 vCPUs of "standardNCASv3_T4Family" but only 2 are free/);
      assert.match(cause.message, /Usage \+ quotas/);
    } finally {
      quota.used = used;
    }
    const created = suite.bed.arm.requests
      .slice(since)
      .filter((r) => r.method === 'PUT' && r.path.includes('managedClusters'));
    assert.deepEqual(created, [], 'no cluster was created');
  });

  test('a VM size not offered to the subscription is refused before anything is created', async () => {
    const sku = suite.bed.arm.skus.find((s) => s.name === 'Standard_NC4as_T4_v3')!;
    sku.restricted = true;
    try {
      const cause = await failure(await start(uniqueName('aks-sku'), { aks: { gpuVmSize: 'Standard_NC4as_T4_v3' } }));
      assert.match(
        cause.message,
        /Standard_NC4as_T4_v3 is not available to this subscription in eastus \(NotAvailableForSubscription\)/,
      );
    } finally {
      sku.restricted = false;
    }
    assert.deepEqual(suite.bed.arm.clusterNames(), []);
  });

  test('a cluster stuck in Updating fails provisioning after the deadline and is deleted', async () => {
    suite.bed.arm.faults.stuckUpdating = true;
    try {
      const cause = await failure(await start(uniqueName('aks-stuck')));
      assert.match(cause.message, /Cluster provisioning did not finish within 5 s \(provisioning state: Updating\)/);
    } finally {
      suite.bed.arm.faults.stuckUpdating = false;
    }
    assert.deepEqual(suite.bed.arm.clusterNames(), []);
  });

  test('the provisioning deadline counts from the first attempt: a replacement worker does not restart it', async () => {
    suite.bed.arm.faults.stuckUpdating = true;
    const name = uniqueName('aks-deadline');
    const clusterPath = `/managedClusters/inferctl-${name}`;
    try {
      const handle = await start(name);
      await eventually(
        () =>
          Promise.resolve(
            suite.bed.arm.requests.some((r) => r.method === 'PUT' && r.path.endsWith(clusterPath)) || undefined,
          ),
        'the cluster create to be sent',
      );
      await suite.worker.kill();
      const killedAt = Date.now();
      suite.worker = await startControlWorker(taskQueue, [], suite.workerEnv());
      const cause = await failure(handle);
      assert.match(cause.message, /Cluster provisioning did not finish within 5 s \(provisioning state: Updating\)/);
      // The retry comes after the 15 s heartbeat timeout, past the 5 s deadline of the first attempt: it
      // must give up at once instead of polling the stuck cluster (every 200 ms) for 5 s of its own.
      const deleteAt = suite.bed.arm.requests.find((r) => r.method === 'DELETE' && r.path.endsWith(clusterPath))!.at;
      const polls = suite.bed.arm.requests.filter(
        (r) => r.method === 'GET' && r.path.endsWith(clusterPath) && r.at > killedAt && r.at < deleteAt,
      );
      assert.ok(polls.length < 10, `the retried attempt polled the stuck cluster ${polls.length} times`);
    } finally {
      suite.bed.arm.faults.stuckUpdating = false;
    }
    assert.deepEqual(suite.bed.arm.clusterNames(), []);
  });

  test('a cluster delete that fails is retried until the cluster is gone', async () => {
    suite.bed.arm.faults.failNextDelete = true;
    const name = uniqueName('aks-delete');
    const outcome = await (await start(name)).result();
    assert.equal(outcome.stage, 'done');
    const deletes = suite.bed.arm.requests.filter(
      (r) => r.method === 'DELETE' && r.path.endsWith(`/managedClusters/inferctl-${name}`) && r.status === 202,
    );
    assert.equal(deletes.length, 2, 'one failed delete, one that worked');
    assert.deepEqual(suite.bed.arm.clusterNames(), []);
  });

  test('pods that cannot get a GPU are reported with the scheduler event, and everything is torn down', async () => {
    suite.bed.setAdvertiseGpus(false);
    try {
      const cause = await failure(await start(uniqueName('aks-nogpu')));
      assert.match(cause.message, /FailedScheduling: .*Insufficient nvidia\.com\/gpu/);
      assert.match(cause.message, /Each replica needs one GPU/);
    } finally {
      suite.bed.setAdvertiseGpus(true);
    }
    assert.deepEqual(suite.bed.arm.clusterNames(), []);
    assert.deepEqual(
      (await suite.bed.nodeNames()).filter((n) => n.startsWith('aks-')),
      [],
    );
  });

  test('a worker killed while the cluster is being created is replaced; one cluster, then none', async () => {
    const name = uniqueName('aks-kill');
    const clusterPath = `/managedClusters/inferctl-${name}`;
    const handle = await start(name, { ttlSeconds: 1 });
    await eventually(
      () =>
        Promise.resolve(
          suite.bed.arm.requests.some((r) => r.method === 'PUT' && r.path.endsWith(clusterPath)) || undefined,
        ),
      'the cluster create to be sent',
    );
    await suite.worker.kill();
    suite.worker = await startControlWorker(taskQueue, [], suite.workerEnv());
    const outcome = await handle.result();
    assert.equal(outcome.stage, 'done');
    const creates = suite.bed.arm.requests.filter(
      (r) => r.method === 'PUT' && r.path.endsWith(clusterPath) && r.status === 201,
    );
    assert.equal(creates.length, 1, 'the replacement worker adopted the cluster instead of creating another');
    assert.deepEqual(suite.bed.arm.clusterNames(), []);
    recordReliability({
      test: 'aks: control worker killed mid-provisioning',
      faultsInjected: 1,
      survived: outcome.stage === 'done' && creates.length === 1,
      resourcesLeaked: suite.bed.arm.clusterNames().length,
    });
  });
});
