/**
 * What the aks tests share besides the testbed (azure/aks-suite.ts): the testbed with Azurite; a job's input
 * and output folders, readable and writable by the pods' user (1000), which reach them only because the kubelet
 * stand-in has no mount namespace; and the check that nothing of a job's GPU pool is left.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';

import { before } from 'node:test';

import { aksSuite } from './azure/aks-suite';
import type { AksSuite } from './azure/aks-suite';
import { useAzurite } from './azurite';
import type { Azurite } from './azurite';
import { fixture } from './script-fixtures';

/**
 * aksSuite() with Azurite beside it, whose environment (its connection string) the control worker gets.
 * Call it inside `describe`: Azurite's port is known once it runs, before the suite's worker starts.
 */
export function aksSuiteWithAzurite(taskQueuePrefix: string): { suite: AksSuite; azurite: Azurite } {
  const azurite = useAzurite();
  const storageEnv: NodeJS.ProcessEnv = {};
  before(() => void Object.assign(storageEnv, azurite.env));
  return { suite: aksSuite(taskQueuePrefix, storageEnv), azurite };
}

/**
 * A script job's own `score` flags, as the aks script tests pass them: `--entry-script`, `--environment`
 * (the v2 fixture's requirements unless given), `--model`, `--input` and `--output`.
 */
export function scriptJobArgs(
  entryScript: string,
  job: { model: string; input: string; output: string },
  environment = fixture('v2', 'requirements.txt'),
): string[] {
  return [
    '--entry-script',
    entryScript,
    '--environment',
    environment,
    '--model',
    job.model,
    '--input',
    job.input,
    '--output',
    job.output,
  ];
}

/** `<dir>/<name>/in` holding `files`, and `<dir>/<name>/out`, open to the pods' user. */
export async function podJobFolders(dir: string, name: string, files: Record<string, string>) {
  const input = path.join(dir, name, 'in');
  const output = path.join(dir, name, 'out');
  await fs.mkdir(input, { recursive: true });
  await fs.mkdir(output, { recursive: true });
  await fs.chmod(path.join(dir, name), 0o755);
  await fs.chmod(output, 0o777);
  for (const [file, text] of Object.entries(files)) await fs.writeFile(path.join(input, file), text);
  return { input, output };
}

/** Nothing of job `name`'s pool is left in ARM or in the cluster; `cluster` itself is, with its own pool. */
export async function assertGpuPoolGone(suite: AksSuite, cluster: string, name: string, said: string) {
  assert.match(said, new RegExp(`namespace inferctl-${name}-[0-9a-f]{8}, agent pool g[0-9a-f]{11}`), 'both removed');
  assert.ok(suite.bed.arm.clusterNames().includes(cluster), 'the user’s cluster is left standing');
  assert.deepEqual(suite.bed.arm.clusterPools(cluster), ['system'], 'only the cluster’s own pool is left');
  const nodes = await suite.bed.nodeNames();
  assert.deepEqual(
    nodes.filter((n) => /^aks-g[0-9a-f]{11}-/.test(n)),
    [],
    'the pool’s nodes are gone',
  );
  assert.deepEqual(
    (await suite.bed.namespaces()).filter((n) => n.startsWith(`inferctl-${name}`)),
    [],
    'the job’s namespace is gone',
  );
}
