/**
 * The local target's script deployments: the "image" is a bundle (the app folder with the model laid out
 * under azureml-models/, and script.json) beside a Python environment from the shared cache, built once per
 * content hash; a replica is a script front (src/script/front-main.ts) owning its Python server's process
 * group, recorded in `<replica dir>/python.json`. A front stopped in time stops its group; a front killed
 * outright leaves it, and the sweep here stops every recorded group whose front is gone.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { fileExists } from '../../file-exists';
import { readJsonFile, writeJsonFileAtomic } from '../../json-file';
import { SCRIPT_MANIFEST } from '../../script/bundle-manifest';
import type { ScriptManifest } from '../../script/bundle-manifest';
import { stopChildGroup } from '../../script/child-group';
import type { ChildRecord } from '../../script/child-group';
import { copyTree, treeDigest, walkScriptModel, walkTree } from '../../script/model-tree';
import { ensurePythonEnvironment, environmentHash } from '../../script/python-env';
import { planScript } from '../../script/script-plan';
import type { DeploymentSpec, ImageResult } from '../../shared/target-types';
import type { StepProgress } from '../target';
import { spawnDetachedNode } from './detached-process';
import type { LocalLayout } from './layout';
import { isAlive } from './processes';

const FRONT_MAIN = require.resolve('../../script/front-main');

/** The front's request body limit. */
export const SCRIPT_MAX_BODY_BYTES = 10 * 1024 * 1024;

/** Where environments are kept: INFERCTL_PYTHON_ENVS, else `.python-envs` under the target's root. */
export function pythonEnvCache(root: string): string {
  return path.resolve(process.env.INFERCTL_PYTHON_ENVS ?? path.join(root, '.python-envs'));
}

/** Builds (or finds) the environment and the bundle for a script deployment. */
export async function buildScriptImage(
  layout: LocalLayout,
  spec: DeploymentSpec & { script: NonNullable<DeploymentSpec['script']> },
  envCache: string,
  signal?: AbortSignal,
  progress?: StepProgress,
): Promise<ImageResult> {
  const plan = await planScript(spec.modelPath, spec.script);
  // The source folder's own azureml-models/ would give Model.get_model_path two entries: the model is laid out there.
  const source = (await walkTree('source folder', plan.sourceDir, { skipCaches: true })).filter(
    (f) => f.relative !== 'azureml-models' && !f.relative.startsWith('azureml-models/'),
  );
  const model = await walkScriptModel(spec.modelPath, spec.script);
  const envHash = environmentHash(plan.interpreter, plan.environment);
  const digest = `sha256:${crypto
    .createHash('sha256')
    .update(`env ${envHash}\0entry ${plan.entryRelative}\0model ${plan.modelDirRelative}/${plan.modelEntry}\0`)
    .update(`source ${await treeDigest(source)}\0model ${await treeDigest(model)}`)
    .digest('hex')}`;

  const env = await ensurePythonEnvironment(envCache, plan.interpreter, plan.environment, {
    ...(signal ? { signal } : {}),
    ...(progress ? { progress: (line: string) => progress(`environment ${envHash.slice(0, 12)}: ${line}`) } : {}),
  });
  const dir = layout.bundleDir(digest);
  if (await fileExists(path.join(dir, '.complete'))) return { imageRef: dir, digest, reused: true };

  progress?.('copying the source folder and the model');
  const tmp = `${dir}.${process.pid}.tmp`;
  await fs.rm(tmp, { recursive: true, force: true });
  await copyTree(source, path.join(tmp, 'app'));
  const modelDir = path.join(tmp, 'app', ...plan.modelDirRelative.split('/'));
  await fs.rm(modelDir, { recursive: true, force: true });
  await copyTree(model, path.join(modelDir, plan.modelEntry));
  const manifest: ScriptManifest = {
    app: 'app',
    entryScript: plan.entryRelative,
    modelDir: plan.modelDirRelative,
    python: env.python,
    noControlSocket: env.controlSocket,
    environment: env.hash,
  };
  await writeJsonFileAtomic(path.join(tmp, SCRIPT_MANIFEST), manifest);
  await fs.writeFile(path.join(tmp, '.complete'), digest);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rename(tmp, dir);
  return { imageRef: dir, digest, reused: false };
}

/** Starts one script replica (the front, which starts its Python server) in `dir`; its pid. */
export async function spawnScriptReplica(
  layout: LocalLayout,
  image: ImageResult,
  dir: string,
  marker: Record<string, string>,
): Promise<number> {
  await fs.mkdir(dir, { recursive: true });
  await fs.rm(path.join(dir, 'ready.json'), { force: true });
  return spawnDetachedNode(
    FRONT_MAIN,
    [
      '--bundle',
      image.imageRef,
      '--api-key-file',
      layout.apiKeyFile,
      '--ready-file',
      path.join(dir, 'ready.json'),
      '--child-record',
      path.join(dir, 'python.json'),
      '--python-log',
      path.join(dir, 'python.log'),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--max-body-bytes',
      String(SCRIPT_MAX_BODY_BYTES),
    ],
    path.join(dir, 'replica.log'),
    marker,
  );
}

/** Every replica directory of the deployment, serving and candidate. */
async function replicaDirs(layout: LocalLayout): Promise<string[]> {
  const dirs: string[] = [];
  for (const parent of [path.join(layout.dir, 'replicas'), layout.candidateReplicasDir]) {
    for (const entry of await fs.readdir(parent).catch(() => [] as string[])) dirs.push(path.join(parent, entry));
  }
  return dirs;
}

/**
 * Stops the recorded Python groups of the deployment's replicas: all of them (`all`, at teardown), or
 * those whose front is no longer running. Returns what was stopped, one phrase each.
 */
export async function sweepScriptChildren(layout: LocalLayout, all: boolean): Promise<string[]> {
  const stopped: string[] = [];
  for (const dir of await replicaDirs(layout)) {
    const record = path.join(dir, 'python.json');
    const child = await readJsonFile<ChildRecord>(record);
    if (!child) continue;
    // A front still running owns its group (and stops it itself).
    if (!all && child.owner !== undefined && isAlive(child.owner)) continue;
    const pids = await stopChildGroup(child);
    if (pids.length > 0) stopped.push(`python server ${pids.join(', ')}`);
  }
  return stopped;
}
