/**
 * The Kubernetes binaries the aks tests run: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
 * and kwok, built from the Go module proxy by the wrapper module in tools/kubernetes and cached outside
 * the repository under a key derived from that module's go.mod and go.sum (a version bump rebuilds).
 * INFERCTL_KUBERNETES_BIN points at a directory that already holds them.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { inferctlCacheDir, packageRoot } from '../../../src/paths';

export const KUBERNETES_TOOLS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];

const MODULE_DIR = path.join(packageRoot(), 'tools', 'kubernetes');

export function kubernetesBinDir(): string {
  if (process.env.INFERCTL_KUBERNETES_BIN) return path.resolve(process.env.INFERCTL_KUBERNETES_BIN);
  const hash = crypto.createHash('sha256');
  for (const file of ['go.mod', 'go.sum']) hash.update(fs.readFileSync(path.join(MODULE_DIR, file)));
  return path.join(inferctlCacheDir(), 'kubernetes', hash.digest('hex').slice(0, 12), 'bin');
}

export function kubernetesToolPath(name: string): string {
  return path.join(kubernetesBinDir(), name);
}

export function missingKubernetesTools(): string[] {
  return KUBERNETES_TOOLS.filter((t) => !fs.existsSync(kubernetesToolPath(t)));
}

/**
 * Builds every tool with `go install tool` into the cache (Go's own module and build caches stay in their
 * default places, so a rebuild is incremental). etcd's main package is go.etcd.io/etcd/server/v3, so Go
 * names its binary `server`; it is renamed to `etcd`. Each build writes into a directory of its own and
 * renames the finished binaries into place, so two test runs building at once cannot trip over each other.
 */
export async function buildKubernetesTools(log: (line: string) => void): Promise<string> {
  const bin = kubernetesBinDir();
  if (missingKubernetesTools().length === 0) return bin;
  fs.mkdirSync(bin, { recursive: true });
  const staging = fs.mkdtempSync(path.join(path.dirname(bin), `build-${process.pid}-`));
  const version = /k8s\.io\/kubernetes (v\S+)/.exec(fs.readFileSync(path.join(MODULE_DIR, 'go.mod'), 'utf8'))?.[1];
  const ldflags = version ? `-X k8s.io/component-base/version.gitVersion=${version}` : '';
  log(
    `Building ${KUBERNETES_TOOLS.join(', ')} (${version ?? 'unknown version'}) into ${bin}; the first build takes minutes`,
  );
  await new Promise<void>((resolve, reject) => {
    const child = spawn('go', ['install', `-ldflags=${ldflags}`, 'tool'], {
      cwd: MODULE_DIR,
      env: { ...process.env, GOBIN: staging, CGO_ENABLED: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`go install tool failed (exit ${code}):\n${tail}`)),
    );
  });
  for (const tool of KUBERNETES_TOOLS) {
    fs.renameSync(path.join(staging, tool === 'etcd' ? 'server' : tool), path.join(bin, tool));
  }
  fs.rmSync(staging, { recursive: true, force: true });
  const missing = missingKubernetesTools();
  if (missing.length > 0) throw new Error(`Build finished but ${missing.join(', ')} are missing from ${bin}`);
  return bin;
}
