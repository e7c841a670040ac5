/**
 * The janitor: a deploy workflow that is terminated runs no teardown, so its cluster stays behind and
 * bills. `inferctl janitor` finds resources tagged inferctl-owner whose workflow is closed or unknown and
 * deletes them, leaving alone those of running workflows and everything without the tag.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeployInput } from '../../../src/shared/deploy-types';
import type { JanitorReport } from '../../../src/shared/janitor-types';
import { deploy, statusQuery, teardownSignal } from '../../../workflows/deploy';
import { janitor } from '../../../workflows/janitor';
import { TEST_RESOURCE_GROUP } from '../../helpers/azure/aks-testbed';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { eventually, uniqueName } from '../../helpers/workers';

const BIN = path.resolve(__dirname, '..', '..', '..', '..', 'bin', 'inferctl.js');

describe('inferctl janitor', () => {
  const suite = aksSuite('aks-janitor-tq');
  const { taskQueue } = suite;

  async function serving(name: string) {
    const handle = await suite.client.workflow.start(deploy, {
      taskQueue,
      workflowId: deployWorkflowId(name),
      args: [
        {
          name,
          modelPath: suite.assets.modelPath,
          target: 'aks',
          replicas: 1,
          ttlSeconds: 3600,
          timings: { readinessPollSeconds: 0.2 },
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

  test('deletes the cluster a terminated workflow left, and an unknown owner’s; keeps running and untagged ones', async () => {
    const orphaned = uniqueName('orphan');
    const live = uniqueName('live');
    await (await serving(orphaned)).terminate('simulating an operator terminating the workflow');
    const running = await serving(live);
    await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'inferctl-ghost', {
      'inferctl-owner': 'deploy-never-started',
    });
    await suite.bed.arm.seedCluster(TEST_RESOURCE_GROUP, 'team-cluster', { team: 'research' });
    assert.deepEqual(
      suite.bed.arm.clusterNames().sort(),
      [`inferctl-${live}`, `inferctl-${orphaned}`, 'inferctl-ghost', 'team-cluster'].sort(),
    );

    // A dry run reports both orphans and deletes nothing.
    const dry: JanitorReport = await suite.client.workflow.execute(janitor, {
      taskQueue,
      workflowId: uniqueName('janitor-dry'),
      args: [{ dryRun: true }],
    });
    assert.equal(dry.checked, 3, 'the three tagged clusters were checked');
    assert.deepEqual(
      dry.orphans.map((o) => `${o.name}:${o.ownerStatus}`).sort(),
      [`inferctl-${orphaned}:TERMINATED`, 'inferctl-ghost:UNKNOWN'].sort(),
    );
    assert.deepEqual(dry.deleted, []);
    assert.equal(suite.bed.arm.clusterNames().length, 4);

    // The real run, through the CLI.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [BIN, 'janitor', '--task-queue', taskQueue, '--json'],
      {
        env: process.env,
      },
    );
    const report = JSON.parse(stdout) as JanitorReport;
    assert.deepEqual(report.deleted.sort(), [`cluster inferctl-${orphaned}`, 'cluster inferctl-ghost'].sort());
    assert.deepEqual(suite.bed.arm.clusterNames().sort(), [`inferctl-${live}`, 'team-cluster'].sort());
    // Left: the live cluster's system and GPU node, and team-cluster's system node.
    assert.equal(
      (await suite.bed.nodeNames()).filter((n) => n.startsWith('aks-')).length,
      3,
      'the orphans’ nodes are gone',
    );

    await running.signal(teardownSignal, { reason: 'test done' });
    assert.equal((await running.result()).stage, 'done');
    assert.deepEqual(suite.bed.arm.clusterNames(), ['team-cluster'], 'only the cluster inferctl never owned remains');
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
