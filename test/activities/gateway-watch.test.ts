/**
 * The serving loop's gateway watch (activities/gateway-watch.ts) in MockActivityEnvironment, over a real local
 * deployment (LocalTarget in a temporary root): it returns once it has started a SIGKILLed gateway again on its
 * address, heartbeats while the gateway runs and stops when cancelled, and answers `unsupported` for a target
 * whose platform restarts its endpoint itself (it has no reviveGateway).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';

import { createGatewayWatchActivities } from '../../activities/gateway-watch';
import { readJsonFile } from '../../src/json-file';
import type { GatewayRevival } from '../../src/shared/gateway-watch-types';
import type { DeploymentSpec } from '../../src/shared/target-types';
import type { GatewayRecord } from '../../src/targets/local/gateway-process';
import { LocalTarget } from '../../src/targets/local/local-target';
import { findProcessesByMarker, isSameProcess } from '../../src/targets/local/processes';
import type { Target } from '../../src/targets/target';
import { demoAssets, eventually, uniqueName } from '../helpers/workers';

describe('watchGateway', () => {
  let root: string;
  let target: LocalTarget;
  let spec: DeploymentSpec;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-gateway-watch-'));
    target = new LocalTarget({ root });
    const name = uniqueName('gw-activity');
    spec = {
      name,
      target: 'local',
      ownerId: `deploy-${name}`,
      modelPath: (await demoAssets()).modelPath,
      replicas: 1,
      topK: 1,
    };
    await target.provision(spec);
    await target.deploy(spec, await target.buildImage(spec));
    await eventually(async () => ((await target.checkReadiness(spec)).ready ? true : undefined), 'readiness');
  });
  after(async () => {
    if (spec) await target.teardown(spec);
    await fs.rm(root, { recursive: true, force: true });
  });

  const env = () => new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
  const watch: ReturnType<typeof createGatewayWatchActivities>['watchGateway'] = (s, o) =>
    createGatewayWatchActivities({ targets: { local: target } }).watchGateway(s, o);
  const gatewayOf = async () =>
    (await readJsonFile<{ gateway?: GatewayRecord }>(target.layout(spec.name).replicasFile))!.gateway!;

  test('heartbeats while the gateway runs, and stops when cancelled', async () => {
    const e = env();
    const beats: unknown[] = [];
    e.on('heartbeat', (d: unknown) => beats.push(d));
    const running = e.run(watch, spec, { pollSeconds: 0.2 });
    await eventually(
      () => Promise.resolve(beats.some((b) => (b as { last?: string })?.last === 'running') ? true : undefined),
      'a look',
    );
    e.cancel();
    await assert.rejects(running, CancelledFailure);
  });

  test('returns once it has started a SIGKILLed gateway again on its address', async () => {
    const before = await gatewayOf();
    const url = (await target.endpointAccess(spec)).endpoint;
    process.kill(before.pid, 'SIGKILL');
    await eventually(async () => ((await isSameProcess(before.pid, before.startTime)) ? undefined : true), 'death');
    const found: GatewayRevival = await env().run(watch, spec, { pollSeconds: 0.2 });
    assert.equal(found.outcome, 'restarted', JSON.stringify(found));
    assert.equal(found.gonePid, before.pid);
    const after = await gatewayOf();
    assert.equal(found.pid, after.pid, 'the new pid is recorded');
    assert.equal((await target.endpointAccess(spec)).endpoint, url, 'on the same address');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.ok((await findProcessesByMarker(target.layout(spec.name).processMarker)).includes(after.pid));
  });

  test('a target with no gateway of its own to watch: unsupported', async () => {
    const aks = { kind: 'aks' } as unknown as Target; // an aks-like target: no reviveGateway
    const activities = createGatewayWatchActivities({ targets: { aks } });
    const unwatched: typeof watch = (s, o) => activities.watchGateway(s, o);
    assert.deepEqual(await env().run(unwatched, { ...spec, target: 'aks' as const }, { pollSeconds: 0.2 }), {
      outcome: 'unsupported',
    });
  });
});
