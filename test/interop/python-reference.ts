/**
 * The Python reference pipelines (reference_preprocess.py) in the interop tests' venv, test/.venv
 * (test/helpers/python-venv.ts), from reference-requirements.txt (Pillow, NumPy) and photo-requirements.txt
 * (scikit-image, installed without its dependencies for the real photographs its wheel ships).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { readNpy } from './npy';
import type { NpyArray } from './npy';
import { REPO_ROOT, pythonVenv } from '../helpers/python-venv';

const execFileAsync = promisify(execFile);

export const INTEROP_DIR = path.join(REPO_ROOT, 'test', 'interop');

/** The photographs the reference uses (paths inside the venv). */
export async function referencePhotos(python: string): Promise<string[]> {
  const { stdout } = await execFileAsync(python, [path.join(INTEROP_DIR, 'reference_preprocess.py'), '--photos']);
  return JSON.parse(stdout) as string[];
}

/** Writes `<stem>.<preset>.npy` for each photo into `out`. */
export async function writeReferenceTensors(python: string, out: string, photos: string[]): Promise<void> {
  await execFileAsync(python, [path.join(INTEROP_DIR, 'reference_preprocess.py'), out, ...photos], {
    maxBuffer: 16 << 20,
  });
}

/** The reference tensors of the photos, made once per test file (`skip` says why not, without python3). */
export interface ReferenceSet {
  skip?: string;
  photos: string[];
  /** The reference tensor `<stem>.<name>.npy` of a photo (a name like 'torchvision' or 'raw.u8'). */
  tensor(photo: string, name: string): Promise<NpyArray>;
  dispose(): Promise<void>;
}

export async function referenceSet(): Promise<ReferenceSet> {
  const env = await pythonVenv(path.join(INTEROP_DIR, 'reference-requirements.txt'));
  if (env.skip !== undefined) {
    const skip = `skipped: ${env.skip} (the reference pipelines are Python: Pillow + NumPy)`;
    return { skip, photos: [], tensor: () => Promise.reject(new Error(skip)), dispose: async () => {} };
  }
  await pythonVenv(path.join(INTEROP_DIR, 'photo-requirements.txt'), { noDeps: true });
  const photos = await referencePhotos(env.python);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-reference-'));
  await writeReferenceTensors(env.python, dir, photos);
  return {
    photos,
    tensor: (photo, name) => readNpy(path.join(dir, `${path.basename(photo, path.extname(photo))}.${name}.npy`)),
    dispose: () => fs.rm(dir, { recursive: true, force: true }),
  };
}
