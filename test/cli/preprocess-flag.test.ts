/**
 * `--preprocess <preset|file.json>` on deploy and score: a preset name or a spec file, checked where the
 * user typed it (every problem at once, exit 2, before any workflow starts).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CliError } from '../../src/cli/cli-error';
import { preprocessFlag } from '../../src/cli/preprocess-flag';
import { runInferctl } from '../helpers/cli';

// No Temporal here: the flag must be refused before any connection is tried.
const inferctl = (args: string[]) =>
  runInferctl(args, { env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' }, timeoutMs: 60_000 });

describe('--preprocess', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-preprocess-flag-'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  test('a preset name, or a spec file read and checked', async () => {
    assert.deepEqual(preprocessFlag('keras-caffe'), { preset: 'keras-caffe' });
    const good = path.join(dir, 'good.json');
    await fs.writeFile(good, JSON.stringify({ preset: 'keras-tf', layout: 'NHWC', output: 'logits' }));
    assert.deepEqual(preprocessFlag(good), { preset: 'keras-tf', layout: 'NHWC', output: 'logits' });
    const bad = path.join(dir, 'bad.json');
    await fs.writeFile(bad, JSON.stringify({ scale: 0, channelOrder: 'GBR' }));
    assert.throws(
      () => preprocessFlag(bad),
      (err: unknown) =>
        err instanceof CliError &&
        err.exitCode === 2 &&
        /scale must be a positive number/.test(err.message) &&
        /channelOrder must be one of "RGB", "BGR", not "GBR"/.test(err.message),
    );
    assert.throws(
      () => preprocessFlag(path.join(dir, 'missing.json')),
      /not a preset \(torchvision, .*\) and not a readable file/,
    );
    const text = path.join(dir, 'text.json');
    await fs.writeFile(text, 'resize 256');
    assert.throws(() => preprocessFlag(text), /is not JSON/);
  });

  test('deploy and score refuse a bad spec with exit 2, before connecting', async () => {
    const bad = path.join(dir, 'two-problems.json');
    await fs.writeFile(bad, JSON.stringify({ crop: { width: -1, height: 2 }, interpolation: 'lanczos' }));
    const deploy = await inferctl(['deploy', '-m', path.join(dir, 'm.onnx'), '--preprocess', bad]);
    assert.equal(deploy.code, 2, deploy.stderr);
    assert.match(deploy.stderr, /crop\.width must be a positive integer, not -1/);
    assert.match(deploy.stderr, /interpolation must be one of "nearest", "bilinear", "bicubic"/);
    const score = await inferctl(['score', '-m', 'm.onnx', '-i', dir, '-o', dir, '--preprocess', 'vgg']);
    assert.equal(score.code, 2, score.stderr);
    assert.match(score.stderr, /--preprocess vgg: not a preset/);
  });

  test('--decode on deploy and score: exact, fast or draft, else exit 2 before connecting', async () => {
    for (const command of [
      ['deploy', '-m', 'm.onnx'],
      ['score', '-m', 'm.onnx', '-i', dir, '-o', dir],
    ]) {
      const refused = await inferctl([...command, '--decode', 'quick']);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /argument 'quick' is invalid\. Allowed choices are exact, fast, draft/);
    }
  });
});
