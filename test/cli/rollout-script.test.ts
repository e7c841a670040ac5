/**
 * `inferctl rollout NAME --model DIR` of a scoring-script deployment (local), through bin/inferctl.js: the
 * new model folder is validated as the script's, a candidate bundle (same script and environment, the new
 * model under azureml-models/) serves beside the old one through the bake, then replaces it behind the same
 * endpoint and key; the script's answers follow the new model, and teardown leaves no Python server. The
 * candidate is smoke-queried with the rollout's own expectation (`--smoke-sample --expect-json
 * --expect-status`), and one it misses keeps the old version serving; the expectation flags' misuse is refused.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { LocalLayout } from '../../src/targets/local/layout';
import { runInferctl } from '../helpers/cli';
import { PYTHON_SKIP, fixture, pythonServersUnder, scriptWorkers } from '../helpers/script-fixtures';
import { uniqueName } from '../helpers/workers';

const inferctl = (args: string[]) => runInferctl(args, { timeoutMs: 600_000 });

describe('inferctl rollout of a scoring-script deployment', { skip: PYTHON_SKIP }, () => {
  const set = scriptWorkers('script-rollout');

  test('a new model folder rolls out behind the same endpoint and key; the script answers from it', async () => {
    const sample = path.join(set.scratch, 'index1.json');
    await fs.writeFile(sample, '{"index": 1}');
    const next = path.join(set.scratch, 'next', 'colours');
    await fs.mkdir(next, { recursive: true });
    await fs.writeFile(path.join(next, 'labels.txt'), 'cyan\nmagenta\nyellow\nblack\n');
    const name = uniqueName('scriptroll');
    const layout = new LocalLayout(name);
    const deployed = await inferctl([
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
      '--name',
      name,
      '--task-queue',
      set.controlQueue,
    ]);
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
      const endpoint = /Endpoint: (http:\/\/127\.0\.0\.1:\d+)\/score/.exec(deployed.stdout)?.[1];
      assert.ok(endpoint, deployed.stdout);
      const key = (await fs.readFile(layout.apiKeyFile, 'utf8')).trim();
      const ask = async () => {
        const res = await fetch(`${endpoint}/score`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: '{"index": 1}',
        });
        assert.equal(res.status, 200);
        return (await res.json()) as { label: string; labels: number };
      };
      assert.deepEqual(await ask(), { label: 'green', labels: 3, workerSecret: null, apiKeySeen: false });

      // The deployment's own expectation (label=green) is the candidate's by default; the new model answers
      // magenta, so a rollout without its own expectation is kept off, as is one expecting the old answer.
      for (const expectation of [[], ['--smoke-sample', sample, '--expect-json', 'label=green']]) {
        const missed = await inferctl(['rollout', name, '--model', next, '--bake', '2s', ...expectation]);
        const output = missed.stderr + missed.stdout;
        assert.equal(missed.code, 1, output);
        assert.match(
          output,
          /The candidate's smoke query answer does not meet the expectation: label is "magenta", not "green"/,
        );
        assert.deepEqual(await ask(), { label: 'green', labels: 3, workerSecret: null, apiKeySeen: false });
      }
      const usage: Array<[string[], RegExp, number]> = [
        [['--expect-contains', 'x'], /--expect-\* need --smoke-sample/, 2],
        [
          ['--smoke-sample', sample, '--expect-json', 'label=red', '--expect-label', 'red'],
          /Give one of --expect-label, --expect-json and --expect-contains/,
          2,
        ],
        [
          ['--onnx-server', '--smoke-sample', sample, '--expect-contains', 'red'],
          /--expect-status, --expect-json and --expect-contains check a scoring script’s answer/,
          2,
        ],
      ];
      for (const [args, message, code] of usage) {
        const refused = await inferctl(['rollout', name, '--model', next, ...args]);
        assert.equal(refused.code, code, refused.stderr + refused.stdout);
        assert.match(refused.stderr + refused.stdout, message);
      }

      const rolled = await inferctl([
        'rollout',
        name,
        '--model',
        next,
        '--bake',
        '2s',
        '--canary',
        '50',
        '--smoke-sample',
        sample,
        '--expect-status',
        '200',
        '--expect-json',
        'label=magenta',
      ]);
      assert.equal(rolled.code, 0, rolled.stderr + rolled.stdout);
      const after = await ask();
      assert.deepEqual([after.label, after.labels], ['magenta', 4], 'the script loads the new model folder');
      const status = await inferctl(['status', name, '--json']);
      assert.equal(status.code, 0, status.stderr);
      const view = JSON.parse(status.stdout) as { status?: { stage?: string } };
      assert.equal(view.status?.stage, 'serving');
      assert.ok(JSON.stringify(view.status).includes(next), 'the new version is recorded');
    } finally {
      const down = await inferctl(['teardown', name]);
      assert.equal(down.code, 0, down.stderr);
    }
    assert.deepEqual(await pythonServersUnder(layout.dir), [], 'no Python server is left');
  });
});
