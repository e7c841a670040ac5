/**
 * The kubelet stand-in's Python images (image-filesystem.ts builds the rest):
 *   - `FROM python:3.X-slim-bookworm` is this machine's Python 3.X laid out as the official image lays
 *     out its own: the interpreter at /usr/local/bin/python3.X (python3 and python linked to it), the
 *     standard library at /usr/local/lib/python3.X (no test suites, an empty site-packages), ENV PATH,
 *     LANG, PYTHON_VERSION. Only an interpreter with libpython linked in will do (a shared libpython would
 *     be loaded from outside the image); a minor version the machine lacks is refused, naming those it has.
 *   - `RUN <command> …` in such a stage runs the command found in the image (on the image's PATH, or by its
 *     path there; a `#!` script by its interpreter there), its absolute arguments, PATH and working
 *     directory mapped into the image, as root as the Dockerfile's RUN does, with the image's ENV and the
 *     build machine's network settings only. `python -m venv DIR` records DIR as a venv.
 *   - A venv holds what the real image holds (pyvenv.cfg's home, its scripts' `#!` lines: container paths;
 *     its links relative): after each RUN the stand-in writes them so, and maps pyvenv.cfg's home back
 *     into the image (a new file, never the cached one) before anything runs in it, since there is no chroot.
 *   - Layers are cached as Docker caches them: each RUN's result under <cache>/image-fs/layers/<key>, the
 *     key chained from the base (the interpreter used included), every instruction before it and the
 *     contents of every file COPY brought in; a second build (CI's next run) links the cached tree in.
 */
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { inferctlCacheDir } from '../../../src/paths';
import { findInterpreters } from '../../../src/script/interpreters';

const execFileAsync = promisify(execFile);

export interface PythonBase {
  env: Record<string, string>;
  /** What the base's key is made of: the interpreter and its version. */
  identity: string;
  provide: (root: string) => void;
}

export interface ImageRun {
  root: string;
  workdir: string;
  env: Record<string, string>;
  /** The venvs made in this stage (container paths). */
  venvs: string[];
}

const STANDARD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const PYTHON_SLIM = /^python:(3\.\d+)-slim-bookworm$/;

export function isPythonBase(ref: string): boolean {
  return PYTHON_SLIM.test(ref);
}

/** `python:3.X-slim-bookworm` from this machine's statically linked Python 3.X. */
export async function pythonSlimBase(ref: string, where: string): Promise<PythonBase> {
  const minor = PYTHON_SLIM.exec(ref)![1]!;
  const all = await findInterpreters();
  const same = all.filter((i) => i.minor === minor);
  if (same.length === 0) {
    const have = [...new Set(all.map((i) => i.minor))].join(', ') || 'none';
    throw new Error(
      `${where}: the kubelet stand-in builds ${ref} from this machine's Python ${minor}, and it has none ` +
        `(it has ${have}); install Python ${minor} (e.g. pyenv install ${minor}) to run this image`,
    );
  }
  for (const interpreter of same) {
    const { stdout: prefix } = await execFileAsync(interpreter.executable, [
      '-I',
      '-c',
      'import sys; print(sys.base_prefix)',
    ]);
    const { stdout: libraries } = await execFileAsync('ldd', [interpreter.executable]).catch(() => ({ stdout: '' }));
    if (/libpython/.test(libraries) || !prefix.trim()) continue;
    const executable = fs.realpathSync(interpreter.executable);
    const stdlib = path.join(prefix.trim(), 'lib', `python${minor}`);
    return {
      identity: `${ref} from ${executable} ${interpreter.version}`,
      env: { PATH: STANDARD_PATH, LANG: 'C.UTF-8', PYTHON_VERSION: interpreter.version },
      provide: (root) => {
        const bin = path.join(root, 'usr/local/bin');
        fs.mkdirSync(bin, { recursive: true, mode: 0o755 });
        linkOrCopy(executable, path.join(bin, `python${minor}`));
        fs.symlinkSync(`python${minor}`, path.join(bin, 'python3'));
        fs.symlinkSync('python3', path.join(bin, 'python'));
        copyStdlib(stdlib, path.join(root, 'usr/local/lib', `python${minor}`));
      },
    };
  }
  throw new Error(
    `${where}: the kubelet stand-in needs a Python ${minor} with libpython linked in to build ${ref}; ` +
      `${same.map((i) => i.executable).join(', ')} load a shared libpython from outside the image`,
  );
}

/** The standard library as the slim image keeps it: no test suites, site-packages empty. */
function copyStdlib(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true, mode: 0o755 });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (['test', 'tests', 'idle_test', 'site-packages', 'dist-packages'].includes(entry.name)) continue;
    if (entry.isDirectory()) copyStdlib(src, dst);
    else if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
    else if (entry.isFile()) linkOrCopy(src, dst);
  }
  if (path.basename(to).startsWith('python3.')) fs.mkdirSync(path.join(to, 'site-packages'), { mode: 0o755 });
}

/** The cached layer of `key`, built by `build` into `root` when missing; true when it came from the cache. */
export async function cachedLayer(
  key: string,
  stage: ImageRun,
  build: () => Promise<void>,
  copyTree: (from: string, to: string) => void,
): Promise<boolean> {
  const layer = path.join(inferctlCacheDir(), 'image-fs', 'layers', key);
  const stamp = path.join(layer, '.inferctl-layer.json');
  if (fs.existsSync(stamp)) {
    const { venvs } = JSON.parse(fs.readFileSync(stamp, 'utf8')) as { venvs: string[] };
    fs.rmSync(stage.root, { recursive: true, force: true });
    copyTree(path.join(layer, 'root'), stage.root);
    stage.venvs = venvs;
    hostView(stage);
    return true;
  }
  await build();
  containerView(stage);
  const tmp = `${layer}.${process.pid}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  copyTree(stage.root, path.join(tmp, 'root'));
  fs.writeFileSync(path.join(tmp, '.inferctl-layer.json'), JSON.stringify({ venvs: stage.venvs }));
  fs.rmSync(layer, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(layer), { recursive: true });
  fs.renameSync(tmp, layer);
  hostView(stage);
  return false;
}

/** Runs a RUN's command (shell-form words, NAME=value prefixes taken off) inside the stage's image. */
export async function runInImage(
  words: string[],
  env: Record<string, string>,
  stage: ImageRun,
  where: string,
  networkEnv: Record<string, string>,
): Promise<void> {
  const inRoot = (p: string) => path.join(stage.root, path.posix.resolve('/', p));
  const [command, ...args] = words;
  const pathDirs = (stage.env.PATH ?? STANDARD_PATH).split(':');
  const found = command?.includes('/')
    ? inRoot(path.posix.resolve(stage.workdir, command))
    : pathDirs.map((d) => inRoot(path.posix.join(d, command ?? ''))).find((f) => fs.existsSync(f));
  if (!command || !found || !fs.existsSync(found)) {
    throw new Error(`${where}: /bin/sh: 1: ${command ?? ''}: not found (in the image)`);
  }
  let argv = [found, ...args.map((a) => (a.startsWith('/') ? inRoot(a) : a))];
  const head = fs.readFileSync(found).subarray(0, 256).toString('latin1');
  if (head.startsWith('#!')) {
    const [interpreter, ...interpreterArgs] = head.slice(2).split('\n')[0]!.trim().split(/\s+/);
    argv = [inRoot(interpreter!), ...interpreterArgs, ...argv];
  }
  if (words[1] === '-m' && words[2] === 'venv' && words[3])
    stage.venvs.push(path.posix.resolve(stage.workdir, words[3]));
  const output = await new Promise<{ code: number; text: string }>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: inRoot(stage.workdir),
      env: {
        ...stage.env,
        ...env,
        ...networkEnv,
        HOME: inRoot('/root'),
        PATH: pathDirs.map(inRoot).join(':'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text = (text + d.toString()).slice(-8000)));
    child.stderr.on('data', (d: Buffer) => (text = (text + d.toString()).slice(-8000)));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, text }));
  });
  if (output.code !== 0) {
    throw new Error(`${where}: returned a non-zero code: ${output.code}\n${output.text.slice(-2000)}`);
  }
}

/** The venvs as the image holds them: container paths in pyvenv.cfg and in their scripts' `#!`, links relative. */
function containerView(stage: ImageRun): void {
  for (const venv of stage.venvs) {
    const dir = path.join(stage.root, venv);
    rewrite(path.join(dir, 'pyvenv.cfg'), (text) => text.replaceAll(stage.root, ''));
    const bin = path.join(dir, 'bin');
    for (const name of fs.readdirSync(bin)) {
      const file = path.join(bin, name);
      const stat = fs.lstatSync(file);
      if (stat.isSymbolicLink()) {
        const target = fs.readlinkSync(file);
        if (target.startsWith(`${stage.root}/`)) {
          fs.rmSync(file);
          fs.symlinkSync(path.relative(bin, target), file);
        }
      } else if (stat.isFile() && fs.readFileSync(file).subarray(0, 2).toString() === '#!') {
        rewrite(file, (text) => text.replaceAll(`#!${stage.root}/`, '#!/'));
      }
    }
  }
}

/** pyvenv.cfg's home mapped into the image, where the stand-in (no chroot) runs the venv's Python. */
export function hostView(stage: ImageRun): void {
  for (const venv of stage.venvs) {
    rewrite(path.join(stage.root, venv, 'pyvenv.cfg'), (text) =>
      text.replace(/^home = (\/.*)$/m, (_, home: string) => `home = ${path.join(stage.root, home)}`),
    );
  }
}

/** Replaces a file with new contents (a new inode: the cache's hard-linked copy is left alone), keeping its mode. */
function rewrite(file: string, change: (text: string) => string): void {
  const text = fs.readFileSync(file, 'utf8');
  const next = change(text);
  if (next === text) return;
  const mode = fs.statSync(file).mode & 0o7777;
  fs.rmSync(file);
  fs.writeFileSync(file, next, { mode });
  fs.chmodSync(file, mode);
}

/** Docker's build-cache key: the parts, hashed in order. */
export function sha256(...parts: Array<string | Buffer>): string {
  const hash = crypto.createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex');
}

/** The names and contents under `file` (a file or a directory), for the build-cache key. */
export function contentKey(file: string): string {
  if (!fs.statSync(file).isDirectory()) return sha256(fs.readFileSync(file));
  return sha256(
    ...fs
      .readdirSync(file)
      .sort()
      .flatMap((name) => [name, contentKey(path.join(file, name))]),
  );
}

function linkOrCopy(from: string, to: string): void {
  try {
    fs.linkSync(from, to);
  } catch {
    fs.copyFileSync(from, to);
    fs.chmodSync(to, fs.statSync(from).mode & 0o7777);
  }
}
