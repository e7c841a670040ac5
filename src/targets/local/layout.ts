/**
 * Where a local deployment lives on disk. Everything the target needs to find its processes again
 * after a worker restart is under one directory per deployment name.
 *
 *   <INFERCTL_HOME>/local/<name>/
 *     cluster.json                 who owns this "cluster" (the workflow id)
 *     api-key                      the endpoint key, 0600
 *     bundles/<digest>/            the content-addressed "image": model.onnx, model.labels.txt, preprocess.json, server.json
 *     replicas.json                pid and files of every replica started
 *     replicas/<i>/ready.json      written by the replica once it listens: pid, port, url
 *     replicas/<i>/replica.log     its stdout and stderr
 *     gateway/ready.json, gateway.log   the round-robin endpoint in front of the replicas
 *     gateway/routes.json          how many replicas the gateway routes to (rewritten by a scale), and the
 *                                  candidate set's share of traffic during a rollout
 *     candidate/                   a rollout's candidate: replicas.json, replicas/<i>/ like the serving set
 */
import path from 'node:path';

import { inferctlHome } from '../../paths';

export class LocalLayout {
  readonly dir: string;

  constructor(
    readonly name: string,
    root = path.join(inferctlHome(), 'local'),
  ) {
    this.dir = path.join(root, name);
  }

  /** Appears in the command line of every process of this deployment, and of no other. */
  get processMarker(): string {
    return this.dir + path.sep;
  }

  get clusterFile(): string {
    return path.join(this.dir, 'cluster.json');
  }

  get apiKeyFile(): string {
    return path.join(this.dir, 'api-key');
  }

  get bundlesDir(): string {
    return path.join(this.dir, 'bundles');
  }

  bundleDir(digest: string): string {
    return path.join(this.bundlesDir, digest.replace(/^sha256:/, ''));
  }

  get replicasFile(): string {
    return path.join(this.dir, 'replicas.json');
  }

  replicaDir(index: number): string {
    return path.join(this.dir, 'replicas', String(index));
  }

  get gatewayDir(): string {
    return path.join(this.dir, 'gateway');
  }

  get routesFile(): string {
    return path.join(this.gatewayDir, 'routes.json');
  }

  get candidateDir(): string {
    return path.join(this.dir, 'candidate');
  }

  /** In the command line of the candidate set's processes (and of no serving one). */
  get candidateMarker(): string {
    return this.candidateDir + path.sep;
  }

  get candidateReplicasFile(): string {
    return path.join(this.candidateDir, 'replicas.json');
  }

  get candidateReplicasDir(): string {
    return path.join(this.candidateDir, 'replicas');
  }

  candidateReplicaDir(index: number): string {
    return path.join(this.candidateReplicasDir, String(index));
  }
}
