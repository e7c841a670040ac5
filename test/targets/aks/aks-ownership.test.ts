/**
 * Teardown deletes only what this deployment made, and "this deployment" is a workflow of this
 * installation: attacks on that, each refused or contained.
 *
 * - shared-group-teardown: two deployments put into one `--create-resource-group` group; the first one's
 *   teardown deletes its cluster and leaves the group (deleting a group deletes everything in it, as the
 *   ARM double does), with the second one's cluster serving. The janitor, too, keeps a group that holds
 *   another owner's resources.
 * - foreign-owner: a second installation (another Temporal namespace) deploys the same name, so its
 *   workflow id is the same: it must neither adopt the first one's cluster nor its namespace in a user's
 *   cluster, and its failure's teardown must delete neither.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { CoreV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeployInput, DeployOutcome } from '../../../src/shared/deploy-types';
import { FailureType } from '../../../src/shared/failure-types';
import type { JanitorReport } from '../../../src/shared/janitor-types';
import { environmentOf } from '../../../src/targets/aks/environment-tag';
import { kubeConfigFromYaml } from '../../../src/targets/aks/kubernetes-deployment';
import { connectionSettings } from '../../../src/temporal/connection';
import { deploy, statusQuery, teardownSignal } from '../../../workflows/deploy';
import { janitor } from '../../../workflows/janitor';
import { TEST_REGISTRY, TEST_RESOURCE_GROUP } from '../../helpers/azure/aks-testbed';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { otherInstallation } from '../../helpers/azure/other-installation';
import { expectWorkflowFailure } from '../../helpers/failure-chain';
import { recordReliability } from '../../helpers/reliability';
import { eventually, uniqueName } from '../../helpers/workers';

describe('aks ownership: teardown deletes only what this deployment of this installation made', () => {
  const suite = aksSuite('aks-owner-tq');

  function start(input: Partial<DeployInput> & { name: string }, via?: { client: Client; queue: string }) {
    return (via?.client ?? suite.client).workflow.start(deploy, {
      taskQueue: via?.queue ?? suite.taskQueue,
      workflowId: deployWorkflowId(input.name),
      args: [
        {
          modelPath: suite.assets.modelPath,
          target: 'aks',
          replicas: 1,
          ttlSeconds: 3600,
          timings: { readyTimeoutSeconds: 90, readinessPollSeconds: 0.2 },
          ...input,
          aks: { insecureHttp: true, ...input.aks },
        } satisfies DeployInput,
      ],
    });
  }

  async function serving(handle: Awaited<ReturnType<typeof start>>) {
    return eventually(
      async () => {
        const s = await handle.query(statusQuery);
        if (s.stage === 'failed') throw new Error(`deployment failed: ${s.lastError}`);
        return s.stage === 'serving' ? s : undefined;
      },
      `${handle.workflowId} to serve`,
      180_000,
    );
  }

  async function tearDown(handle: Awaited<ReturnType<typeof start>>): Promise<DeployOutcome> {
    await handle.signal(teardownSignal, { reason: 'test done' });
    return handle.result();
  }

  test('shared-group-teardown: A’s teardown leaves the group and B’s cluster; the janitor keeps such a group too', async () => {
    const group = uniqueName('shared-rg');
    const a = uniqueName('a');
    const b = uniqueName('b');
    const ha = await start({ name: a, aks: { resourceGroup: group, createResourceGroup: true } });
    await serving(ha);
    assert.equal(suite.bed.arm.resourceGroups.get(group)?.tags['inferctl-owner'], deployWorkflowId(a));
    const hb = await start({ name: b, aks: { resourceGroup: group, createResourceGroup: true } });
    await serving(hb);

    const outcome = await tearDown(ha);
    assert.equal(outcome.stage, 'done');
    assert.deepEqual(
      outcome.teardownRemoved?.filter((r) => !r.startsWith('AcrPull')),
      [`namespace inferctl-${a}`, `cluster inferctl-${a}`],
      'not the group',
    );
    assert.ok(suite.bed.arm.resourceGroups.has(group), 'the group stays: B’s cluster is in it');
    assert.deepEqual(
      suite.bed.arm.clusterNames().filter((n) => n.endsWith(a) || n.endsWith(b)),
      [`inferctl-${b}`],
    );
    const bNodes = (await suite.bed.nodeNames()).filter((n) => n.startsWith('aks-gpu-'));
    assert.ok(bNodes.length >= 1, 'B’s GPU node is still there');
    assert.equal((await hb.query(statusQuery)).stage, 'serving', 'B serves on');

    // B did not create the group, so its teardown leaves it too; A's workflow is closed: the janitor takes the
    // group once nothing else is in it.
    assert.deepEqual(
      (await tearDown(hb)).teardownRemoved?.filter((r) => !r.startsWith('AcrPull')),
      [`namespace inferctl-${b}`, `cluster inferctl-${b}`],
    );
    assert.ok(suite.bed.arm.resourceGroups.has(group));

    // A closed owner's group that someone else's cluster was put into: the janitor leaves it.
    const ours = environmentOf(connectionSettings());
    const kept = uniqueName('kept-rg');
    suite.bed.arm.resourceGroups.set(kept, {
      name: kept,
      location: 'eastus',
      tags: { 'inferctl-owner': 'deploy-long-gone', 'inferctl-environment': ours },
    });
    await suite.bed.arm.seedCluster(kept, 'team-cluster', { team: 'research' });
    const report: JanitorReport = await suite.client.workflow.execute(janitor, {
      taskQueue: suite.taskQueue,
      workflowId: uniqueName('janitor'),
      args: [{}],
    });
    assert.ok(report.deleted.includes(`resource group ${group}`), JSON.stringify(report.deleted));
    assert.ok(!suite.bed.arm.resourceGroups.has(group), 'the empty group of a closed owner is deleted');
    assert.ok(!report.deleted.includes(`resource group ${kept}`), JSON.stringify(report.deleted));
    assert.ok(suite.bed.arm.resourceGroups.has(kept), 'a group holding another owner’s cluster stays');
    assert.ok(suite.bed.arm.clusterNames().includes('team-cluster'));
    recordReliability({
      test: 'aks shared resource group: teardown and janitor keep other deployments’ clusters',
      faultsInjected: 0,
      survived: true,
      attack: 'shared-group-teardown',
      attacksTried: 2,
      attacksRefused: 2,
      resourcesLeaked: 0,
    });
  });

  test('a name deployed, torn down and deployed again serves; the janitor deletes an AcrPull grant whose cluster is gone', async () => {
    const name = uniqueName('again');
    const grants = () =>
      suite.bed.arm.roles.list().filter((a) => (a.description ?? '').includes(`/managedClusters/inferctl-${name};`));
    const first = await start({ name });
    await serving(first);
    assert.equal(grants().length, 1, 'AcrPull for the kubelet identity, described with its cluster');
    const firstGrant = grants()[0]!.name;
    const done = await tearDown(first);
    assert.ok(done.teardownRemoved?.includes(`AcrPull role assignment ${firstGrant} on registry ${TEST_REGISTRY}`));
    assert.deepEqual(grants(), [], 'teardown deleted the grant with the cluster');

    // The same name again: a new cluster with a new kubelet identity, and so a new grant.
    const second = await start({ name });
    await serving(second);
    assert.equal(grants().length, 1);
    assert.notEqual(grants()[0]!.name, firstGrant);

    // Terminated (no teardown): the janitor deletes the cluster, then (its identity gone) the grant.
    await second.terminate('simulating an operator terminating the workflow');
    const sweep = (): Promise<JanitorReport> =>
      suite.client.workflow.execute(janitor, {
        taskQueue: suite.taskQueue,
        workflowId: uniqueName('janitor'),
        args: [{}],
      });
    assert.ok((await sweep()).deleted.includes(`cluster inferctl-${name}`));
    const grant = grants()[0]!.name;
    const report = await sweep();
    assert.ok(report.deleted.includes(`role assignment ${grant} in cluster inferctl-${name}`), report.deleted.join());
    assert.deepEqual(grants(), []);
  });

  test('foreign-owner: another installation’s same-named deployment adopts and deletes neither cluster nor namespace', async () => {
    const other = await otherInstallation(suite.client, suite.workerEnv());
    const ours = environmentOf(connectionSettings());
    try {
      // Its own cluster: the other installation's deploy-<name> is refused at provision and deletes nothing.
      const name = uniqueName('same');
      const mine = await start({ name });
      await serving(mine);
      const theirs = await start({ name }, other);
      const { root } = await expectWorkflowFailure(theirs);
      assert.equal(root.type, FailureType.AksClusterNameInUse);
      assert.match(root.message, new RegExp(`belongs to deploy-${name} of ${ours.replace(/[.]/g, '\\.')}`));
      assert.ok(suite.bed.arm.clusterNames().includes(`inferctl-${name}`), 'the cluster is still there');
      assert.equal(suite.bed.arm.clusterTags(`inferctl-${name}`)?.['inferctl-environment'], ours);
      assert.equal((await mine.query(statusQuery)).stage, 'serving');

      // A user's cluster both deploy into: the namespace is checked before anything is applied to it.
      const registry = `${TEST_RESOURCE_GROUP}/${TEST_REGISTRY}`;
      await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'team-shared', { team: 'research' }, 2, [registry]);
      const tenant = uniqueName('tenant');
      const mineIn = await start({ name: tenant, aks: { cluster: 'team-shared' } });
      await serving(mineIn);
      const core = kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig).makeApiClient(CoreV1Api);
      const before = (await core.readNamespace({ name: `inferctl-${tenant}` })).metadata!;
      const keyBefore = (
        await core.readNamespacedSecret({ name: `${tenant}-api-key`, namespace: `inferctl-${tenant}` })
      ).data?.['api-key'];
      const theirsIn = await start({ name: tenant, aks: { cluster: 'team-shared' } }, other);
      const refused = await expectWorkflowFailure(theirsIn);
      assert.equal(refused.root.type, FailureType.AksNamespaceInUse);
      const after = (await core.readNamespace({ name: `inferctl-${tenant}` })).metadata!;
      assert.equal(after.uid, before.uid, 'the namespace was not deleted by the other installation’s teardown');
      assert.deepEqual(after.annotations, before.annotations, 'nor re-annotated');
      assert.equal(after.annotations?.['inferctl.dev/environment'], ours);
      const keyAfter = (await core.readNamespacedSecret({ name: `${tenant}-api-key`, namespace: `inferctl-${tenant}` }))
        .data?.['api-key'];
      assert.equal(keyAfter, keyBefore);
      assert.equal((await mineIn.query(statusQuery)).stage, 'serving');

      assert.equal((await tearDown(mine)).stage, 'done');
      assert.equal((await tearDown(mineIn)).stage, 'done');
      recordReliability({
        test: 'aks foreign owner: a second installation with the same workflow id',
        faultsInjected: 0,
        survived: true,
        attack: 'foreign-owner',
        attacksTried: 2,
        attacksRefused: 2,
        resourcesLeaked: 0,
      });
    } finally {
      await other.worker.stop();
    }
  });
});
