import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

import { InvalidInputError } from './errors';
import { inferctlHome } from './paths';
import { FailureType } from './shared/failure-types';

/**
 * Where workers may read models and inputs and write outputs: INFERCTL_ALLOWED_ROOTS, a list of
 * directories separated by ':' (unset: anywhere). Paths are compared after every symbolic link is
 * resolved (the roots' too), so a link inside a root that points outside it is refused like the outside
 * path itself, and files are opened, then checked by what was opened, so a link swapped in after the
 * check cannot redirect the read.
 */
export function allowedRoots(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const raw = env.INFERCTL_ALLOWED_ROOTS;
  if (!raw) return undefined;
  return raw
    .split(path.delimiter)
    .filter(Boolean)
    .map((r) => realPath(path.resolve(r)));
}

/**
 * The roots plus inferctl's own home (local bundles, the blob cache): where a worker may read a model or
 * labels file it was given after validation. Undefined when no roots are set.
 */
export function rootsAndHome(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const roots = allowedRoots(env);
  return roots && [...roots, realPath(inferctlHome())];
}

/**
 * `p` with every symbolic link resolved. For a path that does not exist yet (an output to be created),
 * its nearest existing ancestor is resolved and the rest appended.
 */
export function realPath(p: string, depth = 0): string {
  const rest: string[] = [];
  let current = path.resolve(p);
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(current), ...rest.reverse());
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const parent = path.dirname(current);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === current) return path.join(current, ...rest.reverse());
      // A dangling link is judged by where it points (what a write through it would create).
      const target = danglingLinkTarget(current);
      if (target !== undefined && depth < 40) return path.join(realPath(target, depth + 1), ...rest.reverse());
      rest.push(path.basename(current));
      current = parent;
    }
  }
}

/** The absolute target of `p` when it is a symbolic link, else undefined. */
function danglingLinkTarget(p: string): string | undefined {
  try {
    if (!fs.lstatSync(p).isSymbolicLink()) return undefined;
    return path.resolve(path.dirname(p), fs.readlinkSync(p));
  } catch {
    return undefined;
  }
}

function inside(real: string, roots: readonly string[]): boolean {
  return roots.some((root) => real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep));
}

function outsideError(what: string, p: string, real: string, roots: readonly string[]): InvalidInputError {
  const resolved = path.resolve(p);
  const via = real === resolved ? resolved : `${resolved} (a link to ${real})`;
  return new InvalidInputError(
    `The ${what} ${via} is outside the directories this worker may use (INFERCTL_ALLOWED_ROOTS: ${roots.join(', ')}). ` +
      'Move it under one of them, or ask the operator to allow its directory.',
    FailureType.PathNotAllowed,
  );
}

/** Throws a non-retryable-input error naming the path and the roots when `p`, links resolved, is outside all of them. */
export function assertInsideAllowedRoots(what: string, p: string, roots = allowedRoots()): void {
  if (!roots) return;
  const real = realPath(p);
  if (!inside(real, roots)) throw outsideError(what, p, real, roots);
}

/** What an opened descriptor really is: its path as the kernel reports it (Linux), else the path resolved now. */
async function openedPath(handle: fsp.FileHandle, p: string): Promise<string> {
  if (process.platform === 'linux') return fsp.readlink(`/proc/self/fd/${handle.fd}`);
  return fsp.realpath(p);
}

/**
 * Opens `p` for reading and checks the file that was opened (not the name) against the roots, so a link
 * put in place between a check and the open is caught. The caller closes the handle.
 */
export async function openInsideAllowedRoots(what: string, p: string, roots = allowedRoots()): Promise<fsp.FileHandle> {
  if (roots) assertInsideAllowedRoots(what, p, roots); // says which link escapes, before anything is opened
  // O_NONBLOCK: opening a FIFO must not wait for a writer (the caller's fstat then refuses it).
  const handle = await fsp.open(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  if (!roots) return handle;
  try {
    const real = await openedPath(handle, p);
    if (!inside(real, roots)) throw outsideError(what, p, real, roots);
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Reads a whole file through openInsideAllowedRoots. */
export async function readFileInsideAllowedRoots(what: string, p: string, roots = allowedRoots()): Promise<Buffer> {
  const handle = await openInsideAllowedRoots(what, p, roots);
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
