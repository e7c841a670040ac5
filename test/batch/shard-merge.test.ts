/**
 * Gathering shards: raw.npy is the .npy header for the total row count followed by every shard's rows in
 * shard order; a shard whose raw bytes do not match its scored rows fails the merge and leaves no file;
 * concatenation skips missing files only when asked and never leaves a temp file behind.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { parseNpyHeader } from '../../src/batch/npy';
import { BatchLayout, SHARD_FILES } from '../../src/batch/output-layout';
import { concatFiles, mergeRawOutputs } from '../../src/batch/shard-merge';
import { StepFailedError } from '../../src/errors';
import { FailureType } from '../../src/shared/failure-types';

let dir: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-shard-merge-'));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const CLASSES = 4;
/** Row r of the whole job: [r, r + 0.25, r + 0.5, r + 0.75]. */
const row = (r: number) => Array.from({ length: CLASSES }, (_, c) => r + c / CLASSES);

async function shardWithRows(layout: BatchLayout, shard: number, first: number, count: number): Promise<void> {
  await fs.mkdir(layout.shardDir(shard), { recursive: true });
  const values = Float32Array.from(Array.from({ length: count }, (_, i) => row(first + i)).flat());
  await fs.writeFile(path.join(layout.shardDir(shard), SHARD_FILES.raw), Buffer.from(values.buffer));
}

async function leftovers(outputDir: string): Promise<string[]> {
  return (await fs.readdir(outputDir)).filter((f) => f.endsWith('.tmp'));
}

test('raw.npy: the header for the total rows, then each shard in shard order', async () => {
  const layout = new BatchLayout(path.join(dir, 'ok'));
  // Shard 1 scored nothing (every input failed); shard 2 is written before shard 0 to rule out file order.
  await shardWithRows(layout, 2, 3, 3);
  await shardWithRows(layout, 0, 0, 3);
  await shardWithRows(layout, 1, 3, 0);
  const beats: number[] = [];
  const shape = await mergeRawOutputs(
    layout,
    [
      { shard: 0, itemsOk: 3 },
      { shard: 1, itemsOk: 0 },
      { shard: 2, itemsOk: 3 },
    ],
    CLASSES,
    () => beats.push(1),
  );
  assert.deepEqual(shape, [6, CLASSES]);
  assert.equal(beats.length, 3, 'a heartbeat per shard');

  const file = await fs.readFile(layout.rawFile);
  const header = parseNpyHeader(file);
  assert.deepEqual(header.shape, [6, CLASSES]);
  assert.equal(header.descr, '<f4');
  assert.equal(header.dataOffset % 64, 0);
  assert.equal(file.length, header.dataOffset + 6 * CLASSES * 4, 'nothing after the last row');
  const values = new Float32Array(
    file.buffer.slice(file.byteOffset + header.dataOffset, file.byteOffset + file.length),
  );
  for (let r = 0; r < 6; r++) {
    assert.deepEqual(Array.from(values.subarray(r * CLASSES, (r + 1) * CLASSES)), row(r), `row ${r}`);
  }
  assert.deepEqual(await leftovers(layout.outputDir), []);
});

test('a job that scored nothing still gets a loadable raw.npy of shape (0, classes)', async () => {
  const layout = new BatchLayout(path.join(dir, 'empty'));
  await shardWithRows(layout, 0, 0, 0);
  assert.deepEqual(await mergeRawOutputs(layout, [{ shard: 0, itemsOk: 0 }], CLASSES), [0, CLASSES]);
  const file = await fs.readFile(layout.rawFile);
  assert.deepEqual(parseNpyHeader(file).shape, [0, CLASSES]);
  assert.equal(file.length, 128);
});

test('a shard whose raw bytes are not its rows × classes fails the merge, leaving no raw.npy', async () => {
  const layout = new BatchLayout(path.join(dir, 'bad'));
  await shardWithRows(layout, 0, 0, 2);
  await shardWithRows(layout, 1, 2, 2);
  const cases: Array<[number, RegExp]> = [
    [3, /Shard 1's raw outputs .* hold 32 bytes, not 3 rows × 4 float32 values \(48 bytes\)/],
    [1, /hold 32 bytes, not 1 rows/],
  ];
  for (const [claimed, message] of cases) {
    await assert.rejects(
      mergeRawOutputs(
        layout,
        [
          { shard: 0, itemsOk: 2 },
          { shard: 1, itemsOk: claimed },
        ],
        CLASSES,
      ),
      (err: unknown) => {
        assert.ok(err instanceof StepFailedError);
        assert.equal(err.type, FailureType.BatchOutputsInconsistent);
        assert.match(err.message, message);
        assert.match(err.message, /run the job again/);
        return true;
      },
    );
  }
  await assert.rejects(
    mergeRawOutputs(layout, [{ shard: 5, itemsOk: 1 }], CLASSES),
    /Shard 5's raw outputs .* hold nothing/,
  );
  await assert.rejects(fs.access(layout.rawFile), 'no raw.npy was written');
  assert.deepEqual(await leftovers(layout.outputDir).catch(() => []), []);
});

test('concatFiles: in order, missing files skipped only when asked, temp file never left behind', async () => {
  const sub = path.join(dir, 'concat');
  await fs.mkdir(sub, { recursive: true });
  const a = path.join(sub, 'a');
  const b = path.join(sub, 'b');
  await fs.writeFile(a, 'first\n');
  await fs.writeFile(b, 'second\n');
  const target = path.join(sub, 'all.jsonl');
  await concatFiles([b, path.join(sub, 'missing'), a], target, { prefix: Buffer.from('#\n'), skipMissing: true });
  assert.equal(await fs.readFile(target, 'utf8'), '#\nsecond\nfirst\n');

  await assert.rejects(concatFiles([a, path.join(sub, 'missing')], target), { code: 'ENOENT' });
  assert.equal(await fs.readFile(target, 'utf8'), '#\nsecond\nfirst\n', 'the previous file is untouched');
  assert.deepEqual(await leftovers(sub), []);
});
