/**
 * `inferctl deploy --entry-script … --model az://… --target aks` through bin/inferctl.js, on the aks doubles
 * and Azurite: the control worker lists and downloads the model folder (several blobs) and the script's image
 * carries it under azureml-models/<name>/<version>/, where the script finds it through AZUREML_MODEL_DIR in
 * the pod the kubelet stand-in runs; the smoke expectation passes over HTTPS; a mirror rollout (local only for
 * now) is refused; teardown leaves no namespace.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { aksSuiteWithAzurite } from '../../helpers/aks-fixtures';
import { runInferctl } from '../../helpers/cli';
import { PYTHON_SKIP, fixture } from '../../helpers/script-fixtures';
import { uniqueName } from '../../helpers/workers';

describe('inferctl deploy --entry-script --model az://… --target aks', { skip: PYTHON_SKIP }, () => {
  const { suite, azurite } = aksSuiteWithAzurite('aks-script-blob-tq');
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-aks-script-blob-'));
    await azurite.container('models');
    for (const file of ['labels.txt', 'weights.bin']) {
      await azurite.put('models', `v7/colours/${file}`, await fs.readFile(fixture('v2-model', 'colours', file)));
    }
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('the model folder is copied from the blobs into the image; the script reads it in the pod', async () => {
    const sample = path.join(dir, 'index2.json');
    await fs.writeFile(sample, '{"index": 2}');
    const name = uniqueName('aksblob');
    const deployed = await runInferctl(
      [
        'deploy',
        '--entry-script',
        fixture('v2', 'score.py'),
        '--environment',
        fixture('v2', 'requirements.txt'),
        '--model',
        azurite.url('models', 'v7', 'colours'),
        '--smoke-sample',
        sample,
        '--expect-json',
        'label=blue',
        '--target',
        'aks',
        '--name',
        name,
        '--task-queue',
        suite.taskQueue,
      ],
      { timeoutMs: 600_000 },
    );
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout + suite.bed.kubelet.events.join('\n'));
      assert.match(deployed.stdout, /model azureml-models\/colours\/1\/colours from 2 blob\(s\), \d+ bytes/);
      assert.match(deployed.stdout, /✔ smokeQuery \([^)]+\): 200, label = blue/);
      assert.match(deployed.stdout, /Endpoint: https:\/\/inferctl-[^ ]+\/score, any method/);
      // A mirror rollout is the local target's for now: refused before anything starts, the version serves on.
      const mirror = await runInferctl(
        ['rollout', name, '--model', fixture('v2-model', 'colours'), '--mirror', '100', '--compare', 'top1'],
        { timeoutMs: 120_000 },
      );
      assert.equal(mirror.code, 2, mirror.stderr + mirror.stdout);
      assert.match(
        mirror.stderr,
        /a mirror rollout runs on the local target for now \(not "aks"\); roll out with --canary/,
      );
    } finally {
      const down = await runInferctl(['teardown', name], { timeoutMs: 600_000 });
      assert.equal(down.code, 0, down.stderr + down.stdout);
    }
    for (let i = 0; i < 100 && (await suite.bed.namespaces()).includes(`inferctl-${name}`); i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(!(await suite.bed.namespaces()).includes(`inferctl-${name}`), 'the namespace is gone');
  });
});
