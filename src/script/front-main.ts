/**
 * A script replica: inferctl's front (script-front.ts) owning its Python child, the user's script run by
 * azureml-inference-server-http under gunicorn (python-server.ts) on a Unix socket in a directory of the front's
 * own (0700, under the temp folder): no port, so no other process reaches the server, which checks no key.
 *   node dist/src/script/front-main.js --bundle DIR --api-key-file PATH --ready-file PATH --child-record PATH
 *        --python-log PATH [--python PATH] [--host 127.0.0.1] [--port 0] [--max-body-bytes N]
 *        [--tls-cert F --tls-key F]
 * --python overrides the bundle's interpreter (an image's, given as the container's argument).
 * The child is started in a process group of its own, recorded (group id and start time) in --child-record
 * before anything else can fail, and stopped with its whole group when the front stops. Its environment is
 * the inference server's settings and a few basics, not the worker's (python-server.ts). Ready file as the ONNX server writes it ({"pid","port","url"}) once the front listens;
 * /readyz turns 200 once the Python server answers (init() has finished). When the Python server exits
 * (init() raised: it exits with code 3), the front prints the traceback's last lines and exits 1.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { keyFileProblem } from '../server/key-file';
import { SCRIPT_MANIFEST } from './bundle-manifest';
import type { ScriptManifest } from './bundle-manifest';
import { recordChild, stopChildGroup } from './child-group';
import type { ChildRecord } from './child-group';
import { privateSocketPath, pythonServerCommand, spawnPythonServer } from './python-server';
import { createScriptFront } from './script-front';
import type { ScriptState } from './script-front';
import { scriptFailure } from './traceback';

function fail(message: string): never {
  process.stderr.write(`script front: ${message}\n`);
  process.exit(1);
}

function readSecret(file: string, what: string): Buffer {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    fail(`cannot read the ${what} file ${file} (${(err as Error).message})`);
  }
  if (process.platform !== 'win32') {
    const problem = keyFileProblem(stat, [...new Set([process.getgid!(), ...process.getgroups!()])]);
    if (problem) fail(`${what} file ${file} is ${problem}; chmod 600 it.`);
  }
  return fs.readFileSync(file);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        bundle: { type: 'string' },
        'api-key-file': { type: 'string' },
        'ready-file': { type: 'string' },
        'child-record': { type: 'string' },
        'python-log': { type: 'string' },
        python: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '0' },
        'max-body-bytes': { type: 'string', default: String(10 * 1024 * 1024) },
        workers: { type: 'string', default: '1' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
      },
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  const bundle = values.bundle;
  const childRecordFile = values['child-record'];
  const pythonLog = values['python-log'];
  if (!bundle || !values['api-key-file'] || !childRecordFile || !pythonLog) {
    fail('--bundle, --api-key-file, --child-record and --python-log are required');
  }
  const apiKey = readSecret(values['api-key-file'], 'API key').toString('utf8').trim();
  if (!apiKey) fail('the API key file is empty');
  const maxBodyBytes = Number(values['max-body-bytes']);
  const workers = Number(values.workers);
  if (!(Number.isInteger(maxBodyBytes) && maxBodyBytes > 0)) fail('--max-body-bytes must be a positive integer');
  if (!(Number.isInteger(workers) && workers > 0)) fail('--workers must be a positive integer');
  const tls =
    values['tls-cert'] && values['tls-key']
      ? { cert: fs.readFileSync(values['tls-cert']), key: readSecret(values['tls-key'], 'TLS key') }
      : undefined;
  let manifest: ScriptManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(bundle, SCRIPT_MANIFEST), 'utf8')) as ScriptManifest;
  } catch (err) {
    fail(`cannot read the bundle's ${SCRIPT_MANIFEST} (${(err as Error).message})`);
  }
  const python = values.python ?? manifest.python;
  const noControlSocket = manifest.noControlSocket ?? gunicornHasControlSocket(python);

  const state: ScriptState = { ready: false };
  let socket: ReturnType<typeof privateSocketPath>;
  try {
    socket = privateSocketPath();
  } catch (err) {
    fail((err as Error).message);
  }
  const { socketPath } = socket;
  process.once('exit', () => fs.rmSync(socket.dir, { recursive: true, force: true }));
  const server = pythonServerCommand({
    bundle,
    manifest,
    python,
    bind: `unix:${socketPath}`,
    workers,
    noControlSocket,
  });
  const child = spawnPythonServer(server, pythonLog);
  const spawned = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', reject);
  }).catch((err: unknown) => fail(`cannot start ${python} (${(err as Error).message})`));
  let record: ChildRecord = { pgid: spawned, startTime: '' };
  let stopping = false;
  // However the front ends, its Python group ends with it (a SIGKILLed front is swept by the target's teardown).
  process.once('exit', () => {
    try {
      if (child.exitCode === null && child.signalCode === null) process.kill(-spawned, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  child.once('exit', (code, signal) => {
    if (stopping) return;
    state.ready = false;
    state.failed = scriptFailure(pythonLog, code, signal, server.cwd);
    process.stderr.write(`script front: ${state.failed}\n`);
    process.exit(1);
  });
  record = await recordChild(childRecordFile, spawned);

  const front = createScriptFront({ apiKey, maxBodyBytes, state: () => state, ...(tls ? { tls } : {}) });
  front.once('error', (err) => fail(`cannot listen on ${values.host}:${values.port} (${err.message})`));
  front.listen(Number(values.port), values.host, () => {
    const actual = (front.address() as AddressInfo).port;
    const url = `${tls ? 'https' : 'http'}://${values.host}:${actual}`;
    const readyFile = values['ready-file'];
    if (readyFile) {
      const tmp = `${readyFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify({ pid: process.pid, port: actual, url, pythonGroup: spawned }));
      fs.renameSync(tmp, readyFile);
    }
    process.stdout.write(`script front on ${url}, Python server (group ${spawned}) on unix:${socketPath}\n`);
  });

  void waitUntilAnswering(socketPath, () => stopping || state.failed !== undefined).then((answering) => {
    if (!answering) return;
    state.upstream = { socketPath };
    state.ready = true;
    process.stdout.write("script front: the scoring script's init() has finished; serving\n");
  });

  const stop = () => {
    if (stopping) process.exit(0);
    stopping = true;
    front.close();
    front.closeIdleConnections();
    stopChildGroup(record).then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** Whether the environment's gunicorn opens a control socket unless told not to (gunicorn 25 on). */
function gunicornHasControlSocket(python: string): boolean {
  const probe = 'import gunicorn.config as c; print(hasattr(c, "ControlSocketDisable"))';
  try {
    return execFileSync(python, ['-c', probe], { encoding: 'utf8', timeout: 60_000 }).trim() === 'True';
  } catch (err) {
    fail(`cannot ask ${python} for its gunicorn (${(err as Error).message.split('\n')[0]})`);
  }
}

/** Polls the Python server's own health route (GET / answers once a worker has run init()). */
async function waitUntilAnswering(socketPath: string, giveUp: () => boolean): Promise<boolean> {
  while (!giveUp()) {
    const status = await new Promise<number>((resolve) => {
      const req = http.get({ socketPath, path: '/', timeout: 5_000 }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      });
      req.once('timeout', () => req.destroy());
      req.once('error', () => resolve(0)); // not listening yet, or a worker still booting
    });
    if (status >= 200 && status < 300) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
