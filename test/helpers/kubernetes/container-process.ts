/**
 * How the kubelet stand-in starts a container's process: as the container's uid, gid and groups (setpriv:
 * libuv would drop the supplementary groups), and, with `securityContext.readOnlyRootFilesystem`, in a
 * private mount namespace of its own where the image's root is a read-only bind mount: every write into the
 * image fails with EROFS, as in a real pod, while the pod's volumes (outside the image's root here) stay as
 * they were mounted. Without the flag the image's own owners and modes decide, as they do in a pod.
 * Needs root (unshare and mount), as the stand-in does anyway.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface ContainerProcess {
  executable: string;
  argv: string[];
  uid: number;
  gid: number;
  /** Every group the process runs with (gid, fsGroup, supplementalGroups). */
  groups: number[];
  /** The working directory, a host path inside the image's root. */
  cwd: string;
  env: Record<string, string>;
  /** The log's file descriptor: stdout and stderr. */
  log: number;
  /** The image's root directory, when the container has readOnlyRootFilesystem. */
  readOnlyRoot?: string;
}

// The bind mount is made after unshare: a cwd opened before it would still be the writable mount below,
// so the process changes into its working directory again through the read-only one.
// The host's tools by absolute path: the process's environment is the container's, PATH included.
const READ_ONLY_ROOT =
  'm=$1; shift; $m --bind "$1" "$1" && $m -o remount,bind,ro "$1" && cd "$2" && shift 2 && exec "$@"';

/** A tool of this machine, found on the stand-in's own PATH. */
function hostTool(name: string): string {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const file = path.join(dir, name);
    if (dir && fs.existsSync(file)) return file;
  }
  throw new Error(`the kubelet stand-in needs ${name} on this machine`);
}

export function spawnContainer(p: ContainerProcess): ChildProcess {
  const asUser = ['setpriv', `--reuid=${p.uid}`, `--regid=${p.gid}`, `--groups=${p.groups.join(',')}`, '--'];
  const options = { cwd: p.cwd, env: p.env, stdio: ['ignore', p.log, p.log] as ['ignore', number, number] };
  if (!p.readOnlyRoot) {
    return p.groups.some((g) => g !== p.gid)
      ? spawn(asUser[0]!, [...asUser.slice(1), p.executable, ...p.argv], options)
      : spawn(p.executable, p.argv, { ...options, uid: p.uid, gid: p.gid });
  }
  // unshare and exec keep one pid from here to the container's process: signals reach it directly.
  const setpriv = [hostTool('setpriv'), ...asUser.slice(1)];
  const sh = [hostTool('sh'), '-c', READ_ONLY_ROOT, 'sh', hostTool('mount'), p.readOnlyRoot, p.cwd];
  return spawn(
    hostTool('unshare'),
    ['--mount', '--propagation', 'private', '--', ...sh, ...setpriv, p.executable, ...p.argv],
    options,
  );
}
