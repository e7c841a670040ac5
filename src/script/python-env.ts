/**
 * A scoring script's Python environment: a venv built with the chosen interpreter from the requirements,
 * once per content hash (interpreter version + requirements) and reused by every deployment that asks for
 * the same, like the local target's content-addressed bundles. Built in place under a lock (a venv is not
 * relocatable), marked complete by a stamp written last; a half-built one (its builder died) is removed
 * and built again. A requirement pip cannot resolve is the user's to fix (StepFailedError, naming the
 * packages and the end of pip's output); anything else (the index unreachable) is thrown plainly, retried.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { StepFailedError } from '../errors';
import { readJsonFile, writeJsonFileAtomic } from '../json-file';
import { FailureType } from '../shared/failure-types';
import type { ScriptEnvironment } from './environment-file';
import type { Interpreter } from './interpreters';

export interface BuiltEnvironment {
  /** The venv. */
  dir: string;
  /** Its interpreter. */
  python: string;
  /** sha256 of what it was built from. */
  hash: string;
  reused: boolean;
  /** The gunicorn it holds. */
  gunicornVersion: string;
  /** Its gunicorn opens a control socket unless told `--no-control-socket` (gunicorn 25 on). */
  controlSocket: boolean;
}

interface Stamp {
  hash: string;
  python: string;
  requirements: string[];
  gunicornVersion: string;
  controlSocket: boolean;
  builtAt: string;
}

const STAMP = '.inferctl-env.json';
/** A lock whose holder is gone (its pid dead) or older than this is taken over. */
const LOCK_STALE_MS = 60 * 60_000;

export function environmentHash(interpreter: Interpreter, env: ScriptEnvironment): string {
  return crypto
    .createHash('sha256')
    .update(`python ${interpreter.version}\0`)
    .update(env.requirements.join('\n'))
    .digest('hex');
}

/** The venv for `env`, built under `cacheDir` unless already there. */
export async function ensurePythonEnvironment(
  cacheDir: string,
  interpreter: Interpreter,
  env: ScriptEnvironment,
  opts: { signal?: AbortSignal; progress?: (line: string) => void } = {},
): Promise<BuiltEnvironment> {
  const hash = environmentHash(interpreter, env);
  const dir = path.join(cacheDir, hash.slice(0, 24));
  const python = path.join(dir, 'bin', 'python');
  const done = async (reused: boolean): Promise<BuiltEnvironment | undefined> => {
    const stamp = await readJsonFile<Stamp>(path.join(dir, STAMP));
    return stamp?.hash === hash
      ? { dir, python, hash, reused, gunicornVersion: stamp.gunicornVersion, controlSocket: stamp.controlSocket }
      : undefined;
  };
  const ready = await done(true);
  if (ready) return ready;

  await fs.mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const release = await acquireLock(`${dir}.lock`, opts);
  try {
    const built = await done(true); // another deployment built it while this one waited
    if (built) return built;
    await fs.rm(dir, { recursive: true, force: true });
    opts.progress?.(`creating a Python ${interpreter.version} venv`);
    await run(interpreter.executable, ['-m', 'venv', dir], opts);
    await fs.writeFile(path.join(dir, 'requirements.txt'), env.requirements.join('\n') + '\n');
    const pip = [python, '-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--progress-bar', 'off'];
    const installed = await run(pip[0]!, [...pip.slice(1), '-r', path.join(dir, 'requirements.txt')], opts, true);
    if (installed.code !== 0) throw pipFailure(env, installed.output);
    const probe =
      'import gunicorn, gunicorn.config as c; print(gunicorn.__version__, hasattr(c, "ControlSocketDisable"))';
    const gunicorn = await run(python, ['-c', probe], opts, true);
    if (gunicorn.code !== 0) {
      throw new StepFailedError(
        'The environment has no gunicorn, which azureml-inference-server-http runs on; do not pin it out.',
        FailureType.ScriptEnvironmentFailed,
      );
    }
    const [version, controlSocket] = (gunicorn.output.trim().split('\n').pop() ?? '').split(' ');
    const stamp: Stamp = {
      hash,
      python: interpreter.version,
      requirements: env.requirements,
      gunicornVersion: version ?? '',
      controlSocket: controlSocket === 'True',
      builtAt: new Date().toISOString(),
    };
    await writeJsonFileAtomic(path.join(dir, STAMP), stamp);
    return (await done(false))!;
  } finally {
    await release();
  }
}

/** Runs a command; with `keep`, returns its exit code and output instead of throwing on a failure. */
function run(
  command: string,
  args: string[],
  opts: { signal?: AbortSignal; progress?: (line: string) => void },
  keep = false,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PIP_NO_INPUT: '1', PYTHONDONTWRITEBYTECODE: '1' },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    let output = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-64 * 1024);
      const line = text.trim().split('\n').pop();
      if (line) opts.progress?.(line.slice(0, 200));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0 || keep) resolve({ code: code ?? 1, output });
      else reject(new Error(`${path.basename(command)} ${args.slice(0, 2).join(' ')} failed: ${tail(output)}`));
    });
  });
}

function tail(output: string, lines = 6): string {
  return output.trim().split('\n').slice(-lines).join('\n');
}

/**
 * What pip said, as the user's error when the requirements cannot be resolved, else a transient one. Also
 * read from an image build's log (src/targets/aks/deployment-image.ts), where pip ran inside the image.
 */
export function pipFailure(env: ScriptEnvironment, output: string): Error {
  const named = new Set<string>();
  for (const m of output.matchAll(/(?:No matching distribution found for|satisfies the requirement) (\S+)/g)) {
    named.add(m[1]!);
  }
  for (const m of output.matchAll(/The conflict is caused by:\n((?:\s+.+\n?)+)/g)) {
    for (const line of m[1]!.split('\n')) if (line.trim()) named.add(line.trim());
  }
  const resolvable =
    named.size > 0 ||
    /ResolutionImpossible|Invalid requirement|conflicting dependencies|Failed to build|metadata-generation-failed/.test(
      output,
    );
  const packages = named.size > 0 ? [...named].join(', ') : env.requirements.join(', ');
  const message =
    `pip could not install the scoring script's environment (${packages}): ${tail(output)}. ` +
    'Fix the environment file (a version that exists for this Python, a package name as PyPI spells it) and deploy again.';
  return resolvable ? new StepFailedError(message, FailureType.ScriptEnvironmentFailed) : new Error(message);
}

/** Takes a lock directory (waiting for its holder), returning its release; a holder that died loses it. */
async function acquireLock(
  lock: string,
  opts: { signal?: AbortSignal; progress?: (line: string) => void },
): Promise<() => Promise<void>> {
  const owner = path.join(lock, 'owner');
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      await fs.mkdir(lock);
      await fs.writeFile(owner, String(process.pid));
      return () => fs.rm(lock, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(await fs.readFile(owner, 'utf8').catch(() => ''));
    const age = Date.now() - ((await fs.stat(lock).catch(() => undefined))?.mtimeMs ?? Date.now());
    const holderGone = Number.isInteger(holder) && holder > 0 && !alive(holder);
    if (holderGone || age > LOCK_STALE_MS) {
      await fs.rm(lock, { recursive: true, force: true });
      continue;
    }
    opts.progress?.('waiting for another deployment building the same environment');
    await delay(500, undefined, opts.signal ? { signal: opts.signal } : {});
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
