/**
 * `inferctl rollout --mirror --compare` through bin/inferctl.js with real processes: the how-to's score.py
 * (azureml-inference-server-http, onnxruntime) serving, a client load running throughout, and the demo
 * model's ONNX version mirrored beside it. With the wrong preprocessing (BGR for an RGB model: red and blue
 * swap) the comparison disagrees and the candidate is kept off, the report naming the disagreement; with
 * the model's own preprocessing it agrees and is promoted. The load never sees a failed request, and only
 * the serving version's answers while the candidate is mirrored. `inferctl status` shows the comparison.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { LocalLayout } from '../../src/targets/local/layout';
import { findProcessesByMarker } from '../../src/targets/local/processes';
import { mirrorFlags, runInferctl } from '../helpers/cli';
import { recordFigure } from '../helpers/reliability';
import { PYTHON_SKIP, SCRIPT_WORKER_ENV, fixture, pythonServersUnder } from '../helpers/script-fixtures';
import { demoAssets, startControlWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

const inferctl = (args: string[], timeoutMs = 600_000) => runInferctl(args, { timeoutMs });

interface LoadResult {
  requests: number;
  failed: string[];
  /** Answers shaped as the script's (it adds "probabilities"), and as inferctl's ONNX server's. */
  scriptAnswers: number;
  onnxAnswers: number;
}

/** POSTs the samples round and round through the endpoint with the key until `stop` is aborted. */
async function clientLoad(endpoint: string, key: string, samples: Buffer[], stop: AbortSignal): Promise<LoadResult> {
  const result: LoadResult = { requests: 0, failed: [], scriptAnswers: 0, onnxAnswers: 0 };
  for (let i = 0; !stop.aborted; i++) {
    result.requests++;
    try {
      const res = await fetch(`${endpoint}/score`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg', 'x-request-id': `load-${i}` },
        body: samples[i % samples.length],
      });
      const text = await res.text();
      if (res.status !== 200) result.failed.push(`${res.status} ${text.slice(0, 200)}`);
      else if ('probabilities' in (JSON.parse(text) as object)) result.scriptAnswers++;
      else result.onnxAnswers++;
    } catch (err) {
      result.failed.push((err as Error).message);
    }
  }
  return result;
}

describe('inferctl rollout --mirror', { skip: PYTHON_SKIP }, () => {
  // script → script is below; script → ONNX and ONNX → ONNX in one deployment's life.
  const taskQueue = uniqueName('cli-mirror-tq');
  let worker: WorkerProcess;
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-cli-mirror-'));
    worker = await startControlWorker(taskQueue, [], { ...process.env, ...SCRIPT_WORKER_ENV });
  });
  after(async () => {
    await worker?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('the mirror flags that need one another are exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--compare', 'top1'], /--compare go with --mirror/],
      [['--mirror', '100'], /--mirror needs --compare/],
      [['--mirror', '100', '--compare', 'top1', '--canary', '5'], /Give --mirror or --canary, not both/],
      [['--mirror', '0', '--compare', 'top1'], /--mirror must be a whole percentage from 1 to 100/],
      [['--mirror', '50', '--compare', 'close'], /--compare takes top1 or tolerance:X/],
      [['--mirror', '50', '--compare', 'top1', '--min-agreement', '1.5'], /--min-agreement must be a fraction/],
    ];
    for (const [args, message] of cases) {
      const run = await inferctl(['rollout', 'some-name', '--model', 'm.onnx', ...args]);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
  });

  test('script → ONNX: the wrong preprocessing is kept off naming the disagreement, the right one is promoted', async () => {
    const assets = await demoAssets();
    const sampleOf = (label: string) => assets.samples.find((s) => s.label === label)!;
    const samples = await Promise.all(['red', 'blue', 'green'].map((l) => fs.readFile(sampleOf(l).path)));
    const name = uniqueName('mirror');
    const layout = new LocalLayout(name);
    const deployed = await inferctl([
      'deploy',
      '--entry-script',
      fixture('howto', 'score.py'),
      '--environment',
      fixture('howto', 'myenv.yml'),
      '--model',
      assets.modelPath,
      '--model-name',
      'tiny-cnn',
      '--ttl',
      '30m',
      '--name',
      name,
      '--task-queue',
      taskQueue,
    ]);
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
      const endpoint = /Endpoint: (http:\/\/127\.0\.0\.1:\d+)\/score/.exec(deployed.stdout)?.[1];
      assert.ok(endpoint, deployed.stdout);
      const key = (await fs.readFile(layout.apiKeyFile, 'utf8')).trim();
      const bgr = path.join(dir, 'bgr.json');
      await fs.writeFile(bgr, JSON.stringify({ channelOrder: 'BGR' }));

      // 1. The wrong preprocessing: kept off; the load sees only the script's answers, none failed.
      const stopBad = new AbortController();
      const badLoad = clientLoad(endpoint, key, samples, stopBad.signal);
      let statusLine: string | undefined;
      const statusSeen: string[] = [];
      const watchStatus = (async () => {
        while (!stopBad.signal.aborted && !statusLine) {
          const s = await inferctl(['status', name], 60_000);
          statusSeen.push(
            `${new Date().toISOString()} ${s.code} ${/rolling out [^\n]*/.exec(s.stdout)?.[0]} ${s.stderr}`,
          );
          statusLine = /comparison: \d+ pair\(s\) compared, [^\n]*/.exec(s.stdout)?.[0];
          await delay(200);
        }
      })();
      const bad = await inferctl([
        'rollout',
        name,
        '--onnx-server',
        '--model',
        assets.modelPath,
        '--preprocess',
        bgr,
        ...mirrorFlags({ minAgreement: 0.99, minPairs: 10, bake: '12s' }),
      ]);
      stopBad.abort();
      const badSeen = await badLoad;
      await watchStatus;
      assert.notEqual(bad.code, 0, bad.stdout);
      const badReport = bad.stderr + bad.stdout;
      assert.match(badReport, /rolled back \(Kept off: the candidate agreed on \d+ of \d+ pair\(s\)/);
      assert.match(badReport, /\[load-\d+\] top label "(red|blue)" vs "(blue|red)": serving 200 \{"predictions"/);
      assert.match(badReport, /still serves/);
      const kept = /agreed on (\d+) of (\d+) pair\(s\)/.exec(badReport)!;
      recordFigure({
        test: 'rollout-mirror.test.ts',
        figure: 'mirror script → ONNX with BGR for an RGB model: agreement (kept off; red and blue swap, green agrees)',
        value: Math.round((1000 * Number(kept[1])) / Number(kept[2])) / 10,
        unit: '%',
      });
      assert.ok(statusLine, `\`inferctl status\` showed the comparison while it ran: ${statusSeen.join('\n')}`);
      assert.deepEqual(badSeen.failed, [], 'no client request failed during the mirror');
      assert.equal(badSeen.onnxAnswers, 0, "no client got the candidate's answer");
      assert.ok(badSeen.scriptAnswers > 0);
      assert.deepEqual(await findProcessesByMarker(layout.candidateMarker), [], 'the candidate is gone');
      await assert.rejects(fs.access(layout.candidateDir));

      // 2. The model's own preprocessing: agrees, promoted; still no failed request.
      const stopGood = new AbortController();
      const goodLoad = clientLoad(endpoint, key, samples, stopGood.signal);
      const good = await inferctl([
        'rollout',
        name,
        '--onnx-server',
        '--model',
        assets.modelPath,
        ...mirrorFlags({ minPairs: 10, bake: '8s' }),
      ]);
      stopGood.abort();
      const goodSeen = await goodLoad;
      assert.equal(good.code, 0, good.stderr + good.stdout);
      const compared = /Comparison: (\d+) pair\(s\) compared, 100\.0% agree, (\d+) dropped/.exec(good.stdout);
      assert.ok(compared, good.stdout);
      assert.ok(Number(compared[1]) >= 10);
      assert.match(good.stdout, new RegExp(`${name} now serves tiny-cnn\\.onnx`));
      assert.deepEqual(goodSeen.failed, [], 'no client request failed through the mirror and the promotion');
      recordFigure({
        test: 'rollout-mirror.test.ts',
        figure: 'mirror script → ONNX: pairs compared in an 8 s bake under one client (100.0% agree)',
        value: Number(compared[1]),
        unit: 'pairs',
      });

      const stopOnnx = new AbortController();
      const onnxLoad = clientLoad(endpoint, key, samples, stopOnnx.signal);
      // 3. ONNX → ONNX, half the requests mirrored, scores within a tolerance: promoted.
      const onnx = await inferctl([
        'rollout',
        name,
        '--model',
        assets.modelPath,
        ...mirrorFlags({ percent: 50, compare: 'tolerance:0.001', minPairs: 3, bake: '6s' }),
        '--smoke-sample',
        sampleOf('blue').path,
        '--expect-label',
        'blue',
      ]);
      stopOnnx.abort();
      assert.deepEqual((await onnxLoad).failed, []);
      assert.equal(onnx.code, 0, onnx.stderr + onnx.stdout);
      assert.match(onnx.stdout, /Comparison: \d+ pair\(s\) compared, 100\.0% agree, 0 dropped, largest difference 0/);

      const after = await fetch(`${endpoint}/score`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg' },
        body: samples[0],
      });
      const answer = (await after.json()) as { predictions: Array<{ label: string }> };
      assert.equal(answer.predictions[0]!.label, 'red');
      assert.ok(!('probabilities' in answer), "inferctl's ONNX server answers now");
      assert.deepEqual(await pythonServersUnder(layout.dir), [], "the script's Python servers are gone");
    } finally {
      const down = await inferctl(['teardown', name]);
      assert.equal(down.code, 0, down.stderr);
    }
    assert.deepEqual(await findProcessesByMarker(layout.processMarker), []);
  });

  test('script → script: the how-to script rolled out to itself under another model version agrees and is promoted', async () => {
    const assets = await demoAssets();
    const samples = await Promise.all(
      ['yellow', 'cyan'].map((l) => fs.readFile(assets.samples.find((s) => s.label === l)!.path)),
    );
    const name = uniqueName('mirror-ss');
    const layout = new LocalLayout(name);
    const script = ['--entry-script', fixture('howto', 'score.py'), '--environment', fixture('howto', 'myenv.yml')];
    const deployed = await inferctl([
      'deploy',
      ...script,
      '--model',
      assets.modelPath,
      '--model-name',
      'tiny-cnn',
      '--ttl',
      '30m',
      '--name',
      name,
      '--task-queue',
      taskQueue,
    ]);
    try {
      assert.equal(deployed.code, 0, deployed.stderr + deployed.stdout);
      const endpoint = /Endpoint: (http:\/\/127\.0\.0\.1:\d+)\/score/.exec(deployed.stdout)?.[1];
      assert.ok(endpoint, deployed.stdout);
      const key = (await fs.readFile(layout.apiKeyFile, 'utf8')).trim();
      const stop = new AbortController();
      const load = clientLoad(endpoint, key, samples, stop.signal);
      const rolled = await inferctl([
        'rollout',
        name,
        ...script,
        '--model',
        assets.modelPath,
        '--model-name',
        'tiny-cnn',
        '--model-version',
        '2',
        ...mirrorFlags({ compare: 'tolerance:0.0001', minPairs: 5, bake: '6s' }),
      ]);
      stop.abort();
      const seen = await load;
      assert.equal(rolled.code, 0, rolled.stderr + rolled.stdout);
      assert.match(rolled.stdout, /Comparison: \d+ pair\(s\) compared, 100\.0% agree/);
      assert.match(rolled.stdout, new RegExp(`${name} now serves score\\.py`));
      assert.deepEqual(seen.failed, []);
      assert.equal(seen.onnxAnswers, 0, 'a script answered every request');
      const status = await inferctl(['status', name]);
      assert.match(status.stdout, /version tiny-cnn\.onnx[^\n]*replaced by/);
    } finally {
      const down = await inferctl(['teardown', name]);
      assert.equal(down.code, 0, down.stderr);
    }
    assert.deepEqual(await pythonServersUnder(layout.dir), []);
  });
});
