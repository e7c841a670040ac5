/**
 * The `inferctl` binary as a user runs it: help everywhere, exit codes, one-line reasons, and a whole
 * deploy → list → status → extend → scale → deploy again → teardown session against the run's dev server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { demoAssets, eventually, startControlWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';
import { runInferctl } from '../helpers/cli';

const inferctl = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runInferctl(args, { env: { ...process.env, ...env } });

describe('inferctl CLI', () => {
  test('--help works for the program and every command', async () => {
    const top = await inferctl(['--help']);
    assert.equal(top.code, 0);
    for (const cmd of ['deploy', 'status', 'list', 'teardown', 'extend', 'scale', 'rollout', 'worker', 'dev']) {
      assert.match(top.stdout, new RegExp(`\\b${cmd}\\b`), `top-level help lists ${cmd}`);
      const help = await inferctl([cmd, '--help']);
      assert.equal(help.code, 0, `${cmd} --help exits 0`);
      assert.match(help.stdout, new RegExp(`Usage: inferctl ${cmd}`));
    }
    assert.match(top.stdout, /TEMPORAL_ADDRESS/, 'help explains the connection settings');
  });

  test('bad usage exits 2 with a reason', async () => {
    const noModel = await inferctl(['deploy']);
    assert.equal(noModel.code, 2);
    assert.match(noModel.stderr, /--model/);
    const badReplicas = await inferctl(['deploy', '--model', 'm.onnx', '--replicas', '0']);
    assert.equal(badReplicas.code, 2);
    assert.match(badReplicas.stderr, /--replicas must be a whole number ≥ 1/);
    const badTtl = await inferctl(['deploy', '--model', 'm.onnx', '--ttl', 'soon']);
    assert.equal(badTtl.code, 2);
    assert.match(badTtl.stderr, /--ttl "soon" is not a duration/);
    const badTarget = await inferctl(['deploy', '--model', 'm.onnx', '--target', 'moon']);
    assert.equal(badTarget.code, 2);
    assert.match(badTarget.stderr, /Allowed choices are local, aks/);
  });

  test('an unreachable Temporal server is a one-line error that says what to do', async () => {
    const run = await inferctl(['list'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /127\.0\.0\.1:1/);
    assert.match(run.stderr, /inferctl dev/);
  });

  describe('a deployment session', () => {
    const taskQueue = uniqueName('cli-tq');
    let worker: WorkerProcess;
    let assets: Awaited<ReturnType<typeof demoAssets>>;

    before(async () => {
      assets = await demoAssets();
      worker = await startControlWorker(taskQueue);
    });
    after(async () => {
      await worker?.stop();
    });

    test('deploy, list, status, extend, scale, deploy again (attach or refuse), teardown', async () => {
      const name = uniqueName('cli');
      const green = assets.samples.find((s) => s.label === 'green')!;
      const common = ['--task-queue', taskQueue];
      const deployed = await inferctl([
        'deploy',
        '--model',
        assets.modelPath,
        '--name',
        name,
        '--ttl',
        '1h',
        '--replicas',
        '1',
        '--smoke-sample',
        green.path,
        '--expect-label',
        'green',
        '--json',
        ...common,
      ]);
      assert.equal(deployed.code, 0, deployed.stderr);
      const result = JSON.parse(deployed.stdout) as {
        workflowId: string;
        uiUrl: string;
        status: { stage: string; endpoint: string };
      };
      assert.equal(result.workflowId, `deploy-${name}`);
      assert.equal(result.status.stage, 'serving');
      assert.match(result.status.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(result.uiUrl, new RegExp(`/namespaces/default/workflows/deploy-${name}`));

      const human = await inferctl(['status', name]);
      assert.equal(human.code, 0);
      assert.match(human.stdout, /stage serving/);
      assert.match(human.stdout, /smoke answer: green/);
      assert.match(human.stdout, /Web UI: http/);

      const listed = await inferctl(['list', '--json']);
      assert.equal(listed.code, 0, listed.stderr);
      const rows = JSON.parse(listed.stdout) as Array<{ name: string; stage: string }>;
      assert.equal(rows.find((r) => r.name === name)?.stage, 'serving');

      // Visibility is eventually consistent: the Stage upserted on reaching serving shows up soon, not at once.
      await eventually(async () => {
        const serving = await inferctl(['list', '--stage', 'serving', '--json']);
        return (JSON.parse(serving.stdout) as Array<{ name: string }>).some((r) => r.name === name) ? true : undefined;
      }, 'the deployment found by its Stage');
      const waiting = await inferctl(['list', '--stage', 'waiting', '--json']);
      assert.ok(
        !(JSON.parse(waiting.stdout) as Array<{ name: string }>).some((r) => r.name === name),
        'not in another stage',
      );

      const extended = await inferctl(['extend', name, '--ttl', '2h', '--json']);
      assert.equal(extended.code, 0, extended.stderr);
      const expiresAt = Date.parse((JSON.parse(extended.stdout) as { expiresAt: string }).expiresAt);
      assert.ok(expiresAt > Date.now() + 1.9 * 3600_000, 'the TTL now ends about two hours from now');

      const scaled = await inferctl(['scale', name, '--replicas', '2', '--json']);
      assert.equal(scaled.code, 0, scaled.stderr);
      const scale = JSON.parse(scaled.stdout) as { replicas: number; previousReplicas: number; replicaUrls: string[] };
      assert.deepEqual([scale.previousReplicas, scale.replicas, scale.replicaUrls.length], [1, 2, 2]);

      const again = ['deploy', '--model', assets.modelPath, '--name', name, '--detach', ...common];
      const same = await inferctl([...again, '--replicas', '2']);
      assert.equal(same.code, 0, same.stderr);
      assert.match(same.stdout, new RegExp(`${name} is already running with this spec: attached to deploy-${name}`));

      const dup = await inferctl(again);
      assert.equal(dup.code, 2, 'a different spec under a running name is bad input');
      assert.match(
        dup.stderr,
        new RegExp(`Deployment "${name}" is already running with a different spec: replicas 1 \\(it serves 2\\)`),
      );
      assert.match(dup.stderr, new RegExp(`inferctl scale ${name} --replicas 1`));
      assert.equal(dup.stderr.trim().split('\n').length, 1, 'one line');

      const down = await inferctl(['teardown', name, '--json']);
      assert.equal(down.code, 0, down.stderr);
      const view = JSON.parse(down.stdout) as { status: { endedBy: string; teardownRemoved: string[] } };
      assert.equal(view.status.endedBy, 'signal');
      assert.ok(view.status.teardownRemoved.length > 0);
      assert.deepEqual(await findProcessesByMarker(new LocalLayout(name).processMarker), []);

      const missing = await inferctl(['status', uniqueName('never-deployed')]);
      assert.equal(missing.code, 2, 'a name that does not exist is bad input');
      assert.match(missing.stderr, /No deployment named/);
    });
  });
});
