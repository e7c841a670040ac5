/**
 * `inferctl score` as a script or a CI log sees it: stdout is a pipe, not a terminal, so progress comes as
 * whole lines (no bar redrawn with carriage returns or escapes), and with --json only the JSON document.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { writeSampleImages } from '../../src/demo/sample-images';
import { readJsonl } from '../helpers/jsonl';
import { demoAssets, startControlWorker, startGpuWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';
import { runInferctl } from '../helpers/cli';

const inferctl = (args: string[]) => runInferctl(args);

const PROGRESS_LINE =
  /^(Listing inputs…|\[[#.]{30}\] \d+\.\d% \d+\/\d+ items, \d+ items\/s, ETA [^,]+, \d+ failed, shards \d+\/\d+ \(\d+ running\))$/;

describe('inferctl score, stdout not a terminal', () => {
  const controlQueue = uniqueName('score-control');
  const gpuQueue = uniqueName('score-gpu');
  const workers: WorkerProcess[] = [];
  let scratch: string;
  let modelPath: string;

  before(async () => {
    modelPath = (await demoAssets()).modelPath;
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-score-'));
    await writeSampleImages(path.join(scratch, 'in'), 12);
    workers.push(await startControlWorker(controlQueue), await startGpuWorker(gpuQueue));
  });
  after(async () => {
    for (const w of workers) await w.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  const job = (name: string, output: string, ...more: string[]) => [
    'score',
    '--model',
    modelPath,
    '--input',
    path.join(scratch, 'in'),
    '--output',
    output,
    '--name',
    name,
    '--shard-size',
    '3',
    '--concurrency',
    '2',
    '--task-queue',
    controlQueue,
    '--gpu-queue',
    gpuQueue,
    ...more,
  ];

  test('progress and the summary come as plain lines', async () => {
    const name = uniqueName('lines');
    const output = path.join(scratch, 'out-lines');
    const run = await inferctl(job(name, output));
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stdout, /[\r\x1b]/, 'no carriage returns or terminal escapes');
    const lines = run.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `Started score-${name}`);
    assert.match(lines[1] ?? '', /^Web UI: http/);
    const scored = lines.findIndex((l) => l.startsWith('Scored '));
    assert.ok(scored > 1, `a summary line: ${run.stdout}`);
    const progress = lines.slice(2, scored);
    assert.ok(progress.length >= 1, `at least one progress line (the first is printed at once): ${run.stdout}`);
    for (const line of progress) assert.match(line, PROGRESS_LINE);
    assert.match(lines[scored]!, /^Scored 12 of 12 inputs \(0 failed\) in .+: [\d.]+ items\/s on [\w, ]+\.$/);
    assert.deepEqual(
      lines.slice(scored + 1).map((l) => l.split(':')[0]),
      ['Cost', 'Predictions', 'Summary'],
      'then where the files are',
    );
    assert.equal((await readJsonl(path.join(output, 'predictions.jsonl'))).length, 12);

    const status = await inferctl(['score', 'status', name]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^score-${name}: completed, 12/12 scored, 0 failed\\n`));
  });

  test('with --json, stdout is the JSON document alone', async () => {
    const name = uniqueName('json');
    const run = await inferctl(job(name, path.join(scratch, 'out-json'), '--json'));
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { workflowId: string; summary: { itemsOk: number } };
    assert.equal(result.workflowId, `score-${name}`);
    assert.equal(result.summary.itemsOk, 12);
  });
});
