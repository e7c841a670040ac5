/**
 * A script's model where the worker reads it: --model itself for a file or folder, or for an az:// prefix
 * the worker's own copy (src/storage/blob-tree.ts), named in the spec's `modelCopy` for the steps that lay
 * it out (the local bundle, the aks image, a batch job's app folder). A `modelCopy` that came with the
 * input is dropped: only this worker names its copies.
 */
import { isBlobLocation } from '../storage/blob-location';
import { downloadModelBlobs } from '../storage/blob-tree';
import type { ScriptSpec } from '../shared/target-types';

export async function withScriptModelCopy<S extends ScriptSpec>(
  modelPath: string,
  script: S,
  opts: { signal?: AbortSignal; progress?: (line: string) => void } = {},
): Promise<S> {
  const own = { ...script };
  delete own.modelCopy;
  if (!isBlobLocation(modelPath)) return own;
  return { ...own, modelCopy: await downloadModelBlobs(modelPath, opts) };
}
