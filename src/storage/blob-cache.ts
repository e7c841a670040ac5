/**
 * The worker's blob cache (`<inferctl home>/blob-cache/`), where blob models are copied before use: what
 * the ONNX path's one-blob copy (./blob-model.ts) and a script's model folder (./blob-tree.ts) share. Each
 * keeps its own layout under it; both name their folders by `cacheKey()` and make every entry under a
 * temporary sibling name renamed into place, so a half-made copy is never used and two makers at once
 * both end with a whole one.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { fileExists } from '../file-exists';
import { blobCacheDir } from '../paths';

/** A folder name for `text` (a location, a listing's digest): 32 hex digits of its sha256. */
export function cacheKey(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** `<blob cache>/<cacheKey(part)>/…` for each part. */
export function cachePath(...parts: string[]): string {
  return path.join(blobCacheDir(), ...parts.map(cacheKey));
}

/**
 * Makes `entry` (a file or a folder): `fill(tmp)` writes a temporary sibling, which is then renamed to
 * `entry`. When the rename fails and `made()` says another maker's entry is there, theirs is kept (it
 * was made from the same blobs). The temporary sibling is removed on every path.
 */
export async function placeOnce(
  entry: string,
  fill: (tmp: string) => Promise<void>,
  made: () => Promise<boolean> = () => fileExists(entry),
): Promise<void> {
  const tmp = `${entry}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.mkdir(path.dirname(entry), { recursive: true });
    await fill(tmp);
    try {
      await fs.rename(tmp, entry);
    } catch (err) {
      if (!(await made())) throw err;
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
