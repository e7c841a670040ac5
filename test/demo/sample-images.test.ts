/** Sample images are deterministic, distinct per seed, and mostly their label's colour. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import sharp from 'sharp';

import { makeColourJpeg, writeSampleImages } from '../../src/demo/sample-images';
import { TINY_CNN_LABELS } from '../../src/demo/tiny-cnn';

test('makeColourJpeg: same options, same bytes; another seed, another image; mostly the colour', async () => {
  const a = await makeColourJpeg('green', { size: 40, seed: 3 });
  assert.deepEqual(await makeColourJpeg('green', { size: 40, seed: 3 }), a);
  assert.notDeepEqual(await makeColourJpeg('green', { size: 40, seed: 4 }), a);
  const { data, info } = await sharp(a).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [40, 40, 3]);
  let green = 0;
  for (let i = 0; i < data.length; i += 3) if (data[i + 1]! > 180 && data[i]! < 80 && data[i + 2]! < 80) green++;
  const share = green / (40 * 40);
  assert.ok(share > 0.75 && share < 0.95, `${share} of the pixels are green; the rest is the distractor`);
  await assert.rejects(makeColourJpeg('purple'), /No colour for label "purple"/);
});

test('writeSampleImages cycles through the labels', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-samples-'));
  try {
    const written = await writeSampleImages(path.join(dir, 'in'), 10, { size: 24 });
    assert.equal(written.length, 10);
    assert.deepEqual(
      written.map((w) => w.label),
      [...TINY_CNN_LABELS, ...TINY_CNN_LABELS.slice(0, 2)],
    );
    assert.equal(path.basename(written[9]!.path), 'green-00009.jpg');
    assert.equal((await fs.readdir(path.join(dir, 'in'))).length, 10);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
