import os from 'node:os';
import path from 'node:path';

/**
 * Where inferctl keeps state that must survive a worker restart (local deployments, generated assets).
 * `INFERCTL_HOME` overrides it; tests point it at a temp dir.
 */
export function inferctlHome(): string {
  return path.resolve(process.env.INFERCTL_HOME ?? path.join(os.homedir(), '.inferctl'));
}

/** Where workers keep their copies of blob models (src/storage/blob-model.ts, blob-tree.ts). */
export function blobCacheDir(): string {
  return path.join(inferctlHome(), 'blob-cache');
}

/** Caches that are safe to share between checkouts: the Temporal CLI binary, Go build output. */
export function inferctlCacheDir(): string {
  return path.resolve(process.env.INFERCTL_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'inferctl'));
}

/** The repository root (this file is compiled to dist/src/paths.js). */
export function packageRoot(): string {
  return path.resolve(__dirname, '..', '..');
}
