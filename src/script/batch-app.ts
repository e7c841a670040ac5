/**
 * A batch job's script, ready to run on this worker: the same plan and environment as the online
 * --entry-script (./script-plan.ts, ./python-env.ts: one venv per content hash per machine, shared with
 * online deployments of the same environment file), and an app folder laid out as Azure ML lays it out
 * (the source folder, the model under azureml-models/<name>/<version>/), made once per content digest
 * under the environment cache and reused by every shard and job with the same script, model and
 * environment. Built under a temporary name and renamed into place, so a half-made folder is never used.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { fileExists } from '../file-exists';
import type { ScriptSpec } from '../shared/target-types';
import { SCRIPT_MANIFEST } from './bundle-manifest';
import type { ScriptManifest } from './bundle-manifest';
import { copyTree, treeDigestOnce, walkScriptModel, walkTree } from './model-tree';
import { ensurePythonEnvironment, environmentHash } from './python-env';
import { planScript } from './script-plan';

export interface BatchApp {
  /** Digest of the environment, the source folder and the model: the pool's key. */
  digest: string;
  python: string;
  appDir: string;
  entryScript: string;
  entryRelative: string;
  modelDir: string;
}

/** Where environments are kept on a worker: INFERCTL_PYTHON_ENVS, else ~/.inferctl/python-envs. */
export function workerEnvCache(home: string): string {
  return path.resolve(process.env.INFERCTL_PYTHON_ENVS ?? path.join(home, 'python-envs'));
}

/** The content digest of a script job's model (a file or a folder), for the job's record (once per process per content). */
export async function scriptModelDigest(modelPath: string, script: Pick<ScriptSpec, 'modelCopy'>): Promise<string> {
  return treeDigestOnce(await walkScriptModel(modelPath, script));
}

export async function prepareBatchApp(
  modelPath: string,
  script: ScriptSpec,
  envCache: string,
  opts: { signal?: AbortSignal; progress?: (line: string) => void } = {},
): Promise<BatchApp> {
  const plan = await planScript(modelPath, script);
  const source = (await walkTree('source folder', plan.sourceDir, { skipCaches: true })).filter(
    (f) => f.relative !== 'azureml-models' && !f.relative.startsWith('azureml-models/'),
  );
  const model = await walkScriptModel(modelPath, script);
  const envHash = environmentHash(plan.interpreter, plan.environment);
  const digest = crypto
    .createHash('sha256')
    .update(`env ${envHash}\0entry ${plan.entryRelative}\0model ${plan.modelDirRelative}/${plan.modelEntry}\0`)
    .update(`source ${await treeDigestOnce(source)}\0model ${await treeDigestOnce(model)}`)
    .digest('hex');
  const env = await ensurePythonEnvironment(envCache, plan.interpreter, plan.environment, opts);
  const dir = path.join(envCache, 'batch-apps', digest.slice(0, 24));
  const app: BatchApp = {
    digest,
    python: env.python,
    appDir: dir,
    entryScript: path.join(dir, ...plan.entryRelative.split('/')),
    entryRelative: plan.entryRelative,
    modelDir: path.join(dir, ...plan.modelDirRelative.split('/')),
  };
  if (await fileExists(path.join(dir, '.complete'))) return app;
  const tmp = `${dir}.${process.pid}.${crypto.randomBytes(3).toString('hex')}.tmp`;
  await copyTree(source, tmp);
  await copyTree(model, path.join(tmp, ...plan.modelDirRelative.split('/'), plan.modelEntry));
  await fs.writeFile(path.join(tmp, '.complete'), digest);
  try {
    await fs.rename(tmp, dir);
  } catch (err) {
    // Another shard made it first: theirs is the same content.
    await fs.rm(tmp, { recursive: true, force: true });
    if (!(await fileExists(path.join(dir, '.complete')))) throw err;
  }
  return app;
}

/** Where a worker finds the script job built into its image (gpu-worker --script-bundle, --script-python). */
export interface ImageScript {
  /** The bundle: script.json and the app folder (the source folder, the model under azureml-models/). */
  bundle: string;
  /** The environment's interpreter (the bundle's own names its path inside the image). */
  python: string;
}

/**
 * The script job built into this worker's image (--target aks): the bundle's app folder as it was laid
 * out at the image build, the environment built there; nothing is built or copied on the worker.
 */
export async function imageBatchApp(image: ImageScript): Promise<BatchApp> {
  const text = await fs.readFile(path.join(image.bundle, SCRIPT_MANIFEST), 'utf8');
  const manifest = JSON.parse(text) as ScriptManifest;
  const appDir = path.join(image.bundle, manifest.app);
  return {
    digest: crypto.createHash('sha256').update(`image ${image.bundle}\0${image.python}\0`).update(text).digest('hex'),
    python: image.python,
    appDir,
    entryScript: path.join(appDir, ...manifest.entryScript.split('/')),
    entryRelative: manifest.entryScript,
    modelDir: path.join(appDir, ...manifest.modelDir.split('/')),
  };
}
