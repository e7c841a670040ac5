/**
 * A Secret volume, mounted as the kubelet mounts one (pkg/volume/secret and its atomic writer):
 *   - the Secret must exist (unless `optional`), and each listed item's key must be in it;
 *   - without `items` every key becomes a file; with them, only those, at their paths;
 *   - each file's mode is the item's `mode`, else `defaultMode`, else 0644; files are owned by root;
 *   - with the pod's fsGroup, files and directories get that group and the modes are OR'd with 0440 (the
 *     kubelet's read-only volume ownership: SetVolumeOwnership), directories also setgid;
 *   - the layout is the atomic writer's: `..<timestamp>/` holds the files, `..data` links to it, and each
 *     top-level path links through `..data`.
 * Any Secret with any items (an API key, a TLS pair) is mounted the same way.
 */
import fs from 'node:fs';
import path from 'node:path';

import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1SecretVolumeSource } from '@kubernetes/client-node';

/** Thrown when a Secret volume cannot be set up; the message is what the kubelet's FailedMount event says. */
export class MountError extends Error {}

export async function mountSecretVolume(
  kc: KubeConfig,
  namespace: string,
  volumeName: string,
  source: V1SecretVolumeSource,
  dir: string,
  fsGroup: number | undefined,
): Promise<void> {
  const name = source.secretName ?? '';
  const fail = (why: string) => new MountError(`MountVolume.SetUp failed for volume "${volumeName}" : ${why}`);
  let data: Record<string, string> = {};
  try {
    data = (await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name, namespace })).data ?? {};
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
    if (!source.optional) throw fail(`secret "${name}" not found`);
  }
  const files: { path: string; key: string; mode: number }[] = [];
  const defaultMode = source.defaultMode ?? 0o644;
  if (source.items?.length) {
    for (const item of source.items) {
      if (!(item.key in data)) {
        if (source.optional) continue;
        throw fail(`references non-existent secret key: ${item.key}`);
      }
      files.push({ path: item.path, key: item.key, mode: item.mode ?? defaultMode });
    }
  } else {
    for (const key of Object.keys(data)) files.push({ path: key, key, mode: defaultMode });
  }

  const group = fsGroup ?? 0;
  const dirMode = fsGroup === undefined ? 0o755 : 0o2755;
  const stamp = `..${new Date().toISOString().replace(/[-:]/g, '_').replace('T', '_').replace('Z', '')}`;
  fs.rmSync(dir, { recursive: true, force: true });
  const mkdir = (d: string) => {
    fs.mkdirSync(d, { recursive: true });
    fs.chmodSync(d, dirMode);
    fs.chownSync(d, 0, group);
  };
  mkdir(dir);
  fs.chmodSync(dir, fsGroup === undefined ? 0o1777 : 0o3777); // a tmpfs, as the kubelet mounts it
  mkdir(path.join(dir, stamp));
  for (const file of files) {
    const target = path.join(dir, stamp, file.path);
    mkdir(path.dirname(target));
    fs.writeFileSync(target, Buffer.from(data[file.key]!, 'base64'));
    fs.chownSync(target, 0, group);
    fs.chmodSync(target, fsGroup === undefined ? file.mode : file.mode | 0o440);
  }
  fs.symlinkSync(stamp, path.join(dir, '..data'));
  for (const top of new Set(files.map((f) => f.path.split('/')[0]!))) {
    fs.symlinkSync(path.posix.join('..data', top), path.join(dir, top));
  }
}
