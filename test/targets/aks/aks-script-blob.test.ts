/**
 * `inferctl deploy --entry-script … --model az://… --target aks` through bin/inferctl.js, on the aks doubles
 * and Azurite: the control worker lists and downloads the model folder (several blobs) and the script's image
 * carries it under azureml-models/<name>/<version>/, where the script finds it through AZUREML_MODEL_DIR in
 * the pod the kubelet stand-in runs; the smoke expectation passes over HTTPS; a mirror rollout script →
 * script (the same script, the model from a local folder) under a client load agrees and is promoted, the
 * mirror's front gone after it; teardown leaves no namespace.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { aksEndpointAccess, aksSuiteWithAzurite, assertNamespaceGone, endpointLoad } from '../../helpers/aks-fixtures';
import { mirrorFlags, runInferctl } from '../../helpers/cli';
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
        '--gpu-nodes',
        '2',
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
      // A mirror rollout script → script under a client load: the answers agree, the new version is promoted.
      const access = await aksEndpointAccess(suite, name);
      const stop = new AbortController();
      const load = endpointLoad(access, [{ label: 'blue', body: Buffer.from('{"index": 2}') }], stop.signal, {
        workers: 1,
        contentType: 'application/json',
        label: (text) => (JSON.parse(text) as { label?: string }).label,
      });
      const mirror = await runInferctl(
        ['rollout', name, '--model', fixture('v2-model', 'colours'), ...mirrorFlags({ minPairs: 5, bake: '6s' })],
        { timeoutMs: 600_000 },
      );
      stop.abort();
      const seen = await load;
      assert.equal(mirror.code, 0, mirror.stderr + mirror.stdout);
      assert.match(mirror.stdout, /Comparison: \d+ pair\(s\) compared, 100\.0% agree/);
      assert.ok(seen.requests > 5, `the load ran (${seen.requests})`);
      assert.deepEqual(seen.wrong, [], 'every client request answered by the serving script');
    } finally {
      const down = await runInferctl(['teardown', name], { timeoutMs: 600_000 });
      assert.equal(down.code, 0, down.stderr + down.stdout);
    }
    await assertNamespaceGone(suite, `inferctl-${name}`);
  });
});
