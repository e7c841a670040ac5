/**
 * The local ARM endpoint refuses managed-cluster and agent-pool bodies as AKS does (pool names, dnsPrefix,
 * identity, VM sizes the region offers), with AKS's error codes, through the real SDK client; and the bodies
 * inferctl sends pass, for the longest deployment name it allows. An agent pool on its own: quota held and
 * given back, count limits, 409 while the cluster is busy or the pool is being deleted, 204 on deleting a
 * missing pool (what a GPU-pool job's retried teardown relies on). A count change (autoscaling's GPU pool):
 * a system pool never below 1, a user pool 0 to 1000, a second update while one is in progress 409, a growth
 * past the regional vCPU quota 400 QuotaExceeded with the compute provider's sentence and the count kept, and
 * inferctl's fit turning that refusal into a pool held where it is, with the reason; a size no longer
 * offered refuses any count change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { AgentPool, ManagedCluster } from '@azure/arm-containerservice';
import type { RestError } from '@azure/core-rest-pipeline';

import { aksPlan, aksSettingsFromEnv } from '../../../src/targets/aks/aks-config';
import type { AksSettings } from '../../../src/targets/aks/aks-config';
import { createAzureClients } from '../../../src/targets/aks/azure-clients';
import type { AzureClients } from '../../../src/targets/aks/azure-clients';
import { fitGpuPool } from '../../../src/targets/aks/gpu-pool-fit';
import { managedClusterBody } from '../../../src/targets/aks/managed-cluster';
import { ArmEndpoint } from '../../helpers/azure/arm-endpoint';
import { TEST_LOCATION, TEST_REGISTRY, TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION } from '../../helpers/azure/aks-testbed';
import { testTlsFromEnv } from '../../helpers/azure/test-tls';

describe('managed-cluster bodies are validated as AKS validates them', () => {
  let arm: ArmEndpoint;
  let clients: AzureClients;
  let settings: AksSettings;
  let n = 0;

  before(async () => {
    arm = await new ArmEndpoint({
      tls: testTlsFromEnv(),
      subscriptionId: TEST_SUBSCRIPTION,
      location: TEST_LOCATION,
      kubeconfig: 'apiVersion: v1\nkind: Config\n',
      registries: [`${TEST_RESOURCE_GROUP}/${TEST_REGISTRY}`],
      operationMs: 50,
    }).start();
    Object.assign(process.env, arm.workerEnv(TEST_RESOURCE_GROUP, TEST_REGISTRY));
    settings = aksSettingsFromEnv();
    clients = createAzureClients(settings);
  });
  after(() => arm?.stop());

  /** inferctl's own body for a deployment named `name`, changed by `edit`. */
  function body(name: string, edit: (b: ManagedCluster) => void = () => undefined): ManagedCluster {
    const b = managedClusterBody(aksPlan(name, 1, settings), settings, `deploy-${name}`, name);
    edit(b);
    return b;
  }

  async function put(b: ManagedCluster) {
    return clients.containerService.managedClusters.createOrUpdate(TEST_RESOURCE_GROUP, `c${++n}`, b, {
      updateIntervalInMs: 20,
    });
  }

  async function refusal(b: ManagedCluster): Promise<{ status?: number; code?: string; message: string }> {
    const err = await put(b).then(
      () => assert.fail('AKS accepted the body'),
      (e: unknown) => e as RestError,
    );
    return { status: err.statusCode, code: err.code, message: err.message };
  }

  const pools = (b: ManagedCluster) => b.agentPoolProfiles!;

  test("inferctl's body passes, for the longest deployment name allowed (40 characters)", async () => {
    const name = 'a'.repeat(40);
    const cluster = await put(body(name));
    assert.equal(cluster.provisioningState, 'Succeeded');
    assert.equal(cluster.dnsPrefix, `inferctl-${name}`);
    assert.equal(cluster.identity?.type, 'SystemAssigned');
    assert.match(cluster.identity?.principalId ?? '', /^[0-9a-f-]{36}$/);
  });

  test('agent pool names: lowercase alphanumeric starting with a letter', async () => {
    for (const bad of ['GPU', '1gpu', 'gpu-pool']) {
      const r = await refusal(body('x', (b) => (pools(b)[1]!.name = bad)));
      assert.deepEqual([r.status, r.code], [400, 'InvalidParameter'], bad);
      assert.match(r.message, /agentPoolProfile\.name is invalid.*must start with a lowercase letter/);
    }
  });

  test('agent pool names: at most 12 characters for Linux, 6 for Windows', async () => {
    let r = await refusal(body('x', (b) => (pools(b)[1]!.name = 'gpupool12345x')));
    assert.deepEqual([r.status, r.code], [400, 'InvalidParameter']);
    assert.match(r.message, /Linux agent pool name 'gpupool12345x' can not be longer than 12 characters/);
    await put(body('x', (b) => (pools(b)[1]!.name = 'gpupool12345')));
    r = await refusal(body('x', (b) => Object.assign(pools(b)[1]!, { name: 'winpool', osType: 'Windows' })));
    assert.match(r.message, /Windows agent pool name 'winpool' can not be longer than 6 characters/);
  });

  test('agent pool names: unique within the cluster', async () => {
    const r = await refusal(body('x', (b) => (pools(b)[1]!.name = 'system')));
    assert.deepEqual([r.status, r.code], [400, 'InvalidParameter']);
    assert.match(r.message, /'system' is used more than once/);
  });

  test('dnsPrefix: 1–54 letters, digits and hyphens, starting and ending alphanumeric', async () => {
    for (const bad of ['', 'a'.repeat(55), '-team', 'team-', 'team_a', 'team.a']) {
      const r = await refusal(body('x', (b) => (b.dnsPrefix = bad)));
      assert.deepEqual([r.status, r.code], [400, 'InvalidParameter'], bad);
      assert.match(r.message, /parameter dnsPrefix is invalid.*aka\.ms\/aks-naming-rules/);
    }
    await put(body('x', (b) => (b.dnsPrefix = 'a'.repeat(54))));
  });

  test('identity: a cluster without a managed identity or a service principal is refused', async () => {
    let r = await refusal(body('x', (b) => delete b.identity));
    assert.deepEqual([r.status, r.code], [400, 'InvalidParameter']);
    assert.match(
      r.message,
      /servicePrincipalProfile\.clientId is invalid.*neither a managed identity nor a service principal/,
    );
    r = await refusal(body('x', (b) => (b.identity = { type: 'UserAssigned' })));
    assert.match(r.message, /identity\.userAssignedIdentities is invalid/);
    const withSp = await put(
      body('x', (b) => {
        delete b.identity;
        b.servicePrincipalProfile = { clientId: crypto.randomUUID(), secret: 'not-a-real-secret' };
      }),
    );
    assert.equal(withSp.provisioningState, 'Succeeded');
  });

  test('vmSize: a retired size (Standard_NC6s_v3) or one the region does not offer is refused', async () => {
    let r = await refusal(body('x', (b) => (pools(b)[1]!.vmSize = 'Standard_NC6s_v3')));
    assert.deepEqual([r.status, r.code], [400, 'BadRequest']);
    assert.match(r.message, /The VM size of Standard_NC6s_v3 is not allowed in your subscription in location 'eastus'/);
    const h100 = arm.skus.find((s) => s.name === 'Standard_NC40ads_H100_v5')!;
    h100.restricted = true;
    try {
      r = await refusal(body('x', (b) => (pools(b)[1]!.vmSize = h100.name)));
      assert.deepEqual([r.status, r.code], [400, 'BadRequest']);
    } finally {
      h100.restricted = false;
    }
  });

  test('an agent pool PUT on its own is held to the same rules', async () => {
    await put(body('x'));
    const name = `c${n}`;
    const pool = (p: AgentPool) =>
      clients.containerService.agentPools.createOrUpdate(TEST_RESOURCE_GROUP, name, p.name ?? 'extra', p, {
        updateIntervalInMs: 20,
      });
    const err = await pool({ name: 'Extra', vmSize: 'Standard_D2s_v3', count: 1, mode: 'User' }).then(
      () => assert.fail('accepted'),
      (e: unknown) => e as RestError,
    );
    assert.deepEqual([err.statusCode, err.code], [400, 'InvalidParameter']);
    const dup = await pool({ name: 'system', vmSize: 'Standard_NC6s_v3', count: 1, mode: 'User' }).then(
      () => assert.fail('accepted'),
      (e: unknown) => e as RestError,
    );
    assert.deepEqual([dup.statusCode, dup.code], [400, 'BadRequest'], 'a PUT of an existing pool may keep its name');
    const ok = await pool({ name: 'extra', vmSize: 'Standard_NC4as_T4_v3', count: 1, mode: 'User' });
    assert.equal(ok.provisioningState, 'Succeeded');
  });
  test('an agent pool holds its quota until deleted; busy and being-deleted pools are 409; a missing one deletes as 204', async () => {
    await put(body('lifecycle'));
    const cluster = `c${n}`;
    const pools = clients.containerService.agentPools;
    const t4 = arm.quotas['standardNCASv3_T4Family']!;
    const gpuPool = (name: string, count: number): AgentPool => ({
      name,
      vmSize: 'Standard_NC4as_T4_v3', // 4 vCPUs
      count,
      mode: 'User',
    });
    const refusedWith = (p: Promise<unknown>) =>
      p.then(
        () => assert.fail('accepted'),
        (e: unknown) => e as RestError,
      );

    const usedBefore = t4.used;
    const tooMany = Math.floor((t4.limit - t4.used) / 4) + 1;
    const over = await refusedWith(pools.createOrUpdate(TEST_RESOURCE_GROUP, cluster, 'big', gpuPool('big', tooMany)));
    assert.deepEqual([over.statusCode, over.code], [400, 'InsufficientVCPUQuota']);
    assert.match(
      over.message,
      /Insufficient vcpu quota requested \d+, remaining \d+ for family standardNCASv3_T4Family/,
    );

    const tooLarge = await refusedWith(
      pools.createOrUpdate(TEST_RESOURCE_GROUP, cluster, 'huge', gpuPool('huge', 1001)),
    );
    assert.equal(tooLarge.statusCode, 400, 'count over 1000');

    // A create in progress makes the cluster busy for every other pool operation.
    const creating = await pools.beginCreateOrUpdate(TEST_RESOURCE_GROUP, cluster, 'gpu', gpuPool('gpu', 1), {
      updateIntervalInMs: 20,
    });
    const busy = await refusedWith(pools.createOrUpdate(TEST_RESOURCE_GROUP, cluster, 'other', gpuPool('other', 1)));
    assert.deepEqual([busy.statusCode, busy.code], [409, 'OperationNotAllowed']);
    assert.match(busy.message, /in progress operation on managed cluster/);
    assert.equal((await creating.pollUntilDone()).provisioningState, 'Succeeded');
    assert.equal(t4.used, usedBefore + 4, 'the pool holds count × vCPUs of its family');

    // A pool being deleted cannot be updated; once deleted it is gone and its quota given back.
    const deleting = await pools.beginDelete(TEST_RESOURCE_GROUP, cluster, 'gpu', { updateIntervalInMs: 20 });
    const update = await refusedWith(pools.createOrUpdate(TEST_RESOURCE_GROUP, cluster, 'gpu', gpuPool('gpu', 2)));
    assert.deepEqual([update.statusCode, update.code], [409, 'OperationNotAllowed']);
    assert.match(update.message, /agent pool 'gpu' is being deleted/);
    await deleting.pollUntilDone();
    const gone = await refusedWith(pools.get(TEST_RESOURCE_GROUP, cluster, 'gpu'));
    assert.equal(gone.statusCode, 404);
    assert.equal(t4.used, usedBefore, 'the quota is given back');

    // Deleting it again answers 204, which the SDK's poller takes as done: how a retried teardown is idempotent.
    await pools.beginDeleteAndWait(TEST_RESOURCE_GROUP, cluster, 'gpu', { updateIntervalInMs: 20 });
  });

  test('a count change: bounds, one update at a time, QuotaExceeded past the quota (the fit holds the pool), sizes offered', async () => {
    const name = `fit${n + 1}`;
    await put(body(name));
    const cluster = `c${n}`;
    const pools = clients.containerService.agentPools;
    const refusedWith = (p: Promise<unknown>) =>
      p.then(
        () => assert.fail('accepted'),
        (e: unknown) => e as RestError,
      );
    const system = await pools.get(TEST_RESOURCE_GROUP, cluster, 'system');
    const toZero = await refusedWith(
      pools.createOrUpdate(TEST_RESOURCE_GROUP, cluster, 'system', { ...system, count: 0 }),
    );
    assert.equal(toZero.statusCode, 400, 'a system pool keeps a node');
    const gpu = await pools.get(TEST_RESOURCE_GROUP, cluster, 'gpu');
    const over = await refusedWith(pools.createOrUpdate(TEST_RESOURCE_GROUP, cluster, 'gpu', { ...gpu, count: 1001 }));
    assert.equal(over.statusCode, 400, 'a user pool holds at most 1000 nodes');

    // An update in progress: a second one is refused with the operation it waits for.
    const first = await pools.beginCreateOrUpdate(
      TEST_RESOURCE_GROUP,
      cluster,
      'gpu',
      { ...gpu, count: 2 },
      {
        updateIntervalInMs: 20,
      },
    );
    const second = await refusedWith(pools.createOrUpdate(TEST_RESOURCE_GROUP, cluster, 'gpu', { ...gpu, count: 3 }));
    assert.deepEqual([second.statusCode, second.code], [409, 'OperationNotAllowed']);
    assert.match(second.message, /in progress update agent pool operation on agent pool 'gpu'/);
    assert.equal((await first.pollUntilDone()).count, 2);

    // Past the family's quota (4 vCPUs a node): refused as the compute provider refuses it, the count kept.
    const t4 = arm.quotas['standardNCASv3_T4Family']!;
    const limit = t4.limit;
    t4.limit = t4.used + 4; // room for one more node, not two
    try {
      const grown = await pools.get(TEST_RESOURCE_GROUP, cluster, 'gpu');
      const quota = await refusedWith(
        pools.createOrUpdate(TEST_RESOURCE_GROUP, cluster, 'gpu', { ...grown, count: 4 }),
      );
      assert.deepEqual([quota.statusCode, quota.code], [400, 'QuotaExceeded']);
      assert.match(
        quota.message,
        /exceeding approved standardNCASv3_T4Family Cores quota.*Current Limit: \d+, Current Usage: \d+, Additional Required: 8/,
      );
      assert.equal((await pools.get(TEST_RESOURCE_GROUP, cluster, 'gpu')).count, 2, 'the count kept');

      // inferctl's fit: room for 4 replicas asked, the pool held at 2 nodes with the quota as the reason.
      const plan = { ...aksPlan(name, 2, settings), clusterName: cluster };
      const owner = { id: `deploy-${name}`, environment: settings.environment };
      const scope = { clients, settings, plan, owner, name, namespace: plan.namespace };
      const never = {
        poolGpus: () => Promise.reject(new Error('not an adopted cluster')),
        onCluster: () => Promise.reject(new Error('no pod wait when growing')),
      };
      const held = await fitGpuPool(scope, { replicas: 4, maxReplicas: 4, minReplicas: 1 }, never);
      assert.deepEqual([held.previousNodes, held.nodes, held.room, held.maxNodes], [2, 2, 2, 4]);
      assert.match(held.held ?? '', /^quota: QuotaExceeded .*Current Limit/);
      // Within the quota it grows (to 3), and --max-gpu-nodes caps it there.
      const capped = await fitGpuPool(scope, { replicas: 4, maxReplicas: 4, minReplicas: 1, maxNodes: 3 }, never);
      assert.deepEqual([capped.nodes, capped.room, capped.held], [3, 3, '--max-gpu-nodes 3']);
      assert.equal((await pools.get(TEST_RESOURCE_GROUP, cluster, 'gpu')).count, 3);
    } finally {
      t4.limit = limit;
    }

    // A size no longer offered (retired, or withdrawn from the subscription): its pool cannot change count.
    const size = arm.skus.find((k) => k.name === 'Standard_NC4as_T4_v3')!;
    size.restricted = true;
    try {
      const now = await pools.get(TEST_RESOURCE_GROUP, cluster, 'gpu');
      const retired = await refusedWith(
        pools.createOrUpdate(TEST_RESOURCE_GROUP, cluster, 'gpu', { ...now, count: 1 }),
      );
      assert.deepEqual([retired.statusCode, retired.code], [400, 'BadRequest']);
      assert.match(retired.message, /Standard_NC4as_T4_v3 is not allowed in your subscription/);
    } finally {
      size.restricted = false;
    }
  });
});
