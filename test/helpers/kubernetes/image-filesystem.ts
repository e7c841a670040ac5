/**
 * The image a build context makes, assembled on this machine by following its Dockerfile (parsed with
 * dockerfile-ast) as a builder does, for the kubelet stand-in to run:
 *   - stages: `FROM <base> [AS name]`; a later `COPY --from=<name|index>` reads an earlier stage's files;
 *     the last stage is the image. Base images are known by name (BASE_IMAGES: the files, ENV and users
 *     each provides; the project's Node 24 binary is the node image's `node`); any other base is refused.
 *   - `COPY [--from=…] [--chown=u[:g]] <src>… <dest>`: sources must exist in the context (or the stage),
 *     a directory copies its contents, a `dest/` or several sources make a directory; files are owned
 *     0:0 unless --chown says otherwise, and keep their modes: a context file's mode is its tar header's
 *     (`context.modes`; 0644 when the context gives none), so a file packed 0600 is one the image's
 *     non-root user cannot read, as in the real image.
 *   - `WORKDIR` (relative to the previous one), `USER u[:g]` (a numeric uid not in the base's passwd gets
 *     gid 0, as in Docker), `ENV`, `ENTRYPOINT`/`CMD` (exec form), `EXPOSE`; anything else is refused.
 *   - `RUN [NAME=value…] npm ci …` runs npm ci against the stage's own package.json and lock (offline
 *     first: npm's cache is warm after CI's own npm ci); its node_modules is cached under
 *     <cache>/image-fs/<sha256 of Dockerfile, package.json and lock>, so a second assembly links it.
 *     `RUN … onnxruntime-node/script/install` is skipped by name: it downloads the CUDA execution
 *     provider from NuGet, which this machine has no route to (and it has no GPU to use it on).
 *     In a `FROM python:3.X-slim-bookworm` stage (python-image.ts: this machine's Python 3.X laid out as
 *     that image's), any single command runs inside the image, as root, each RUN's result cached as a
 *     layer keyed by everything before it (COPY's file contents included). Any other RUN is refused: the
 *     stand-in would otherwise guess.
 * Files are hard-linked from the stage or cache they come from unless --chown changes their owner.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { DockerfileParser } from 'dockerfile-ast';
import type { Copy, Env, From, JSONInstruction } from 'dockerfile-ast';

import { inferctlCacheDir } from '../../../src/paths';
import { cachedLayer, contentKey, isPythonBase, pythonSlimBase, runInImage, sha256 } from './python-image';

export interface ImageUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface ImageConfig {
  /** The USER line as written (`1000:1000`, `node`), or undefined for root. */
  user?: string;
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  /** The final base image's /etc/passwd, for resolving USER and a runAsUser's home. */
  users: ImageUser[];
}

export interface ImageFilesystem {
  /** The image's root directory: a container path `/app/x` is `${root}/app/x`. */
  root: string;
  config: ImageConfig;
}

interface BaseImage {
  matches: (ref: string) => boolean;
  env: Record<string, string>;
  users: ImageUser[];
  /** Puts the base's files that matter into `root`. */
  provide: (root: string) => void;
}

const ROOT_USER: ImageUser = { name: 'root', uid: 0, gid: 0, home: '/root' };
const STANDARD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The base images the scoring Dockerfile uses, with what each provides that the container can see. */
const BASE_IMAGES: BaseImage[] = [
  {
    matches: (ref) => /^node:24(-|$)/.test(ref),
    env: { PATH: STANDARD_PATH, NODE_VERSION: process.versions.node },
    users: [ROOT_USER, { name: 'node', uid: 1000, gid: 1000, home: '/home/node' }],
    provide: (root) => {
      if (process.versions.node.split('.')[0] !== '24')
        throw new Error(`node:24 needs Node 24, not ${process.version}`);
      linkOrCopy(process.execPath, path.join(root, 'usr/local/bin/node'));
    },
  },
  {
    matches: (ref) => /^nvcr\.io\/nvidia\/cuda:12\.[\d.]+-cudnn-runtime-ubuntu24\.04$/.test(ref),
    env: {
      PATH: `/usr/local/nvidia/bin:/usr/local/cuda/bin:${STANDARD_PATH}`,
      LD_LIBRARY_PATH: '/usr/local/nvidia/lib:/usr/local/nvidia/lib64',
      NVIDIA_VISIBLE_DEVICES: 'all',
    },
    // Ubuntu 24.04's images ship a user `ubuntu` with uid and gid 1000.
    users: [ROOT_USER, { name: 'ubuntu', uid: 1000, gid: 1000, home: '/home/ubuntu' }],
    provide: () => undefined,
  },
];

interface Stage {
  name?: string;
  root: string;
  base: BaseImage;
  config: ImageConfig;
  /** Docker's build-cache key so far: the base, then every instruction and the contents COPY brought in. */
  key: string;
  /** Whether RUN runs commands in this stage's image (a Python base), with the venvs made there. */
  python?: { venvs: string[] };
}

/** A build context's files by path, with their tar headers' modes when it has them. */
export type ContextFiles = ReadonlyMap<string, Buffer> & { modes?: ReadonlyMap<string, number> };

/** Assembles the image of `context` (its files by path) in `dest`, which must not exist yet. */
export async function assembleImage(context: ContextFiles, dest: string): Promise<ImageFilesystem> {
  const dockerfileText = context.get('Dockerfile')?.toString('utf8');
  if (dockerfileText === undefined) throw new Error('the build context has no Dockerfile');
  const dockerfile = DockerfileParser.parse(dockerfileText);
  const contextDir = path.join(dest, 'context');
  for (const [name, data] of context) writeFile(path.join(contextDir, name), data, context.modes?.get(name) ?? 0o644);
  const stages: Stage[] = [];
  let stage: Stage | undefined;
  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword();
    const line = instruction.getRange().start.line + 1;
    const where = `Dockerfile line ${line} (${instruction.toString().trim()})`;
    if (keyword === 'FROM') {
      stage = await fromStage(instruction as From, path.join(dest, `stage-${stages.length}`), stages, where);
      stages.push(stage);
      continue;
    }
    if (!stage) throw new Error(`${where}: an instruction before FROM`);
    const args = instruction.getArguments().map((a) => a.getValue());
    stage.key = sha256(stage.key, instruction.toString().trim());
    switch (keyword) {
      case 'WORKDIR':
        stage.config.workdir = path.posix.resolve(stage.config.workdir, args[0] ?? '/');
        mkdirs(inRoot(stage.root, stage.config.workdir));
        break;
      case 'ENV':
        for (const p of (instruction as Env).getProperties()) stage.config.env[p.getName()] = p.getValue() ?? '';
        break;
      case 'USER':
        stage.config.user = args[0];
        break;
      case 'ENTRYPOINT':
      case 'CMD': {
        const exec = (instruction as JSONInstruction).getJSONStrings().map((s) => s.getJSONValue());
        if (exec.length === 0) throw new Error(`${where}: only the exec form (["…"]) is supported`);
        stage.config[keyword === 'CMD' ? 'cmd' : 'entrypoint'] = exec;
        break;
      }
      case 'EXPOSE':
        break;
      case 'COPY':
        copy(instruction as Copy, stage, stages, contextDir, where);
        break;
      case 'RUN':
        await run(args, stage, dockerfileText, where);
        break;
      default:
        throw new Error(`${where}: the kubelet stand-in does not build ${keyword}`);
    }
  }
  if (!stage) throw new Error('the Dockerfile has no FROM');
  fs.rmSync(contextDir, { recursive: true, force: true });
  return { root: stage.root, config: stage.config };
}

async function fromStage(from: From, root: string, stages: Stage[], where: string): Promise<Stage> {
  const ref = from.getImage() ?? '';
  const earlier = stages.find((s) => s.name === ref);
  mkdirs(root);
  if (earlier) {
    copyTree(earlier.root, root, undefined);
    return {
      name: from.getBuildStage() ?? undefined,
      root,
      base: earlier.base,
      config: structuredClone(earlier.config),
      key: earlier.key,
      ...(earlier.python ? { python: structuredClone(earlier.python) } : {}),
    };
  }
  if (isPythonBase(ref)) {
    const python = await pythonSlimBase(ref, where);
    const users = [ROOT_USER, { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' }];
    python.provide(root);
    mkdirs(inRoot(root, '/root'));
    return {
      name: from.getBuildStage() ?? undefined,
      root,
      base: { matches: () => true, env: python.env, users, provide: () => undefined },
      config: { workdir: '/', env: { ...python.env }, entrypoint: [], cmd: [], users },
      key: sha256(python.identity),
      python: { venvs: [] },
    };
  }
  const base = BASE_IMAGES.find((b) => b.matches(ref));
  if (!base) throw new Error(`${where}: the kubelet stand-in does not know base image ${ref}`);
  base.provide(root);
  for (const user of base.users) mkdirs(inRoot(root, user.home));
  return {
    name: from.getBuildStage() ?? undefined,
    root,
    base,
    config: { workdir: '/', env: { ...base.env }, entrypoint: [], cmd: [], users: base.users },
    key: sha256(ref),
  };
}

function copy(instruction: Copy, stage: Stage, stages: Stage[], contextDir: string, where: string): void {
  const flags = new Map(instruction.getFlags().map((f) => [f.getName(), f.getValue() ?? '']));
  for (const name of flags.keys()) {
    if (name !== 'from' && name !== 'chown') throw new Error(`${where}: COPY --${name} is not supported`);
  }
  const words = instruction.getArguments().map((a) => a.getValue());
  const dest = words.pop();
  if (!dest || words.length === 0) throw new Error(`${where}: COPY needs a source and a destination`);
  let sourceRoot = contextDir;
  const from = flags.get('from');
  if (from !== undefined) {
    const source = stages.find((s) => s.name === from) ?? stages[Number(from)];
    if (!source || source === stage) throw new Error(`${where}: no earlier stage named ${from}`);
    sourceRoot = source.root;
  }
  const owner = flags.has('chown') ? resolveUser(flags.get('chown')!, stage.config.users) : undefined;
  const target = path.posix.resolve(stage.config.workdir, dest);
  const intoDir = dest.endsWith('/') || words.length > 1;
  for (const word of words) {
    const source = inRoot(sourceRoot, word);
    if (!fs.existsSync(source)) {
      throw new Error(`${where}: COPY failed: ${word} not found in ${from ? `stage ${from}` : 'the build context'}`);
    }
    const isDir = fs.statSync(source).isDirectory();
    stage.key = sha256(stage.key, word, contentKey(source));
    const to =
      isDir || !intoDir ? inRoot(stage.root, target) : inRoot(stage.root, path.posix.join(target, path.basename(word)));
    if (isDir) copyTree(source, to, owner);
    else copyFile(source, to, owner);
  }
}

/** RUN, in shell form: leading NAME=value words set the command's environment. */
async function run(words: string[], stage: Stage, dockerfile: string, where: string): Promise<void> {
  if (words.some((w) => ['&&', '||', ';', '|'].includes(w))) {
    throw new Error(`${where}: one command per RUN, please (the stand-in runs only what it recognises)`);
  }
  const env: Record<string, string> = {};
  while (words[0] && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) {
    const [name, ...value] = words.shift()!.split('=');
    env[name!] = value.join('=');
  }
  // The CUDA execution provider's download (NuGet): no route to it from here, and no GPU to use it on.
  if (words[0] === 'node' && words[1]?.endsWith('onnxruntime-node/script/install')) return;
  if (stage.python) {
    const image = { root: stage.root, workdir: stage.config.workdir, env: stage.config.env, venvs: stage.python.venvs };
    await cachedLayer(
      stage.key,
      image,
      () => runInImage(words, env, image, where, buildNetworkEnv()),
      (from, to) => copyTree(from, to, undefined),
    );
    stage.python.venvs = image.venvs;
    return;
  }
  if (words[0] !== 'npm' || words[1] !== 'ci') {
    throw new Error(`${where}: the kubelet stand-in runs only \`npm ci\` (and skips the CUDA provider download)`);
  }
  const cwd = inRoot(stage.root, stage.config.workdir);
  const manifest = fs.readFileSync(path.join(cwd, 'package.json'));
  const lock = fs.readFileSync(path.join(cwd, 'package-lock.json'));
  const hash = crypto.createHash('sha256').update(dockerfile).update(manifest).update(lock).digest('hex');
  const cached = path.join(inferctlCacheDir(), 'image-fs', hash);
  if (!fs.existsSync(path.join(cached, 'node_modules'))) {
    const tmp = `${cached}.${process.pid}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    mkdirs(tmp);
    fs.writeFileSync(path.join(tmp, 'package.json'), manifest);
    fs.writeFileSync(path.join(tmp, 'package-lock.json'), lock);
    await npm([...words.slice(1), '--prefer-offline'], tmp, { ...stage.config.env, ...env }, where);
    fs.rmSync(cached, { recursive: true, force: true });
    fs.renameSync(tmp, cached);
  }
  copyTree(path.join(cached, 'node_modules'), path.join(cwd, 'node_modules'), undefined);
}

const BUILD_NETWORK_VARS = [
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'HTTPS_PROXY',
  'HTTP_PROXY',
  'NO_PROXY',
  'https_proxy',
  'http_proxy',
  'no_proxy',
];

function buildNetworkEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of BUILD_NETWORK_VARS) if (process.env[name]) env[name] = process.env[name];
  return env;
}

function npm(args: string[], cwd: string, env: Record<string, string>, where: string): Promise<void> {
  // The image's npm is the host's (found on PATH), run by the project's Node, in the stage's environment.
  const npmCli = fs.realpathSync(whichOnPath('npm'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [npmCli, ...args], {
      cwd,
      env: {
        ...env,
        // The build machine's network, as a real image build has it: its CAs (a TLS-inspecting proxy's
        // included) and proxies. Nothing else of the host's environment reaches the image.
        ...buildNetworkEnv(),
        HOME: process.env.HOME ?? '/root',
        PATH: `${path.dirname(process.execPath)}:${env.PATH ?? STANDARD_PATH}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${where}: npm ${args.join(' ')} failed (${code}):\n${output.slice(-2000)}`)),
    );
  });
}

/** `u[:g]` (names or numbers) → uid and gid, as Docker resolves them against the image's passwd. */
export function resolveUser(spec: string, users: ImageUser[]): { uid: number; gid: number } {
  const [u, g] = spec.split(':') as [string, string | undefined];
  const user = users.find((x) => x.name === u || String(x.uid) === u);
  const uid = user?.uid ?? Number(u);
  if (!Number.isInteger(uid)) throw new Error(`user ${u} is not in the image's /etc/passwd`);
  if (g === undefined) return { uid, gid: user?.gid ?? 0 };
  const gid = users.find((x) => x.name === g)?.gid ?? Number(g);
  if (!Number.isInteger(gid)) throw new Error(`group ${g} is not in the image's /etc/group`);
  return { uid, gid };
}

function whichOnPath(command: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, command);
    if (dir && fs.existsSync(file)) return file;
  }
  throw new Error(`${command} is not on PATH`);
}

export function inRoot(root: string, containerPath: string): string {
  return path.join(root, path.posix.resolve('/', containerPath));
}

function mkdirs(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
}

function writeFile(file: string, data: Buffer, mode: number): void {
  mkdirs(path.dirname(file));
  fs.writeFileSync(file, data, { mode });
  fs.chmodSync(file, mode);
}

function linkOrCopy(from: string, to: string): void {
  mkdirs(path.dirname(to));
  fs.rmSync(to, { force: true });
  try {
    fs.linkSync(from, to);
  } catch {
    fs.copyFileSync(from, to);
    fs.chmodSync(to, fs.statSync(from).mode & 0o7777);
  }
}

function copyFile(from: string, to: string, owner: { uid: number; gid: number } | undefined): void {
  if (!owner) return linkOrCopy(from, to);
  mkdirs(path.dirname(to));
  fs.rmSync(to, { force: true });
  fs.copyFileSync(from, to);
  fs.chmodSync(to, fs.statSync(from).mode & 0o7777);
  fs.chownSync(to, owner.uid, owner.gid);
}

/** The contents of `from` into `to` (created), symlinks kept, files linked unless an owner is given. */
function copyTree(from: string, to: string, owner: { uid: number; gid: number } | undefined): void {
  mkdirs(to);
  if (owner) fs.chownSync(to, owner.uid, owner.gid);
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst, owner);
    else if (entry.isSymbolicLink()) {
      fs.rmSync(dst, { force: true });
      fs.symlinkSync(fs.readlinkSync(src), dst);
      if (owner) fs.lchownSync(dst, owner.uid, owner.gid);
    } else copyFile(src, dst, owner);
  }
}
