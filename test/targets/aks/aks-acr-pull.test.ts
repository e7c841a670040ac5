/**
 * AcrPull: a cluster's kubelet pulls from ACR only when its identity holds AcrPull on the registry. The
 * local ARM endpoint enforces that (and Azure's role-assignment rules) against the real SDK clients; the
 * product grants it to clusters it creates and checks it on clusters it is given. The last test runs the
 * kubelet side: the old behaviour (manifests applied, nothing granted) ends in ImagePullBackOff.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { RestError } from '@azure/core-rest-pipeline';

import { InvalidInputError } from '../../../src/errors';
import { FailureType } from '../../../src/shared/failure-types';
import {
  ACR_PULL_ROLE,
  acrPullAssignmentBody,
  acrPullAssignmentName,
  assertCanPull,
  grantAcrPull,
  registryResourceId,
} from '../../../src/targets/aks/acr-pull';
import { aksPlan, aksSettingsFromEnv } from '../../../src/targets/aks/aks-config';
import type { AksSettings } from '../../../src/targets/aks/aks-config';
import { createAzureClients } from '../../../src/targets/aks/azure-clients';
import type { AzureClients } from '../../../src/targets/aks/azure-clients';
import { kubeConfigFromYaml } from '../../../src/targets/aks/kubernetes-deployment';
import { scoringManifests } from '../../../src/targets/aks/kubernetes-manifests';
import { managedClusterBody } from '../../../src/targets/aks/managed-cluster';
import { startAksTestbed, TEST_REGISTRY, TEST_RESOURCE_GROUP } from '../../helpers/azure/aks-testbed';
import type { AksTestbed } from '../../helpers/azure/aks-testbed';
import { eventually, uniqueName } from '../../helpers/workers';

const IMAGE = `${TEST_REGISTRY}.azurecr.io/inferctl-scorer:${'ab'.repeat(32)}`;

async function refused(p: Promise<unknown>): Promise<RestError> {
  return p.then(
    () => assert.fail('Azure accepted it'),
    (e: unknown) => e as RestError,
  );
}

describe('AcrPull for the kubelet identity', () => {
  let bed: AksTestbed;
  let clients: AzureClients;
  let settings: AksSettings;

  before(async () => {
    bed = await startAksTestbed({ operationMs: 100 });
    Object.assign(process.env, bed.workerEnv());
    settings = aksSettingsFromEnv();
    clients = createAzureClients(settings);
  });
  after(() => bed?.stop());

  /** What the old code did: create the cluster and nothing more. */
  async function createCluster(name: string) {
    // No GPU nodes: the kubelet test below must be the only place its pod can be scheduled.
    const plan = aksPlan(name, 1, settings, { gpuNodeCount: 0 });
    return clients.containerService.managedClusters.createOrUpdate(
      plan.resourceGroup,
      plan.clusterName,
      managedClusterBody(plan, settings, `deploy-${name}`, name),
      { updateIntervalInMs: 50 },
    );
  }

  test('a created cluster has a kubelet identity; it cannot pull until inferctl grants AcrPull, once', async () => {
    const name = uniqueName('pull');
    const cluster = await createCluster(name);
    const kubelet = cluster.identityProfile?.kubeletidentity;
    assert.match(kubelet?.objectId ?? '', /^[0-9a-f-]{36}$/);
    assert.match(kubelet?.clientId ?? '', /^[0-9a-f-]{36}$/);
    assert.match(kubelet?.resourceId ?? '', /\/userAssignedIdentities\/inferctl-.*-agentpool$/);

    const before = bed.arm.canPull(`inferctl-${name}`, IMAGE);
    assert.equal(before.ok, false);
    assert.match(before.ok ? '' : before.reason, /401 Unauthorized/);

    const first = await grantAcrPull(clients, settings, cluster);
    const again = await grantAcrPull(clients, settings, cluster);
    assert.deepEqual([first.created, again.created], [true, false], 'the retry met 409 RoleAssignmentExists');
    assert.equal(first.name, acrPullAssignmentName(cluster.id!, registryResourceId(settings), kubelet!.objectId!));
    assert.equal(bed.arm.roles.list().filter((a) => a.principalId === kubelet?.objectId).length, 1);
    const after = bed.arm.canPull(`inferctl-${name}`, IMAGE);
    assert.match(after.ok ? '' : after.reason, /manifest unknown/, 'authorized now; the image just is not built');
  });

  test('role assignments are refused as Azure refuses them', async () => {
    const cluster = await createCluster(uniqueName('rules'));
    const principal = cluster.identityProfile!.kubeletidentity!.objectId!;
    const scope = registryResourceId(settings).slice(1);
    const ra = clients.authorization.roleAssignments;
    const body = acrPullAssignmentBody(settings.subscriptionId, principal);

    let err = await refused(ra.create(scope, 'not-a-guid', body));
    assert.deepEqual([err.statusCode, err.code], [400, 'InvalidRoleAssignmentId']);
    err = await refused(
      ra.create(scope, crypto.randomUUID(), {
        ...body,
        roleDefinitionId: body.roleDefinitionId.replace(/.{4}$/, '0000'),
      }),
    );
    assert.deepEqual([err.statusCode, err.code], [400, 'RoleDefinitionDoesNotExist']);
    err = await refused(ra.create(scope, crypto.randomUUID(), { ...body, principalId: crypto.randomUUID() }));
    assert.deepEqual([err.statusCode, err.code], [400, 'PrincipalNotFound']);

    await ra.create(scope, crypto.randomUUID(), body);
    err = await refused(ra.create(scope, crypto.randomUUID(), body));
    assert.deepEqual([err.statusCode, err.code], [409, 'RoleAssignmentExists'], 'same principal, role and scope');

    const listed = [];
    for await (const a of ra.listForScope(scope, { filter: `principalId eq '${principal}'` })) listed.push(a);
    assert.deepEqual(
      listed.map((a) => a.roleDefinitionId?.split('/').pop()),
      [ACR_PULL_ROLE],
    );

    bed.arm.roles.callerMayAssignRoles = false;
    try {
      err = await refused(ra.create(scope, crypto.randomUUID(), { ...body, roleDefinitionId: body.roleDefinitionId }));
      assert.deepEqual([err.statusCode, err.code], [403, 'AuthorizationFailed']);
      // The product says which role the worker lacks.
      const other = await createCluster(uniqueName('noperm'));
      const denied = await grantAcrPull(clients, settings, other).then(
        () => assert.fail('granted without permission'),
        (e: unknown) => e as Error,
      );
      assert.match(denied.message, /Role Based Access Control Administrator/);
    } finally {
      bed.arm.roles.callerMayAssignRoles = true;
    }
  });

  test('an existing cluster without AcrPull is refused at preflight with the az aks update command', async () => {
    await bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'team-unattached', {});
    const plan = aksPlan('x', 1, settings, { cluster: 'team-unattached' });
    const cluster = await clients.containerService.managedClusters.get(TEST_RESOURCE_GROUP, 'team-unattached');
    const err = await assertCanPull(clients, settings, plan, cluster).then(
      () => assert.fail('the preflight passed'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof InvalidInputError);
    assert.equal(err.type, FailureType.AksAcrPullMissing);
    assert.ok(
      err.message.includes(
        `az aks update -n team-unattached -g ${TEST_RESOURCE_GROUP} --attach-acr ${registryResourceId(settings)}`,
      ),
      err.message,
    );

    bed.arm.attachRegistry('team-unattached', `${TEST_RESOURCE_GROUP}/${TEST_REGISTRY}`);
    await assertCanPull(clients, settings, plan, cluster);
  });

  test('the kubelet: pods of a cluster without AcrPull sit in ImagePullBackOff (401), and start once granted', async () => {
    const name = uniqueName('backoff');
    const cluster = `team-${name}`;
    await bed.arm.seedCluster(TEST_RESOURCE_GROUP, cluster, {}, 1);
    const kc = kubeConfigFromYaml(bed.controlPlane.kubeconfig);
    const objects = scoringManifests({
      namespace: `inferctl-${name}`,
      name,
      ownerId: `deploy-${name}`,
      image: IMAGE,
      replicas: 1,
      topK: 1,
      servicePort: 1,
    });
    await apply(kc, objects);
    const refusal = await eventually(
      () => Promise.resolve(bed.kubelet.events.find((e) => e.startsWith(`ImagePullBackOff inferctl-${name}/${name}`))),
      'the kubelet to refuse the pull',
      60_000,
    );
    assert.match(refusal, /oauth2\/token\?scope=repository%3Ainferctl-scorer%3Apull.*401 Unauthorized/);
    assert.ok(!bed.kubelet.events.some((e) => e.startsWith(`started inferctl-${name}/`)), 'no container started');

    bed.arm.attachRegistry(cluster, `${TEST_RESOURCE_GROUP}/${TEST_REGISTRY}`);
    await eventually(
      () =>
        Promise.resolve(
          bed.kubelet.events.find((e) => e.includes(`inferctl-${name}/${name}`) && e.includes('manifest unknown')),
        ),
      'the pull to be authorized (the image itself was never built here)',
      60_000,
    );
  });
});

async function apply(kc: ReturnType<typeof kubeConfigFromYaml>, objects: KubernetesObject[]) {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  for (const o of objects) {
    const body = o as never;
    const namespace = o.metadata?.namespace ?? '';
    if (o.kind === 'Namespace') await core.createNamespace({ body });
    else if (o.kind === 'Secret') await core.createNamespacedSecret({ namespace, body });
    else if (o.kind === 'Deployment') await apps.createNamespacedDeployment({ namespace, body });
    else if (o.kind === 'Service') await core.createNamespacedService({ namespace, body });
  }
}
