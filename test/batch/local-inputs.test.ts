/**
 * Local inputs as a worker meets them: a FIFO, an oversized file, a directory, a link loop, a file that
 * fails on read are each that input's error in errors.jsonl (the shard finishes, nothing hangs); a link
 * swapped in between the roots check and the open is refused by what was opened; one shard never holds
 * more than its byte budget of input at once; a reused read buffer yields each file's own bytes, never a byte
 * of the larger file it held before.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { MockActivityEnvironment } from '@temporalio/testing';

import { createScoringActivities } from '../../activities/scoring';
import { assertInsideAllowedRoots, readFileInsideAllowedRoots } from '../../src/allowed-roots';
import { writeShardManifests } from '../../src/batch/input-listing';
import { ByteBudget, MAX_INPUT_BYTES, ReadBuffers, readLocalInput } from '../../src/batch/local-input';
import { BatchLayout } from '../../src/batch/output-layout';
import { writeSampleImages } from '../../src/demo/sample-images';
import { buildTinyCnn } from '../../src/demo/tiny-cnn';
import { InvalidInputError } from '../../src/errors';
import { readModelInfo } from '../../src/model/model-info';
import { ClassifierPool } from '../../src/scoring/classifier-pool';
import type { ShardResult, ShardTask } from '../../src/shared/batch-types';
import { readJsonl } from '../helpers/jsonl';
import { recordReliability } from '../helpers/reliability';

describe('local inputs', () => {
  let dir: string;
  const pool = new ClassifierPool({ executionProvider: 'cpu', allowCpuFallback: false }, () => undefined);
  const activities = createScoringActivities({ classifiers: pool, workerName: 'test' });
  const scoreShard = (t: ShardTask) => activities.scoreShard(t);

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-local-inputs-'));
  });
  after(async () => {
    await pool.releaseAll();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test(
    'a FIFO, an oversized file, a directory, a link loop and a failing read are each one input’s error',
    { timeout: 60_000 },
    async () => {
      const modelPath = path.join(dir, 'tiny.onnx');
      await fs.writeFile(modelPath, buildTinyCnn());
      const [good1, good2] = await writeSampleImages(path.join(dir, 'good'), 2);
      const bad = path.join(dir, 'bad');
      await fs.mkdir(bad);
      const fifo = path.join(bad, 'fifo.jpg');
      execFileSync('mkfifo', [fifo]); // nobody ever writes to it: reading it would wait forever
      const huge = path.join(bad, 'huge.jpg');
      await (await fs.open(huge, 'w')).truncate(MAX_INPUT_BYTES + 1).then(() => undefined); // sparse: no disk used
      const folder = path.join(bad, 'folder.jpg');
      await fs.mkdir(folder);
      const loop = path.join(bad, 'loop.jpg');
      await fs.symlink(loop, loop); // ELOOP on open
      const failingRead = '/proc/self/mem'; // a regular file of size 0 whose read fails (EIO)
      const expected: Record<string, string> = {
        [fifo]: 'not-a-file',
        [huge]: 'too-large',
        [folder]: 'not-a-file',
        [loop]: 'unreadable',
        [failingRead]: 'unreadable',
      };
      const manifest = path.join(dir, 'inputs.txt');
      await fs.writeFile(manifest, [good1!.path, ...Object.keys(expected), good2!.path].join('\n') + '\n');
      const layout = new BatchLayout(path.join(dir, 'out'));
      await writeShardManifests(manifest, layout.manifestDir, 100);
      const task: ShardTask = {
        jobName: 'bad-inputs',
        shard: 0,
        baseIndex: 0,
        manifestDir: layout.manifestDir,
        outputDir: layout.outputDir,
        modelPath,
        modelDigest: (await readModelInfo(modelPath)).digest,
        batchSize: 8,
        topK: 1,
        rawOutputs: false,
        requireCuda: false,
      };
      const result: ShardResult = await new MockActivityEnvironment({ attempt: 1 }).run(scoreShard, task);
      assert.equal(result.itemsOk, 2, 'the good inputs are scored');
      assert.equal(result.itemsFailed, 5);
      const errors = await readJsonl<{ path: string; reason: string }>(path.join(layout.shardDir(0), 'errors.jsonl'));
      assert.deepEqual(Object.fromEntries(errors.map((e) => [e.path, e.reason])), expected);
      recordReliability({
        test: 'FIFO, oversized and unreadable local inputs',
        faultsInjected: 0,
        survived: true,
        inputsTried: 5,
        inputsRejectedCleanly: errors.length,
        attack: 'fifo-and-oversized-inputs',
        attacksTried: 5,
        attacksRefused: errors.length,
      });
    },
  );

  test('a link swapped in between the roots check and the open is refused by what was opened', async () => {
    const root = path.join(dir, 'root');
    const secret = path.join(dir, 'secret.txt');
    await fs.mkdir(root);
    await fs.writeFile(secret, 'the victim’s secret');
    const file = path.join(root, 'photo.jpg');
    await fs.writeFile(file, 'an image');
    const roots = [await fs.realpath(root)];
    assert.doesNotThrow(() => assertInsideAllowedRoots('input', file, roots), 'a plain file inside is fine');
    assert.equal((await readFileInsideAllowedRoots('input', file, roots)).toString(), 'an image');
    // A dangling link is judged by where a write through it would land.
    await fs.symlink(path.join(dir, 'not-yet', 'out'), path.join(root, 'dangling'));
    assert.throws(
      () => assertInsideAllowedRoots('output directory', path.join(root, 'dangling', 'x'), roots),
      InvalidInputError,
    );

    // The swap lands after the name was checked and before the file is opened: fs.open is wrapped to do it.
    const api = fs as unknown as { open: typeof fs.open };
    const realOpen = api.open;
    api.open = async (...args: Parameters<typeof fs.open>) => {
      if (args[0] === file) {
        await fs.rm(file);
        await fs.symlink(secret, file);
      }
      return realOpen(...args);
    };
    let error: unknown;
    try {
      await readFileInsideAllowedRoots('input', file, roots);
    } catch (err) {
      error = err;
    } finally {
      api.open = realOpen;
    }
    assert.ok(error instanceof InvalidInputError, `refused (${String(error)})`);
    assert.match(error.message, /outside the directories this worker may use/);
    assert.doesNotMatch(error.message, /secret’s|victim/, 'the refusal does not show what the file holds');
    recordReliability({
      test: 'link swapped in after the roots check',
      faultsInjected: 0,
      survived: true,
      attack: 'symlink-escape',
      attacksTried: 2,
      attacksRefused: 2,
    });
  });

  test('one shard holds at most its byte budget of input at once', async () => {
    const budget = new ByteBudget(100);
    let peak = 0;
    await Promise.all(
      [60, 60, 30, 90, 10, 150].map(async (size) => {
        const release = await budget.take(size);
        peak = Math.max(peak, budget.inUse);
        await new Promise((resolve) => setTimeout(resolve, 5));
        release();
      }),
    );
    assert.equal(peak, 150, 'an input larger than the budget is read alone');
    assert.equal(budget.inUse, 0);
    const small = new ByteBudget(100);
    let smallPeak = 0;
    await Promise.all(
      [60, 60, 30, 90, 10].map(async (size) => {
        const release = await small.take(size);
        smallPeak = Math.max(smallPeak, small.inUse);
        await new Promise((resolve) => setTimeout(resolve, 5));
        release();
      }),
    );
    assert.ok(smallPeak <= 100, `never over the budget (peak ${smallPeak})`);
  });

  test('a reused read buffer yields each file’s own bytes, never the bytes a larger file left in it', async () => {
    const buffers = new ReadBuffers(1024, 1 << 20);
    const big = path.join(dir, 'reuse-big.bin');
    const smaller = path.join(dir, 'reuse-smaller.bin');
    await fs.writeFile(big, Buffer.alloc(6000, 0xaa));
    await fs.writeFile(smaller, Buffer.alloc(4000, 0x55));
    const first = await readLocalInput(big, { buffers });
    assert.deepEqual(first.bytes, Buffer.alloc(6000, 0xaa));
    const whole = first.bytes.buffer;
    first.release();
    first.release(); // twice: given back once
    const second = await readLocalInput(smaller, { buffers });
    assert.equal(second.bytes.buffer, whole, 'the buffer the first file gave back is read into');
    assert.deepEqual(second.bytes, Buffer.alloc(4000, 0x55), 'its own 4,000 bytes, none of the 6,000 before');
    const third = await readLocalInput(smaller, { buffers });
    assert.notEqual(third.bytes.buffer, whole, 'a buffer in use is not handed out again');
    assert.deepEqual(third.bytes, Buffer.alloc(4000, 0x55));
    second.release();
    third.release();
    const tiny = buffers.take(100);
    assert.equal(tiny.give, undefined, 'an input under minBytes takes a fresh buffer');
    const huge = buffers.take(3000);
    assert.notEqual(huge.buf.buffer, whole, 'a buffer over twice the size stays for a larger input');
  });
});
