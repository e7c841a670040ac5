/** Demo assets are made once, reused as they are, and repaired when damaged. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { ensureDemoAssets } from '../../src/demo/demo-assets';
import { readModelInfo } from '../../src/model/model-info';
import { TINY_CNN_LABELS } from '../../src/demo/tiny-cnn';

test('ensureDemoAssets writes the model, its labels and samples once, and repairs damage', async () => {
  const dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-demo-')), 'nested', 'assets');
  try {
    const first = await ensureDemoAssets(dir);
    assert.equal(first.modelPath, path.join(dir, 'tiny-cnn.onnx'));
    assert.equal(first.labelsPath, path.join(dir, 'tiny-cnn.labels.txt'));
    assert.deepEqual((await fs.readFile(first.labelsPath, 'utf8')).trim().split('\n'), TINY_CNN_LABELS);
    assert.deepEqual((await readModelInfo(first.modelPath)).labels, TINY_CNN_LABELS);
    assert.deepEqual(
      first.samples.map((s) => s.label),
      TINY_CNN_LABELS,
    );
    for (const s of first.samples) assert.deepEqual([...(await fs.readFile(s.path)).subarray(0, 2)], [0xff, 0xd8]);

    const mtimes = async () =>
      Promise.all([first.modelPath, ...first.samples.map((s) => s.path)].map(async (f) => (await fs.stat(f)).mtimeMs));
    const before = await mtimes();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const again = await ensureDemoAssets(dir);
    assert.deepEqual(again, first);
    assert.deepEqual(await mtimes(), before, 'nothing rewritten on the second call');

    await fs.writeFile(first.modelPath, 'truncated');
    await fs.rm(first.samples[0]!.path);
    await Promise.all([ensureDemoAssets(dir), ensureDemoAssets(dir)]);
    assert.deepEqual((await readModelInfo(first.modelPath)).labels, TINY_CNN_LABELS, 'damaged model rewritten');
    await fs.access(first.samples[0]!.path);
    assert.deepEqual(
      (await fs.readdir(dir)).filter((f) => f.endsWith('.tmp')),
      [],
      'no temp files left',
    );
  } finally {
    await fs.rm(path.dirname(path.dirname(dir)), { recursive: true, force: true });
  }
});
