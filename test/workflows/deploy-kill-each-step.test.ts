/**
 * The control worker is SIGKILLed as the deployment reaches each stage in turn (provision, build,
 * deploy, wait, smoke, serve, teardown), a new worker is started, and every run must complete with zero
 * replicas and zero bundles left. The scenarios run side by side, each on its own task queue.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { DEPLOY_STAGES } from '../../src/shared/deploy-types';
import type { DeployStage } from '../../src/shared/deploy-types';
import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { statusQuery } from '../../workflows/deploy';
import { recordReliability } from '../helpers/reliability';
import { workflowSuite } from '../helpers/workflow-suite';
import { uniqueName } from '../helpers/workers';

const STAGES: DeployStage[] = [
  'provisioning',
  'building',
  'deploying',
  'waiting',
  'smoke-testing',
  'serving',
  'tearing-down',
];

describe('control worker SIGKILLed at each deploy stage', () => {
  // Every scenario starts (and kills) its own workers on its own queue.
  const suite = workflowSuite('kill', { control: false });

  async function killAt(stage: DeployStage): Promise<{ killedAt: DeployStage; name: string }> {
    const taskQueue = uniqueName(`kill-${stage}`);
    const first = await suite.startControlWorker({ taskQueue });
    const name = uniqueName('kill');
    const handle = await suite.startDeploy(
      suite.deployInput({
        name,
        ttlSeconds: 2,
        smoke: { samplePath: suite.sample('red').path, expectedLabel: 'red' },
        timings: { heartbeatTimeoutSeconds: 3 },
      }),
      taskQueue,
    );
    // Watch closely and kill the worker the moment the deployment is at (or, for the fastest steps,
    // just past) the stage.
    let killedAt: DeployStage | undefined;
    const deadline = Date.now() + 60_000;
    while (!killedAt && Date.now() < deadline) {
      const seen = (await handle.query(statusQuery).catch(() => undefined))?.stage;
      if (seen && DEPLOY_STAGES.indexOf(seen) >= DEPLOY_STAGES.indexOf(stage)) {
        await first.kill();
        killedAt = seen;
      } else {
        await delay(5);
      }
    }
    assert.ok(killedAt, `reached ${stage}`);
    await suite.startControlWorker({ taskQueue });
    const outcome = await handle.result();
    assert.equal(outcome.stage, 'done', `${stage}: the deployment completed after the crash`);
    assert.ok(
      outcome.steps.some((s) => s.step === 'teardown' && s.ok),
      `${stage}: teardown ran`,
    );
    const layout = new LocalLayout(name);
    const leftover = await findProcessesByMarker(layout.processMarker);
    const bundlesLeft = await fs.access(layout.bundlesDir).then(
      () => 1,
      () => 0,
    );
    recordReliability({
      test: `deploy: control worker SIGKILLed at ${killedAt}`,
      faultsInjected: 1,
      survived: outcome.stage === 'done',
      resourcesLeaked: leftover.length + bundlesLeft,
    });
    assert.deepEqual(leftover, [], `${stage}: zero replicas left`);
    await assert.rejects(fs.access(layout.bundlesDir), `${stage}: zero bundles left`);
    return { killedAt, name };
  }

  test('every stage: the run completes and leaves nothing behind', async (t) => {
    const results = await Promise.all(STAGES.map((stage) => killAt(stage)));
    t.diagnostic(`killed at: ${results.map((r, i) => `${STAGES[i]} → ${r.killedAt}`).join(', ')}`);
    const late = results.filter((r, i) => DEPLOY_STAGES.indexOf(r.killedAt) > DEPLOY_STAGES.indexOf(STAGES[i]!));
    // The fastest local steps take milliseconds; a kill may land just after them. Most must land on time.
    assert.ok(late.length <= 3, `kills landed late for ${late.map((r) => r.killedAt).join(', ')}`);
  });
});
