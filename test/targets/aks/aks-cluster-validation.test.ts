/**
 * The local ARM endpoint refuses managed-cluster and agent-pool bodies as AKS does (pool names, dnsPrefix,
 * identity, VM sizes the region offers), with AKS's error codes, through the real SDK client; and the bodies
 * inferctl sends pass, for the longest deployment name it allows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { AgentPool, ManagedCluster } from '@azure/arm-containerservice';
import type { RestError } from '@azure/core-rest-pipeline';

import { aksPlan, aksSettingsFromEnv } from '../../../src/targets/aks/aks-config';
import type { AksSettings } from '../../../src/targets/aks/aks-config';
import { createAzureClients } from '../../../src/targets/aks/azure-clients';
import type { AzureClients } from '../../../src/targets/aks/azure-clients';
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
});
