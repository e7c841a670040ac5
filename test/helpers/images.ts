import fs from 'node:fs/promises';
import path from 'node:path';

import { makeColourJpeg } from '../../src/demo/sample-images';

/** Writes `count` copies of a few distinct images (hard links: 20,000 files in well under a second). */
export async function writeCopies(dir: string, count: number, size: number): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const labels = ['red', 'green', 'blue', 'yellow'];
  const originals: string[] = [];
  for (const [i, label] of labels.entries()) {
    const file = path.join(dir, `.original-${label}.jpg`);
    await fs.writeFile(file, await makeColourJpeg(label, { size, seed: i }));
    originals.push(file);
  }
  for (let i = 0; i < count; i++) {
    await fs.link(originals[i % originals.length]!, path.join(dir, `img-${String(i).padStart(6, '0')}.jpg`));
  }
}
