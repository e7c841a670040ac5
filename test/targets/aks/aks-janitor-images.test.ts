/**
 * The janitor deletes a scoring image only when no Deployment in any cluster of the subscription runs it:
 * a cluster in the middle of an upgrade (Upgrading, Updating) still runs its pods and is read like any
 * other, and a cluster whose Deployments cannot be read at all keeps every image.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeployInput } from '../../../src/shared/deploy-types';
import type { JanitorReport } from '../../../src/shared/janitor-types';
import { deploy, statusQuery, teardownSignal } from '../../../workflows/deploy';
import { janitor } from '../../../workflows/janitor';
import { TEST_REGISTRY, TEST_RESOURCE_GROUP } from '../../helpers/azure/aks-testbed';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { recordReliability } from '../../helpers/reliability';
import { eventually, uniqueName } from '../../helpers/workers';

describe('janitor: images in use in clusters it cannot fully read', () => {
  // No grace for unused images: only being in use keeps one.
  const suite = aksSuite('aks-janitor-img-tq', { INFERCTL_JANITOR_IMAGE_GRACE_MS: '1' });

  const sweep = (): Promise<JanitorReport> =>
    suite.client.workflow.execute(janitor, {
      taskQueue: suite.taskQueue,
      workflowId: uniqueName('janitor-dry'),
      args: [{ dryRun: true }],
    });
  const unusedImages = (r: JanitorReport) => r.orphans.filter((o) => o.kind === 'image').map((o) => o.name);

  test('an Upgrading or Updating cluster’s images are in use; an unreadable cluster keeps every image', async () => {
    const registry = `${TEST_RESOURCE_GROUP}/${TEST_REGISTRY}`;
    await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'team-upgrading', { team: 'research' }, 1, [registry]);
    const name = uniqueName('upg');
    const handle = await suite.client.workflow.start(deploy, {
      taskQueue: suite.taskQueue,
      workflowId: deployWorkflowId(name),
      args: [
        {
          name,
          modelPath: suite.assets.modelPath,
          target: 'aks',
          replicas: 1,
          ttlSeconds: 3600,
          timings: { readinessPollSeconds: 0.2 },
          aks: { cluster: 'team-upgrading', insecureHttp: true },
        } satisfies DeployInput,
      ],
    });
    const status = await eventually(
      async () => {
        const s = await handle.query(statusQuery);
        if (s.stage === 'failed') throw new Error(`deployment failed: ${s.lastError}`);
        return s.stage === 'serving' ? s : undefined;
      },
      `${name} to serve`,
      180_000,
    );
    const inUse = status.imageRef!.replace(`${TEST_REGISTRY}.azurecr.io/`, '');
    const staleTag = 'f'.repeat(64);
    suite.bed.arm.seedImage(TEST_REGISTRY, 'inferctl-scorer', staleTag, 30 * 86_400_000);
    const stale = `inferctl-scorer:${staleTag}`;
    assert.deepEqual(unusedImages(await sweep()), [stale], 'a Succeeded cluster: only the stale image is unused');

    let refused = 0;
    for (const state of ['Upgrading', 'Updating']) {
      suite.bed.arm.setClusterProvisioningState('team-upgrading', state);
      const images = unusedImages(await sweep());
      assert.ok(!images.includes(inUse), `${state}: the image its pods run is in use (${images.join()})`);
      assert.deepEqual(images, [stale]);
      refused++;
    }

    // A cluster whose credentials the janitor may not read: no image counts as unused, not even the stale one.
    suite.bed.arm.faults.credentialsDenied = ['team-upgrading'];
    try {
      assert.deepEqual(unusedImages(await sweep()), []);
      refused++;
    } finally {
      suite.bed.arm.faults.credentialsDenied = [];
    }
    suite.bed.arm.setClusterProvisioningState('team-upgrading', 'Succeeded');
    recordReliability({
      test: 'janitor keeps images of clusters under upgrade or unreadable',
      faultsInjected: 3,
      survived: true,
      attack: 'image-deletion-during-upgrade',
      attacksTried: 3,
      attacksRefused: refused,
      resourcesLeaked: 0,
    });

    await handle.signal(teardownSignal, { reason: 'test done' });
    assert.equal((await handle.result()).stage, 'done');
  });
});
