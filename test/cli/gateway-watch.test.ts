/**
 * A local endpoint's gateway that dies while serving is started again by the serving loop's gateway watch,
 * with no deploy, scale or rollout call: `inferctl deploy` through bin/inferctl.js, the real gateway process
 * SIGKILLed (found by the pid and start time the local target recorded and its marker), then the endpoint
 * answers again on the same address with the same key, and `inferctl status` says so. Then a foreign process
 * takes the port between the kill and the restart: it is never killed or adopted, the status says the restart
 * fails and why, and once it lets the port go the gateway is started again there. Teardown leaves no process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';

import { readJsonFile } from '../../src/json-file';
import type { GatewayRecord } from '../../src/targets/local/gateway-process';
import { LocalLayout } from '../../src/targets/local/layout';
import { findOwnProcesses, findProcessesByMarker, isAlive, isSameProcess } from '../../src/targets/local/processes';
import { localEndpoint, runInferctl } from '../helpers/cli';
import { recordFigure, recordReliability } from '../helpers/reliability';
import { demoAssets, eventually, startControlWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

const inferctl = (args: string[], timeoutMs = 300_000) => runInferctl(args, { timeoutMs });
/** The watch looks every 2 s; a gateway starts in well under a second. A loaded machine gets the rest. */
const ANSWER_BOUND_MS = 20_000;

/** A listener on `port` that is not ours: it retries until the port is free, then answers 418 to anything. */
function foreignListener(port: number): ChildProcess {
  const script = `
    const http = require('node:http');
    const listen = () => {
      const server = http.createServer((req, res) => { res.statusCode = 418; res.end('foreign'); });
      server.once('error', () => setTimeout(listen, 1));
      server.listen(${port}, '127.0.0.1', () => process.stdout.write('listening\\n'));
    };
    listen();`;
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

async function recordedGateway(layout: LocalLayout): Promise<GatewayRecord> {
  const gateway = (await readJsonFile<{ gateway?: GatewayRecord }>(layout.replicasFile))?.gateway;
  assert.ok(gateway, 'replicas.json records the gateway');
  return gateway;
}

/** SIGKILLs the recorded gateway, checked first to be one of the deployment's own processes. */
async function killGateway(layout: LocalLayout): Promise<GatewayRecord> {
  const gateway = await recordedGateway(layout);
  const own = await findOwnProcesses(layout.processMarker);
  assert.ok(
    own.some((p) => p.pid === gateway.pid && p.startTime === gateway.startTime),
    `pid ${gateway.pid} is one of the deployment's own processes`,
  );
  process.kill(gateway.pid, 'SIGKILL');
  await eventually(async () => ((await isSameProcess(gateway.pid, gateway.startTime)) ? undefined : true), 'death');
  return gateway;
}

describe('the serving loop starts a dead local gateway again', () => {
  const taskQueue = uniqueName('cli-gateway-watch-tq');
  let worker: WorkerProcess;
  let foreign: ChildProcess | undefined;

  before(async () => {
    worker = await startControlWorker(taskQueue);
  });
  after(async () => {
    foreign?.kill('SIGKILL');
    await worker?.stop();
  });

  test('SIGKILLed, it answers again on its address with the same key; a foreign process on the port is left alone', async () => {
    const assets = await demoAssets();
    const sample = await fs.readFile(assets.samples[0]!.path);
    const name = uniqueName('gw-watch');
    const layout = new LocalLayout(name);
    const deployed = await inferctl([
      'deploy',
      '--model',
      assets.modelPath,
      '--ttl',
      '30m',
      '--name',
      name,
      '--task-queue',
      taskQueue,
    ]);
    let leaked = -1;
    let survived = false;
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
      const url = localEndpoint(deployed.stdout);
      const port = Number(new URL(url).port);
      const key = (await fs.readFile(layout.apiKeyFile, 'utf8')).trim();
      const score = () =>
        fetch(`${url}/score`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg' },
          body: sample,
          signal: AbortSignal.timeout(5000),
        }).then(async (res) => ({ status: res.status, body: await res.text() }));
      assert.equal((await score()).status, 200);

      // 1. SIGKILL the real gateway; no deploy, scale or rollout follows.
      const first = await killGateway(layout);
      const killedAt = Date.now();
      await eventually(
        async () => ((await score().catch(() => undefined))?.status === 200 ? true : undefined),
        'the endpoint to answer again with the same key',
        ANSWER_BOUND_MS,
      );
      const answeredAfterMs = Date.now() - killedAt;
      const again = await recordedGateway(layout);
      assert.notEqual(again.pid, first.pid, 'a new gateway process serves');
      assert.ok(
        (await findOwnProcesses(layout.processMarker)).some((p) => p.pid === again.pid),
        'the new gateway carries the deployment marker',
      );
      assert.equal((await fetch(`${url}/score`, { method: 'POST', body: sample })).status, 401, 'the key still holds');
      const status = await inferctl(['status', name], 60_000);
      assert.match(
        status.stdout,
        new RegExp(
          `gateway found gone and started again on its address: 1 time\\(s\\), .*pid ${first.pid} gone, pid ${again.pid} started`,
        ),
      );
      // The steps: the first deploy only, then serving (no scale, rollout or redeploy).
      assert.equal(status.stdout.match(/^ {2}[✔✘…] deploy\b/gm)?.length, 1, status.stdout);
      assert.doesNotMatch(status.stdout, /^ {2}[✔✘…] (scale|rollout|wake)/m, status.stdout);
      recordFigure({
        test: 'gateway watch',
        figure: 'SIGKILLed local gateway answering again',
        value: answeredAfterMs,
        unit: 'ms',
      });

      // 2. A foreign process takes the port between a kill and the restart (retried if the watch wins the race).
      foreign = foreignListener(port);
      const foreignUp = new Promise<void>((resolve) => foreign!.stdout!.once('data', () => resolve()));
      let held = false;
      for (let attempt = 0; attempt < 3 && !held; attempt++) {
        await killGateway(layout);
        held = await Promise.race([
          foreignUp.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
        ]);
      }
      assert.ok(held, 'the foreign listener got the port');
      assert.equal((await fetch(`${url}/healthz`)).status, 418, 'the foreign process answers on the port');
      const failing = await eventually(
        async () => {
          const s = await inferctl(['status', name], 60_000);
          return /gateway gone, not started again yet \(retried\): .*EADDRINUSE/s.test(s.stdout) ? s.stdout : undefined;
        },
        'the status to say the restart fails',
        ANSWER_BOUND_MS,
      );
      assert.ok(failing);
      // Several looks later it still runs, still answers, and is not recorded as the gateway.
      await new Promise((r) => setTimeout(r, 6000));
      assert.ok(foreign.pid !== undefined && isAlive(foreign.pid), 'the foreign process was not killed');
      assert.equal((await fetch(`${url}/healthz`)).status, 418);
      assert.notEqual((await recordedGateway(layout)).pid, foreign.pid, 'the foreign process was not adopted');
      assert.ok(!(await findOwnProcesses(layout.processMarker)).some((p) => p.pid === foreign!.pid));

      // 3. Once it lets the port go, the gateway is started there again (the watch backs off, ≤ 16 s here).
      foreign.kill('SIGKILL');
      await eventually(
        async () => ((await score().catch(() => undefined))?.status === 200 ? true : undefined),
        'the endpoint to answer again once the port is free',
        60_000,
      );
      const cleared = await inferctl(['status', name], 60_000);
      assert.doesNotMatch(cleared.stdout, /not started again yet/, cleared.stdout);
      survived = true;
    } finally {
      const down = await inferctl(['teardown', name]);
      assert.equal(down.code, 0, down.stderr);
      leaked = (await findProcessesByMarker(layout.processMarker)).length;
      recordReliability({
        test: 'deploy: the local gateway SIGKILLed while serving, twice (once with a foreign process on its port)',
        faultsInjected: 2,
        survived,
        resourcesLeaked: leaked,
      });
    }
    assert.equal(leaked, 0, 'no process is left after teardown');
  });
});
