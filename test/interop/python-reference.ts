/**
 * The Python reference pipelines (reference_preprocess.py) in their own venv, test/.venv, created here
 * from test/interop/requirements.txt (Pillow, NumPy) and photo-requirements.txt (scikit-image, installed
 * without its dependencies for the real photographs its wheel ships). Created once; a stamp holding the
 * requirements' hash marks it complete, so an interrupted install is redone.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { readNpy } from './npy';
import type { NpyArray } from './npy';

const execFileAsync = promisify(execFile);

const ROOT = path.resolve(__dirname, '..', '..', '..');
export const INTEROP_DIR = path.join(ROOT, 'test', 'interop');
const VENV = path.join(ROOT, 'test', '.venv');
const PYTHON = path.join(VENV, 'bin', 'python');
const STAMP = path.join(VENV, '.inferctl-requirements');

/** Why the reference tests cannot run here, or undefined when python3 is available. */
export async function pythonMissing(): Promise<string | undefined> {
  try {
    await execFileAsync('python3', ['--version']);
    return undefined;
  } catch {
    return 'skipped: python3 not found (the reference pipelines are Python: Pillow + NumPy)';
  }
}

/**
 * The venv's python, creating the venv first when needed (minutes the first time: pip downloads). Built
 * under a temporary name and renamed into place, so two test files starting at once cannot see half a venv.
 */
export async function referencePython(): Promise<string> {
  const files = ['requirements.txt', 'photo-requirements.txt'].map((f) => path.join(INTEROP_DIR, f));
  const hash = crypto.createHash('sha256');
  for (const file of files) hash.update(await fs.readFile(file));
  const wanted = hash.digest('hex');
  const ready = async () => (await fs.readFile(STAMP, 'utf8').catch(() => '')).trim() === wanted;
  if (await ready()) return PYTHON;
  const tmp = `${VENV}.${process.pid}.tmp`;
  await fs.rm(tmp, { recursive: true, force: true });
  await execFileAsync('python3', ['-m', 'venv', tmp]);
  const python = path.join(tmp, 'bin', 'python');
  const pip = (args: string[]) =>
    execFileAsync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...args], {
      maxBuffer: 16 << 20,
    });
  await pip(['-r', files[0]!]);
  await pip(['--no-deps', '-r', files[1]!]);
  await fs.writeFile(path.join(tmp, path.basename(STAMP)), wanted);
  if (await ready()) {
    await fs.rm(tmp, { recursive: true, force: true }); // another test file finished first
    return PYTHON;
  }
  await fs.rm(VENV, { recursive: true, force: true });
  try {
    await fs.rename(tmp, VENV);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    if (!(await ready())) throw err;
  }
  return PYTHON;
}

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
  const skip = await pythonMissing();
  if (skip) return { skip, photos: [], tensor: () => Promise.reject(new Error(skip)), dispose: async () => {} };
  const python = await referencePython();
  const photos = await referencePhotos(python);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-reference-'));
  await writeReferenceTensors(python, dir, photos);
  return {
    photos,
    tensor: (photo, name) => readNpy(path.join(dir, `${path.basename(photo, path.extname(photo))}.${name}.npy`)),
    dispose: () => fs.rm(dir, { recursive: true, force: true }),
  };
}
