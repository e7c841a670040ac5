/**
 * A script deployment's model and source folder as files: a file or a folder walked in a stable order,
 * each entry's real path (links resolved) held inside the allowed roots and inside the tree itself, so a
 * link cannot make a worker copy what it was not given. The digest covers names and contents; the copy
 * follows the same walk.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { assertInsideAllowedRoots, realPath } from '../allowed-roots';
import { InvalidInputError } from '../errors';
import { blobCacheDir } from '../paths';
import { FailureType } from '../shared/failure-types';
import type { ScriptSpec } from '../shared/target-types';

export interface TreeFile {
  /** Relative to the tree's root, '/'-separated; '' for a tree that is one file. */
  relative: string;
  /** The real path to read. */
  source: string;
  size: number;
}

/** Directories never copied from a source folder: caches and virtual environments. */
const SKIPPED_DIRS = new Set(['__pycache__', '.git', '.venv', 'venv', 'node_modules', '.ipynb_checkpoints']);

/**
 * The files of a script's model: the worker's copy of an az:// model when it made one (which must lie in the
 * worker's blob cache, whatever the allowed roots), else --model itself (inside the allowed roots).
 */
export function walkScriptModel(modelPath: string, script: Pick<ScriptSpec, 'modelCopy'>): Promise<TreeFile[]> {
  if (script.modelCopy === undefined) return walkTree('model', modelPath);
  return walkTree('model', script.modelCopy, { roots: [realPath(blobCacheDir())] });
}

/** Every regular file under `root` (or `root` itself), checked; `what` names it in errors ("model", "source folder"). */
export async function walkTree(
  what: string,
  root: string,
  opts: { skipCaches?: boolean; roots?: string[] } = {},
): Promise<TreeFile[]> {
  let realRoot: string;
  try {
    realRoot = await fs.realpath(root);
  } catch {
    throw new InvalidInputError(`The ${what} ${root} does not exist on this worker.`, FailureType.InputNotFound);
  }
  assertInsideAllowedRoots(what, realRoot, opts.roots);
  const stat = await fs.stat(realRoot);
  if (stat.isFile()) return [{ relative: '', source: realRoot, size: stat.size }];
  const files: TreeFile[] = [];
  const visit = async (dir: string, prefix: string): Promise<void> => {
    const entries = (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      if (opts.skipCaches && entry.isDirectory() && SKIPPED_DIRS.has(entry.name)) continue;
      const full = path.join(dir, entry.name);
      const real = await fs.realpath(full).catch(() => undefined);
      const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (!real)
        throw new InvalidInputError(`The ${what} holds a broken link: ${full}.`, FailureType.InvalidDeployment);
      if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
        throw new InvalidInputError(
          `The ${what} holds ${relative}, a link to ${real} outside ${realRoot}; copy the file in instead of linking it.`,
          FailureType.PathNotAllowed,
        );
      }
      const s = await fs.stat(real);
      if (s.isDirectory()) await visit(real, relative);
      else if (s.isFile()) files.push({ relative, source: real, size: s.size });
    }
  };
  await visit(realRoot, '');
  return files;
}

/** sha256 over every file's relative name, size and content. */
export async function treeDigest(files: TreeFile[]): Promise<string> {
  const hash = crypto.createHash('sha256');
  for (const file of files) {
    hash.update(`${file.relative}\0${file.size}\0`);
    hash.update(await fs.readFile(file.source));
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Digests this process has computed, by the files' identity (see treeDigestOnce); a few, newest last. */
const digests = new Map<string, Promise<string>>();
const KEPT_DIGESTS = 16;

/**
 * treeDigest, computed once per process for the same files: keyed by each file's name, real path, device,
 * inode, size, and modification and change times in nanoseconds. A file written, replaced or renamed into
 * place changes its change time or inode (and nothing can set a change time back), so new content is
 * always hashed again; a worker's next shard of the same job skips reading its model again (a ResNet-50
 * is 100 MB: about 140 ms of CPU per shard).
 */
export async function treeDigestOnce(files: TreeFile[]): Promise<string> {
  const ids = await Promise.all(
    files.map(async (f) => {
      const s = await fs.stat(f.source, { bigint: true });
      return `${f.relative}\0${f.source}\0${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    }),
  );
  const key = ids.join('\n');
  let digest = digests.get(key);
  if (!digest) {
    digest = treeDigest(files);
    digests.set(key, digest);
    digest.catch(() => digests.delete(key));
    for (const old of digests.keys()) if (digests.size > KEPT_DIGESTS) digests.delete(old);
  }
  return digest;
}

/** Copies the walked files to `dest` (a file's path for a one-file tree, else a folder). */
export async function copyTree(files: TreeFile[], dest: string): Promise<void> {
  for (const file of files) {
    const target = file.relative ? path.join(dest, ...file.relative.split('/')) : dest;
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.copyFile(file.source, target);
  }
}
