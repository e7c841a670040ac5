/**
 * What the local ARM endpoint enforces on an agent pool's count, mode and autoscaler, as AKS does, through the
 * real SDK client (scale to zero relies on it): a User pool scales to 0 nodes and back, kept; a System pool
 * never goes below 1 node; the cluster's last System pool can neither turn User nor be deleted; with
 * enableAutoScaling, minCount and maxCount are required, ordered, at least 1 on a System pool, and bound the
 * count; without it they must be left out.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { AgentPool } from '@azure/arm-containerservice';
import type { RestError } from '@azure/core-rest-pipeline';

import { aksPlan, aksSettingsFromEnv } from '../../../src/targets/aks/aks-config';
import type { AksSettings } from '../../../src/targets/aks/aks-config';
import { createAzureClients } from '../../../src/targets/aks/azure-clients';
import type { AzureClients } from '../../../src/targets/aks/azure-clients';
import { managedClusterBody } from '../../../src/targets/aks/managed-cluster';
import { ArmEndpoint } from '../../helpers/azure/arm-endpoint';
import { TEST_LOCATION, TEST_REGISTRY, TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION } from '../../helpers/azure/aks-testbed';
import { testTlsFromEnv } from '../../helpers/azure/test-tls';

describe('agent pool count, mode and autoscaler rules, as AKS enforces them', () => {
  let arm: ArmEndpoint;
  let clients: AzureClients;
  let settings: AksSettings;
  const cluster = 'scaling';

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
    const body = managedClusterBody(aksPlan(cluster, 1, settings), settings, `deploy-${cluster}`, cluster);
    await clients.containerService.managedClusters.createOrUpdate(TEST_RESOURCE_GROUP, cluster, body, {
      updateIntervalInMs: 20,
    });
  });
  after(() => arm?.stop());

  const get = (pool: string) => clients.containerService.agentPools.get(TEST_RESOURCE_GROUP, cluster, pool);
  const put = (pool: string, edit: (p: AgentPool) => void) =>
    get(pool).then((p) => {
      edit(p);
      return clients.containerService.agentPools.createOrUpdate(TEST_RESOURCE_GROUP, cluster, pool, p, {
        updateIntervalInMs: 20,
      });
    });
  const refused = (p: Promise<unknown>) =>
    p.then(
      () => assert.fail('AKS accepted it'),
      (e: unknown) => e as RestError,
    );

  test('a User pool scales to 0 nodes and back, and stays', async () => {
    assert.equal((await put('gpu', (p) => (p.count = 0))).count, 0);
    const atZero = await get('gpu');
    assert.deepEqual([atZero.count, atZero.mode, atZero.provisioningState], [0, 'User', 'Succeeded']);
    assert.equal((await put('gpu', (p) => (p.count = 1))).count, 1);
  });

  test('a System pool keeps at least 1 node, and the last one stays System and is not deleted', async () => {
    const zero = await refused(put('system', (p) => (p.count = 0)));
    assert.deepEqual([zero.statusCode, zero.code], [400, 'InvalidParameter']);
    assert.match(zero.message, /count 0 is outside 1–1000/);
    const user = await refused(put('system', (p) => (p.mode = 'User')));
    assert.deepEqual([user.statusCode, user.code], [400, 'OperationNotAllowed']);
    assert.match(user.message, /last System mode pool/);
    const gone = await refused(
      clients.containerService.agentPools.delete(TEST_RESOURCE_GROUP, cluster, 'system', { updateIntervalInMs: 20 }),
    );
    assert.deepEqual([gone.statusCode, gone.code], [400, 'OperationNotAllowed']);
    assert.equal((await get('system')).count, 1, 'unchanged');
  });

  test('the autoscaler: bounds required and ordered, ≥ 1 on a System pool, count within them; none without it', async () => {
    const noBounds = await refused(put('gpu', (p) => (p.enableAutoScaling = true)));
    assert.deepEqual([noBounds.statusCode, noBounds.code], [400, 'InvalidParameter']);
    assert.match(noBounds.message, /minCount and maxCount are required/);
    const reversed = await refused(
      put('gpu', (p) => Object.assign(p, { enableAutoScaling: true, minCount: 3, maxCount: 1 })),
    );
    assert.match(reversed.message, /0 <= minCount <= maxCount <= 1000/);
    const systemZero = await refused(
      put('system', (p) => Object.assign(p, { enableAutoScaling: true, minCount: 0, maxCount: 2 })),
    );
    assert.match(systemZero.message, /1 <= minCount/);
    const outside = await refused(
      put('gpu', (p) => Object.assign(p, { enableAutoScaling: true, minCount: 2, maxCount: 3, count: 1 })),
    );
    assert.match(outside.message, /count 1 is outside minCount–maxCount \(2–3\)/);
    const stray = await refused(
      put('gpu', (p) => Object.assign(p, { enableAutoScaling: false, minCount: 0, maxCount: 2 })),
    );
    assert.match(stray.message, /must be null when enableAutoScaling is false/);
    const ok = await put('gpu', (p) =>
      Object.assign(p, { enableAutoScaling: true, minCount: 0, maxCount: 2, count: 0 }),
    );
    assert.deepEqual(
      [ok.enableAutoScaling, ok.minCount, ok.maxCount, ok.count],
      [true, 0, 2, 0],
      'a User pool may autoscale from 0',
    );
  });
});
