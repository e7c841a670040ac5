/**
 * `inferctl deploy --entry-script` as a user coming from the Azure ML how-to runs it, through bin/inferctl.js:
 * the how-to's score.py (@rawhttp, AMLRequest/AMLResponse, Model.get_model_path with azureml-core) and its
 * conda file, scoring a JPEG with onnxruntime on the demo model, its GET reaching the script's own 405; a
 * v2-style script checked with --expect-json through its TTL; a smoke expectation the answer misses; and
 * the flags that need one another refused with exit 2.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { PYTHON_SKIP, fixture, pythonServersUnder, scriptWorkers } from '../helpers/script-fixtures';
import { demoAssets, uniqueName } from '../helpers/workers';
import { runInferctl } from '../helpers/cli';

const inferctl = (args: string[], timeoutMs = 600_000) => runInferctl(args, { timeoutMs });

describe('inferctl deploy --entry-script', { skip: PYTHON_SKIP }, () => {
  const set = scriptWorkers('cli-script');

  test('the script flags that need one another are exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--source-dir', 'src', '--environment', 'env.yml'], /--source-dir, --environment go with --entry-script/],
      [['--entry-script', 's.py', '--expect-json', 'nope'], /--expect-json takes PATH=VALUE/],
      [['--entry-script', 's.py', '--expect-status', '99'], /--expect-status must be an HTTP status/],
      [['--entry-script', 's.py', '--expect-contains', 'x'], /--expect-\* need --smoke-sample/],
      [
        ['--entry-script', 's.py', '--smoke-sample', 'a.jpg', '--expect-label', 'a', '--expect-contains', 'b'],
        /Give one of --expect-label, --expect-json and --expect-contains/,
      ],
    ];
    for (const [args, message] of cases) {
      const run = await inferctl(['deploy', '--model', 'm.onnx', ...args]);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
  });

  test("the how-to's score.py and conda file score a JPEG; GET reaches the script's own 405; teardown leaves nothing", async () => {
    const assets = await demoAssets();
    const blue = assets.samples.find((s) => s.label === 'blue')!;
    const name = uniqueName('howto');
    const deployed = await inferctl([
      'deploy',
      '--entry-script',
      fixture('howto', 'score.py'),
      '--source-dir',
      fixture('howto'),
      '--environment',
      fixture('howto', 'myenv.yml'),
      '--model',
      assets.modelPath,
      '--model-name',
      'tiny-cnn',
      '--model-version',
      '3',
      '--smoke-sample',
      blue.path,
      '--expect-status',
      '200',
      '--expect-label',
      'blue',
      '--name',
      name,
      '--task-queue',
      set.controlQueue,
    ]);
    const layout = new LocalLayout(name);
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
      assert.match(
        deployed.stdout,
        /✔ validate \([^)]+\): scoring script: score\.py on Python 3\.\d+\.\d+, 6 requirement\(s\); model azureml-models\/tiny-cnn\/3\/tiny-cnn\.onnx/,
      );
      assert.match(deployed.stdout, /✔ smokeQuery \([^)]+\): 200, top label "blue"/);
      assert.match(
        deployed.stdout,
        /Smoke answer: 200 \(top label "blue"\): \{"predictions":\[\{"label":"blue","score":0\.9/,
      );
      const endpoint = /Endpoint: (http:\/\/127\.0\.0\.1:\d+)\/score, any method/.exec(deployed.stdout)?.[1];
      assert.ok(endpoint, deployed.stdout);

      const key = (await fs.readFile(layout.apiKeyFile, 'utf8')).trim();
      const get = await fetch(`${endpoint}/score`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(get.status, 405, "the script's own answer to GET");
      assert.equal(await get.text(), 'GET is not supported');
      const anonymous = await fetch(`${endpoint}/score`, { method: 'POST', body: await fs.readFile(blue.path) });
      assert.equal(anonymous.status, 401);
      const red = await fetch(`${endpoint}/score`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg' },
        body: await fs.readFile(assets.samples.find((s) => s.label === 'red')!.path),
      });
      const answer = (await red.json()) as { predictions: Array<{ label: string }>; probabilities: number[] };
      assert.equal(answer.predictions[0]!.label, 'red');
      assert.equal(answer.probabilities.length, 8);
    } finally {
      const down = await inferctl(['teardown', name]);
      assert.equal(down.code, 0, down.stderr);
    }
    assert.deepEqual(await findProcessesByMarker(layout.processMarker), []);
    assert.deepEqual(await pythonServersUnder(layout.dir), [], 'no Python server is left');
  });

  test('a v2-style script with --expect-json serves its TTL and is torn down', async () => {
    const sample = path.join(set.scratch, 'index1.json');
    await fs.writeFile(sample, '{"index": 1}');
    const name = uniqueName('v2json');
    const run = await inferctl([
      'deploy',
      '--entry-script',
      fixture('v2', 'score.py'),
      '--environment',
      fixture('v2', 'requirements.txt'),
      '--model',
      fixture('v2-model', 'colours'),
      '--smoke-sample',
      sample,
      '--expect-json',
      'label=green',
      '--ttl',
      '2s',
      '--follow',
      '--name',
      name,
      '--task-queue',
      set.controlQueue,
    ]);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /✔ smokeQuery \([^)]+\): 200, label = green/);
    assert.match(run.stdout, /Torn down \(TTL ended\)/);
    assert.deepEqual(await pythonServersUnder(new LocalLayout(name).dir), []);
  });

  test('an answer without the --expect-contains text fails the deploy, and teardown runs', async () => {
    const sample = path.join(set.scratch, 'index0.json');
    await fs.writeFile(sample, '{"index": 0}');
    const name = uniqueName('v2miss');
    const run = await inferctl([
      'deploy',
      '--entry-script',
      fixture('v2', 'score.py'),
      '--model',
      fixture('v2-model', 'colours'),
      '--smoke-sample',
      sample,
      '--expect-contains',
      '"label": "blue"',
      '--name',
      name,
      '--task-queue',
      set.controlQueue,
    ]);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr + run.stdout, /the answer does not contain "\\"label\\": \\"blue\\""/);
    assert.match(run.stderr + run.stdout, /\{"label": "red"/);
    assert.match(run.stderr + run.stdout, /Teardown completed/);
    assert.deepEqual(await pythonServersUnder(new LocalLayout(name).dir), []);
  });
});
