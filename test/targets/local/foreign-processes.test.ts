/**
 * The local target stops only its own processes. Processes that mention the deployment's directory on
 * their command line (`tail -f` of the key file, a shell script and a Node load-test client given paths
 * in it, even a scoring server a user started by hand from the deployment's bundle) stay alive through
 * deploy, scale, rollout and teardown, while replicas that a crashed attempt started but never recorded
 * (they carry the deployment's marker) are still found and stopped.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';

import type { DeploymentSpec } from '../../../src/shared/target-types';
import { LocalTarget } from '../../../src/targets/local/local-target';
import { findProcessesByMarker, isAlive } from '../../../src/targets/local/processes';
import { spawnReplica } from '../../../src/targets/local/replica-set';
import { recordReliability } from '../../helpers/reliability';
import { demoAssets, uniqueName } from '../../helpers/workers';

const SERVER_MAIN = path.resolve(__dirname, '..', '..', '..', 'src', 'server', 'main.js');

describe('local target: only its own processes', () => {
  let root: string;
  const bystanders: ChildProcess[] = [];
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-foreign-'));
  });
  after(async () => {
    for (const b of bystanders) b.kill('SIGKILL');
    await fs.rm(root, { recursive: true, force: true });
  });

  test('bystanders that name the directory survive deploy, scale, rollout and teardown; orphans do not', async () => {
    const assets = await demoAssets();
    const target = new LocalTarget({ root });
    const name = uniqueName('foreign');
    const spec: DeploymentSpec = {
      name,
      target: 'local',
      ownerId: `deploy-${name}`,
      modelPath: assets.modelPath,
      replicas: 2,
      topK: 1,
    };
    const layout = target.layout(name);
    await target.provision(spec);
    const image = await target.buildImage(spec);

    const start = (command: string, args: string[]) => {
      const child = spawn(command, args, { stdio: 'ignore' });
      bystanders.push(child);
      return child;
    };
    const keyFile = layout.apiKeyFile;
    start('tail', ['-f', keyFile]);
    start('sh', ['-c', 'sleep 600; :', keyFile]);
    start(process.execPath, [
      '-e',
      'setInterval(() => {}, 60_000)',
      '--',
      path.join(layout.dir, 'replicas', '0', 'replica.log'),
    ]);
    // A scoring server started by hand from the deployment's own bundle: same entry script, no marker.
    const readyFile = path.join(root, 'by-hand-ready.json');
    start(process.execPath, [
      SERVER_MAIN,
      '--model',
      path.join(image.imageRef, 'model.onnx'),
      '--preprocess',
      path.join(image.imageRef, 'preprocess.json'),
      '--labels',
      path.join(image.imageRef, 'model.labels.txt'),
      '--api-key-file',
      keyFile,
      '--ready-file',
      readyFile,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
    ]);
    const alive = () => bystanders.filter((b) => b.exitCode === null && b.signalCode === null && isAlive(b.pid!));
    await delay(500);
    assert.equal(alive().length, 4, 'the bystanders run');

    const orphan = async (setDir?: string) => {
      // What a crashed attempt leaves: a replica it started but did not get to record.
      const dir = setDir ? path.join(setDir, 'replicas', '9') : layout.replicaDir(9);
      return (await spawnReplica(layout, spec, image, dir, setDir)).pid;
    };
    const orphans: number[] = [];
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['deploy', () => target.deploy(spec, image)],
      [
        'scale',
        async () => {
          orphans.push(await orphan());
          return target.deploy({ ...spec, replicas: 1 }, image);
        },
      ],
      [
        'rollout start',
        async () => {
          orphans.push(await orphan(layout.candidateDir));
          return target.candidates.start(spec, image);
        },
      ],
      ['rollout end', () => target.candidates.remove(spec)],
      [
        'teardown',
        async () => {
          orphans.push(await orphan());
          return target.teardown(spec);
        },
      ],
    ];
    for (const [step, run] of steps) {
      await run();
      assert.equal(alive().length, 4, `every bystander is alive after ${step}`);
      for (const pid of orphans)
        assert.equal(isAlive(pid), false, `the unrecorded replica ${pid} is stopped by ${step}`);
    }
    assert.deepEqual(
      await findProcessesByMarker(layout.processMarker),
      [],
      'none of the deployment’s processes is left',
    );
    recordReliability({
      test: 'local target and processes that name its directory',
      faultsInjected: orphans.length,
      survived: true,
      resourcesLeaked: orphans.filter(isAlive).length,
      attack: 'foreign-process-kill',
      attacksTried: bystanders.length * steps.length,
      attacksRefused: alive().length * steps.length,
    });
  });
});
