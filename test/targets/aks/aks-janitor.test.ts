/**
 * The janitor: a deploy workflow that is terminated runs no teardown, so its cluster (or its namespace in
 * a user's cluster) stays behind and bills. `inferctl janitor` finds what this installation made whose
 * workflow is closed or unknown and deletes it, leaving alone those of running workflows, everything
 * without the tag, and what another installation sharing the subscription made (a second Temporal
 * namespace with its own control worker here).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

import { Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeployInput } from '../../../src/shared/deploy-types';
import { resourceLabel } from '../../../src/shared/janitor-types';
import type { JanitorReport } from '../../../src/shared/janitor-types';
import { environmentOf } from '../../../src/targets/aks/environment-tag';
import { connectionSettings } from '../../../src/temporal/connection';
import { deploy, statusQuery, teardownSignal } from '../../../workflows/deploy';
import { janitor } from '../../../workflows/janitor';
import { TEST_REGISTRY, TEST_RESOURCE_GROUP } from '../../helpers/azure/aks-testbed';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { eventually, startControlWorker, uniqueName } from '../../helpers/workers';

const BIN = path.resolve(__dirname, '..', '..', '..', '..', 'bin', 'inferctl.js');

describe('inferctl janitor', () => {
  // No grace for unused images: the image a running deployment uses must be kept for being in use.
  const suite = aksSuite('aks-janitor-tq', { INFERCTL_JANITOR_IMAGE_GRACE_MS: '1' });
  const { taskQueue } = suite;

  async function serving(name: string, cluster?: string, installation?: { client: Client; queue: string }) {
    const handle = await (installation?.client ?? suite.client).workflow.start(deploy, {
      taskQueue: installation?.queue ?? taskQueue,
      workflowId: deployWorkflowId(name),
      args: [
        {
          name,
          modelPath: suite.assets.modelPath,
          target: 'aks',
          replicas: 1,
          ttlSeconds: 3600,
          timings: { readinessPollSeconds: 0.2 },
          ...(cluster ? { aks: { cluster } } : {}),
        } satisfies DeployInput,
      ],
    });
    await eventually(
      async () => ((await handle.query(statusQuery)).stage === 'serving' ? true : undefined),
      `${name} to serve`,
      120_000,
    );
    return handle;
  }

  /** A second installation sharing the subscription: its own Temporal namespace and control worker. */
  async function otherInstallation() {
    const namespace = uniqueName('inferctl-other');
    await suite.client.connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
    const client = new Client({ connection: suite.client.connection, namespace });
    const queue = uniqueName('aks-janitor-other-tq');
    const worker = await eventually(
      () =>
        startControlWorker(queue, [], { ...suite.workerEnv(), TEMPORAL_NAMESPACE: namespace }).catch(() => undefined),
      'the new namespace to take workers',
      60_000,
    );
    return { client, queue, worker, namespace };
  }

  test('deletes only this installation’s orphans: clusters, and namespaces left in users’ clusters; skips another installation’s', async () => {
    const ours = environmentOf(connectionSettings());
    const orphaned = uniqueName('orphan');
    const live = uniqueName('live');
    const tenant = uniqueName('tenant');
    const theirs = uniqueName('theirs');
    await (await serving(orphaned)).terminate('simulating an operator terminating the workflow');
    const running = await serving(live);
    // A deployment into a user's cluster, terminated: its namespace stays behind in a cluster inferctl must keep.
    const registry = `${TEST_RESOURCE_GROUP}/${TEST_REGISTRY}`;
    await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'team-shared', { team: 'research' }, 1, [registry]);
    await (await serving(tenant, 'team-shared')).terminate('simulating an operator terminating the workflow');
    // Another installation's live deployment: its owner is unknown in this namespace, but it is not ours.
    const other = await otherInstallation();
    const theirsHandle = await serving(theirs, undefined, other);

    await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'inferctl-ghost', {
      'inferctl-owner': 'deploy-never-started',
      'inferctl-environment': ours,
    });
    await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'inferctl-legacy', { 'inferctl-owner': 'deploy-before-tags' });
    await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'team-cluster', { team: 'research' });
    // An image a deployment pushed last month, which nothing runs any more.
    const staleTag = 'e'.repeat(64);
    suite.bed.arm.seedImage(TEST_REGISTRY, 'inferctl-scorer', staleTag, 30 * 86_400_000);
    const liveImage = (await running.query(statusQuery)).imageRef!;
    assert.equal(
      suite.bed.arm.clusterTags(`inferctl-${theirs}`)?.['inferctl-environment'],
      environmentOf({ address: connectionSettings().address, namespace: other.namespace }),
    );
    assert.equal(suite.bed.arm.clusterTags(`inferctl-${live}`)?.['inferctl-environment'], ours);

    // A dry run reports the orphans and the skipped, and deletes nothing.
    const dry: JanitorReport = await suite.client.workflow.execute(janitor, {
      taskQueue,
      workflowId: uniqueName('janitor-dry'),
      args: [{ dryRun: true }],
    });
    assert.equal(dry.checked, 7, 'five tagged clusters, one namespace in a user’s cluster, one unused image');
    assert.deepEqual(
      dry.orphans.map((o) => `${resourceLabel(o)}:${o.ownerStatus}`).sort(),
      [
        `cluster inferctl-${orphaned}:TERMINATED`,
        'cluster inferctl-ghost:UNKNOWN',
        `namespace inferctl-${tenant} in cluster team-shared:TERMINATED`,
        `image inferctl-scorer:${staleTag}:UNUSED`,
      ].sort(),
    );
    assert.deepEqual(
      dry.skipped.map((o) => `${resourceLabel(o)}:${o.ownerStatus}`).sort(),
      [`cluster inferctl-${theirs}:UNKNOWN`, 'cluster inferctl-legacy:UNKNOWN'].sort(),
    );
    assert.match(dry.skipped.find((o) => o.name === `inferctl-${theirs}`)!.skipReason!, /another installation/);
    assert.deepEqual(dry.deleted, []);
    assert.ok((await suite.bed.namespaces()).includes(`inferctl-${tenant}`));

    // The CLI's dry run lists all of it.
    const listing = await promisify(execFile)(
      process.execPath,
      [BIN, 'janitor', '--dry-run', '--task-queue', taskQueue],
      { env: process.env },
    );
    assert.match(listing.stdout, new RegExp(`would delete  namespace inferctl-${tenant} in cluster team-shared`));
    assert.match(
      listing.stdout,
      new RegExp(`would delete  image inferctl-scorer:${staleTag} \\(owner no Deployment uses it`),
    );
    assert.match(
      listing.stdout,
      new RegExp(`skipped  cluster inferctl-${theirs} .*another installation \\(.*/${other.namespace}\\)`),
    );

    // The real run, through the CLI.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [BIN, 'janitor', '--task-queue', taskQueue, '--json'],
      { env: process.env },
    );
    const report = JSON.parse(stdout) as JanitorReport;
    assert.deepEqual(
      report.deleted.sort(),
      [
        `cluster inferctl-${orphaned}`,
        'cluster inferctl-ghost',
        `namespace inferctl-${tenant} in cluster team-shared`,
        `image inferctl-scorer:${staleTag}`,
      ].sort(),
    );
    // Deleted through ACR's data plane; the image the live deployment runs stays.
    assert.ok(!suite.bed.arm.images.has(`${TEST_REGISTRY}/inferctl-scorer:${staleTag}`));
    assert.ok(suite.bed.arm.images.has(liveImage.replace('.azurecr.io', '')), liveImage);
    assert.ok(
      suite.bed.arm.requests.some((r) => r.method === 'DELETE' && r.path.includes('/_acr/') && r.status === 202),
    );
    assert.deepEqual(
      suite.bed.arm.clusterNames().sort(),
      [`inferctl-${live}`, `inferctl-${theirs}`, 'inferctl-legacy', 'team-cluster', 'team-shared'].sort(),
    );
    await eventually(
      async () => ((await suite.bed.namespaces()).includes(`inferctl-${tenant}`) ? undefined : true),
      'the orphan namespace to go',
      60_000,
    );

    await running.signal(teardownSignal, { reason: 'test done' });
    assert.equal((await running.result()).stage, 'done');
    await theirsHandle.signal(teardownSignal, { reason: 'test done' });
    assert.equal((await theirsHandle.result()).stage, 'done');
    await other.worker.stop();
    assert.deepEqual(
      suite.bed.arm.clusterNames().sort(),
      ['inferctl-legacy', 'team-cluster', 'team-shared'],
      'only clusters inferctl did not make here remain',
    );
  });

  test('janitor --every puts it on a Temporal Schedule', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [BIN, 'janitor', '--every', '6h', '--dry-run', '--task-queue', taskQueue, '--json'],
      { env: process.env },
    );
    assert.deepEqual(JSON.parse(stdout), { scheduleId: 'inferctl-janitor', everySeconds: 6 * 3600 });
    const description = await suite.client.schedule.getHandle('inferctl-janitor').describe();
    assert.equal(description.spec.intervals?.[0]?.every, 6 * 3600 * 1000);
    assert.equal(description.action.type, 'startWorkflow');
    await suite.client.schedule.getHandle('inferctl-janitor').delete();
  });
});
