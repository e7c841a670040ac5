/**
 * The benchmark's script cases, on the same corpus as the ONNX path: (s) `inferctl score --entry-script`
 * with bench/script/batch_score.py, which does what the ONNX path does (onnxruntime + Pillow + numpy, the
 * model's own preprocessing, top-5), through the workflow and a GPU worker; (l) the same script in a plain
 * Python loop (peer_score.py --mode script). Both use bench/requirements.txt's pins: the script job builds
 * its environment from it (once, under bench/work/python-envs), the loop runs in bench/.venv.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import type { BatchScriptSpec } from '../src/shared/batch-types';

const ROOT = path.resolve(__dirname, '..', '..');

export const BENCH_SCRIPT_DIR = path.join(ROOT, 'bench', 'script');

/** The script job's settings: a mini-batch is the ONNX path's batch. */
export function benchScript(batchSize: number): BatchScriptSpec {
  return {
    entryScript: path.join(BENCH_SCRIPT_DIR, 'batch_score.py'),
    sourceDir: BENCH_SCRIPT_DIR,
    environmentFile: path.join(ROOT, 'bench', 'requirements.txt'),
    miniBatchSize: batchSize,
    miniBatchTimeoutSeconds: 600,
    outputAction: 'jsonl',
  };
}

/** Where the script job's workers build its environment, unless INFERCTL_PYTHON_ENVS says otherwise. */
export function useBenchPythonEnvs(work: string): void {
  process.env.INFERCTL_PYTHON_ENVS ??= path.join(work, 'python-envs');
}

/** A folder holding only the model (what AZUREML_MODEL_DIR is for the loop). */
export async function modelFolder(model: string, work: string): Promise<string> {
  const dir = path.join(work, 'model-dir');
  const copy = path.join(dir, path.basename(model));
  const [a, b] = await Promise.all([fs.stat(model), fs.stat(copy).catch(() => undefined)]);
  if (!b || b.size !== a.size || b.mtimeMs < a.mtimeMs) {
    await fs.mkdir(dir, { recursive: true });
    await fs.copyFile(model, copy);
  }
  return dir;
}
