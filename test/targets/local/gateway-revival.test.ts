/**
 * The local target's gateway restart (restartGatewayIfGone, the serving loop's gateway watch and a mirror bake's
 * readings) against teardown and against processes that are not ours, calling the target directly:
 *  - a recorded pid now carried by another process (same pid and start time, no marker) is neither taken for
 *    the gateway nor killed; a gateway is started on the port, and teardown leaves the other process alone;
 *  - once teardown has marked the deployment, a restart starts nothing, nor a rollout's candidate start;
 *  - teardown waits for a restart that holds the deployment's lock, and stops the gateway it started;
 *  - restarts and teardown started together, in either order and at staggered moments, never leave a process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';

import { readJsonFile, writeJsonFileAtomic } from '../../../src/json-file';
import type { DeploymentSpec, TeardownReport } from '../../../src/shared/target-types';
import { gatewayReadyFile, restartGatewayIfGone, startGateway } from '../../../src/targets/local/gateway-process';
import type { GatewayRecord } from '../../../src/targets/local/gateway-process';
import type { ReadyFile } from '../../../src/targets/local/replica-set';
import { LocalTarget } from '../../../src/targets/local/local-target';
import {
  findOwnProcesses,
  findProcessesByMarker,
  isAlive,
  isSameProcess,
  processStartTime,
} from '../../../src/targets/local/processes';
import { markTearingDown, tearingDownFile, withDeploymentLock } from '../../../src/targets/local/teardown-fence';
import { fileExists } from '../../../src/file-exists';
import { recordReliability } from '../../helpers/reliability';
import { demoAssets, eventually, uniqueName } from '../../helpers/workers';

interface Replicas {
  gateway?: GatewayRecord;
}

describe('local target: a gateway started again, teardown and processes not ours', () => {
  let root: string;
  let target: LocalTarget;
  const bystanders: ChildProcess[] = [];
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-gw-revival-'));
    target = new LocalTarget({ root });
  });
  after(async () => {
    for (const b of bystanders) b.kill('SIGKILL');
    await fs.rm(root, { recursive: true, force: true });
  });

  /** A served deployment (one replica and its gateway, ready), and its recorded gateway SIGKILLed. */
  async function servedWithGatewayKilled(prefix: string) {
    const assets = await demoAssets();
    const name = uniqueName(prefix);
    const spec: DeploymentSpec = {
      name,
      target: 'local',
      ownerId: `deploy-${name}`,
      modelPath: assets.modelPath,
      replicas: 1,
      topK: 1,
    };
    const layout = target.layout(name);
    await target.provision(spec);
    await target.deploy(spec, await target.buildImage(spec));
    await eventually(async () => ((await target.checkReadiness(spec)).ready ? true : undefined), 'readiness');
    const gateway = (await readJsonFile<Replicas>(layout.replicasFile))!.gateway!;
    const port = (await readJsonFile<ReadyFile>(gatewayReadyFile(layout)))!.port;
    process.kill(gateway.pid, 'SIGKILL');
    await eventually(async () => ((await isSameProcess(gateway.pid, gateway.startTime)) ? undefined : true), 'death');
    return { spec, layout, gateway, port };
  }

  const gatewaysOf = async (marker: string) => {
    const own = await findOwnProcesses(marker);
    const entries = await Promise.all(own.map((p) => fs.readFile(`/proc/${p.pid}/cmdline`, 'utf8').catch(() => '')));
    return own.filter((_, i) => entries[i]!.split('\0')[1]?.endsWith('gateway-main.js'));
  };

  test('a recorded pid that another process now carries is neither adopted nor killed', async () => {
    const { spec, layout, gateway, port } = await servedWithGatewayKilled('gw-reuse');
    // The strongest pid reuse: the record names a live process, with its very start time, that is not ours.
    const other = spawn('sleep', ['600'], { stdio: 'ignore' });
    bystanders.push(other);
    const startTime = await eventually(() => processStartTime(other.pid!), 'the other process');
    const state = (await readJsonFile<Replicas>(layout.replicasFile))!;
    await writeJsonFileAtomic(layout.replicasFile, { ...state, gateway: { ...gateway, pid: other.pid, startTime } });

    const found = await target.reviveGateway(spec);
    assert.equal(found.outcome, 'restarted', JSON.stringify(found));
    assert.equal(found.gonePid, other.pid);
    assert.equal(found.port, port, 'on the address it had');
    assert.notEqual(found.pid, other.pid);
    assert.ok(isAlive(other.pid!), 'the other process was not killed');
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    assert.deepEqual(
      (await gatewaysOf(layout.processMarker)).map((p) => p.pid),
      [found.pid],
      'one gateway, the new one',
    );
    assert.equal((await target.reviveGateway(spec)).outcome, 'running', 'a second look changes nothing');

    await target.teardown(spec);
    assert.ok(isAlive(other.pid!), 'teardown left the other process alone');
    assert.deepEqual(await findProcessesByMarker(layout.processMarker), []);
  });

  test('once teardown has marked the deployment, a restart starts nothing', async () => {
    const { spec, layout } = await servedWithGatewayKilled('gw-marked');
    await markTearingDown(layout, spec.ownerId);
    assert.equal((await target.reviveGateway(spec)).outcome, 'tearing-down');
    assert.equal((await restartGatewayIfGone(layout, spec.ownerId)).outcome, 'tearing-down');
    assert.deepEqual(await gatewaysOf(layout.processMarker), [], 'no gateway was started');
    await target.teardown(spec);
    assert.deepEqual(await findProcessesByMarker(layout.processMarker), []);
    assert.equal((await target.reviveGateway(spec)).outcome, 'tearing-down', 'nor once the directory is gone');
    assert.equal(await fileExists(layout.dir), false, 'and a restart did not make the directory again');
  });

  test('once teardown has marked the deployment, a rollout starts no candidate replica', async () => {
    const { spec, layout } = await servedWithGatewayKilled('cand-marked');
    const image = await target.buildImage(spec);
    await markTearingDown(layout, spec.ownerId);
    await assert.rejects(target.candidates.start(spec, image), /is being torn down: no candidate replica is started/);
    assert.deepEqual(await findProcessesByMarker(layout.candidateMarker), [], 'no candidate process');
    await target.teardown(spec);
    await assert.rejects(target.candidates.start(spec, image), /has no directory/);
    assert.equal(await fileExists(layout.dir), false, 'a start after teardown did not make the directory again');
    assert.deepEqual(await findProcessesByMarker(layout.processMarker), []);
  });

  test('teardown waits for a restart that holds the lock, then stops the gateway it started', async () => {
    const { spec, layout, gateway, port } = await servedWithGatewayKilled('gw-held');
    let tornDown = false;
    let teardown: Promise<TeardownReport> | undefined;
    const started = await withDeploymentLock(layout, async () => {
      teardown = target.teardown(spec).finally(() => (tornDown = true));
      await delay(500);
      assert.equal(tornDown, false, 'teardown waits for the lock');
      assert.equal(await fileExists(tearingDownFile(layout)), false, 'and has not marked the deployment yet');
      // What a restart does under the lock: start the gateway on its port, then record it.
      const again = await startGateway(layout, { replicas: 1, port, ownerId: spec.ownerId });
      const state = (await readJsonFile<Replicas>(layout.replicasFile))!;
      await writeJsonFileAtomic(layout.replicasFile, { ...state, gateway: { ...gateway, ...again } });
      return again;
    });
    assert.ok(started && teardown);
    const report = await teardown;
    assert.ok(report.removed.includes(`process ${started.pid}`), report.removed.join(', '));
    assert.equal(await isSameProcess(started.pid, started.startTime), false, 'the gateway started under the lock');
    assert.deepEqual(await findProcessesByMarker(layout.processMarker), []);
  });

  test('a lock whose holder died (a worker SIGKILLed while holding it) is taken over', async () => {
    const { spec, layout, port } = await servedWithGatewayKilled('gw-stale');
    const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    const startTime = await eventually(() => processStartTime(holder.pid!), 'the holder');
    await fs.mkdir(path.join(layout.dir, '.lock'));
    await fs.writeFile(
      path.join(layout.dir, '.lock', 'holder.json'),
      JSON.stringify({ pid: holder.pid, startTime, token: 'dead' }),
    );
    holder.kill('SIGKILL');
    await eventually(async () => ((await isSameProcess(holder.pid!, startTime)) ? undefined : true), 'its death');
    const began = Date.now();
    const found = await target.reviveGateway(spec);
    assert.equal(found.outcome, 'restarted', JSON.stringify(found));
    assert.ok(Date.now() - began < 15_000, 'without waiting out the lock');
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    assert.deepEqual(
      (await fs.readdir(layout.dir)).filter((e) => e.startsWith('.lock')),
      [],
      "the dead holder's lock is gone, and this one let go",
    );
    await target.teardown(spec);
    assert.deepEqual(await findProcessesByMarker(layout.processMarker), []);
  });

  test('restarts and teardown started together never leave a process', async (t) => {
    const rounds: Array<{ teardownFirst: boolean; gapMs: number }> = [];
    for (const gapMs of [0, 3, 10, 30])
      for (const teardownFirst of [false, true]) rounds.push({ teardownFirst, gapMs });
    const outcomes: string[] = [];
    let leaked = 0;
    let restartedBefore = 0;
    for (const { teardownFirst, gapMs } of rounds) {
      const { spec, layout } = await servedWithGatewayKilled('gw-race');
      // Restarts keep coming (as a watch and a bake's readings would) until well after teardown returns.
      let stop = false;
      const restarts = async (after: number) => {
        await delay(after);
        const seen: string[] = [];
        while (!stop) {
          seen.push((await restartGatewayIfGone(layout, spec.ownerId)).outcome);
          await delay(5);
        }
        return seen;
      };
      const teardown = async (after: number) => {
        await delay(after);
        return target.teardown(spec);
      };
      const [looking, tearing] = teardownFirst ? [restarts(gapMs), teardown(0)] : [restarts(0), teardown(gapMs)];
      const began = Date.now();
      const report = await tearing;
      const tookMs = Date.now() - began;
      await delay(200);
      stop = true;
      const seen = await looking;
      const order = teardownFirst ? `teardown, restarts ${gapMs} ms later` : `restarts, teardown ${gapMs} ms later`;
      // The replica, and a gateway a restart started before teardown began (then stopped by teardown).
      const stopped = report.removed.filter((r) => r.startsWith('process ')).length;
      if (stopped > 1) restartedBefore++;
      outcomes.push(
        `${order}: ${[...new Set(seen)].join(', ')} (${seen.length} looks; teardown ${tookMs} ms, stopped ${stopped} process(es))`,
      );
      const left = await findProcessesByMarker(layout.processMarker);
      leaked += left.length;
      assert.deepEqual(left, [], `nothing is left (${outcomes.at(-1)}; teardown removed ${report.removed.join(', ')})`);
      // Once a restart has seen teardown begin, every later one refuses; none starts a gateway after it.
      const first = seen.indexOf('tearing-down');
      assert.ok(first >= 0, outcomes.at(-1));
      assert.ok(
        seen.slice(first).every((o) => o === 'tearing-down'),
        outcomes.at(-1),
      );
    }
    assert.ok(restartedBefore > 0, `in some round a restart started the gateway first:\n${outcomes.join('\n')}`);
    t.diagnostic(outcomes.join('\n'));
    recordReliability({
      test: 'local target: gateway restarts racing teardown',
      faultsInjected: rounds.length,
      survived: leaked === 0,
      resourcesLeaked: leaked,
    });
  });
});
