/**
 * The Python interpreters on this machine a scoring script's environment can be built with: `python3` and
 * every `python3.N` on the PATH, and pyenv's installed versions (`$PYENV_ROOT/versions/<v>/bin/python3`),
 * each asked for its own version (a pyenv shim for a version not selected fails, and is left out).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { InvalidInputError } from '../errors';
import { FailureType } from '../shared/failure-types';

const execFileAsync = promisify(execFile);

export interface Interpreter {
  /** The executable as found (run this). */
  executable: string;
  /** `3.11` */
  minor: string;
  /** `3.11.7` */
  version: string;
}

const PROBE = 'import sys; print("%d.%d.%d" % sys.version_info[:3]); print(sys.executable)';

async function probe(executable: string): Promise<(Interpreter & { real: string }) | undefined> {
  try {
    const { stdout } = await execFileAsync(executable, ['-I', '-c', PROBE], { timeout: 10_000 });
    const [version, real] = stdout.trim().split('\n');
    const m = /^(3\.\d+)\.\d+$/.exec(version ?? '');
    if (!m) return undefined;
    return { executable, minor: m[1]!, version: version!, real: await fs.realpath(real ?? executable) };
  } catch {
    return undefined;
  }
}

async function candidates(env: NodeJS.ProcessEnv): Promise<string[]> {
  const names = ['python3', ...Array.from({ length: 12 }, (_, i) => `python3.${i + 8}`)];
  const found: string[] = [];
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    for (const name of names) {
      const file = path.join(dir, name);
      try {
        await fs.access(file, fs.constants.X_OK);
        found.push(file);
      } catch {
        // not here
      }
    }
  }
  const pyenvRoot = env.PYENV_ROOT ?? path.join(os.homedir(), '.pyenv');
  try {
    for (const version of await fs.readdir(path.join(pyenvRoot, 'versions'))) {
      found.push(path.join(pyenvRoot, 'versions', version, 'bin', 'python3'));
    }
  } catch {
    // no pyenv
  }
  return found;
}

let cached: Promise<Interpreter[]> | undefined;

/** Every working Python 3 interpreter, one per real executable, in the order found: the PATH's first, then pyenv's. */
export function findInterpreters(env: NodeJS.ProcessEnv = process.env): Promise<Interpreter[]> {
  cached ??= (async () => {
    const seen = new Set<string>();
    const out: Interpreter[] = [];
    for (const file of await candidates(env)) {
      const found = await probe(file);
      if (!found || seen.has(found.real)) continue;
      seen.add(found.real);
      // The interpreter itself, not a launcher (a pyenv shim follows whatever version is selected later).
      out.push({ executable: found.real, minor: found.minor, version: found.version });
    }
    return out;
  })();
  return cached;
}

/**
 * The interpreter for an environment: the first found of the pinned minor version, or without a pin the
 * first found (the PATH's `python3`). Throws naming the versions there are.
 */
export async function pickInterpreter(minor: string | undefined): Promise<Interpreter> {
  const all = await findInterpreters();
  if (all.length === 0) {
    throw new InvalidInputError(
      'No Python 3 interpreter was found on this worker (python3 on the PATH); install Python 3.10 or newer with venv.',
      FailureType.InvalidDeployment,
    );
  }
  if (minor === undefined) return all[0]!;
  const match = all.find((i) => i.minor === minor);
  if (match) return match;
  const versions = [...new Set(all.map((i) => i.minor))]
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]))
    .join(', ');
  throw new InvalidInputError(
    `The environment pins python=${minor}, which this worker does not have (it has Python ${versions}). ` +
      `Pin one of those, or install Python ${minor} on the worker.`,
    FailureType.InvalidDeployment,
  );
}
