import type { Stats } from 'node:fs';

/**
 * Why the key file is too open, or undefined when only this process can read it: a file of ours that
 * group and others cannot access (the local target's 0600), or a Kubernetes-mounted Secret: owned by
 * root, group one of ours (the pod's fsGroup), readable by that group, writable by no group, closed to
 * others (defaultMode 0440). A key any other user can read is refused.
 */
export function keyFileProblem(stat: Pick<Stats, 'mode' | 'uid' | 'gid'>, groups: number[]): string | undefined {
  const mode = (stat.mode & 0o777).toString(8).padStart(3, '0');
  if ((stat.mode & 0o007) !== 0) return `readable by others (mode ${mode})`;
  if ((stat.mode & 0o070) === 0) return undefined;
  if (stat.uid === 0 && groups.includes(stat.gid) && (stat.mode & 0o030) === 0) return undefined;
  return `open to group ${stat.gid} (mode ${mode}, owner ${stat.uid})`;
}
