/**
 * How a script replica runs the user's script: azureml-inference-server-http's app under gunicorn (sync
 * workers, as `azmlinfsrv` runs it on Linux), in the bundle's app folder, with the inference server's settings
 * and a few basics as its whole environment: no credential of the worker reaches the user's code. The front
 * (front-main.ts) binds it to a Unix socket in a directory only its own user can open, so nothing but the
 * front reaches the server, which checks no key; bench:serve binds the same command to a loopback port to
 * measure the front against it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { ScriptManifest } from './bundle-manifest';

/** The Python server's command line and its process options. */
export interface PythonServerCommand {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** The variables the Python server gets: its settings and what a process needs, nothing of the worker's. */
function childEnvironment(app: string, manifest: ScriptManifest): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'SCORING_TIMEOUT_MS', 'WORKER_TIMEOUT'];
  const env: NodeJS.ProcessEnv = {};
  for (const name of keep) if (process.env[name] !== undefined) env[name] = process.env[name];
  return {
    ...env,
    AML_APP_ROOT: app,
    AZUREML_ENTRY_SCRIPT: manifest.entryScript,
    AZUREML_MODEL_DIR: path.join(app, manifest.modelDir),
    SERVICE_NAME: 'inferctl',
    PYTHONUNBUFFERED: '1',
  };
}

/**
 * The gunicorn command for a bundle. `bind` is gunicorn's: `unix:PATH` (the front's) or `127.0.0.1:PORT`.
 * `noControlSocket`: the environment's gunicorn opens a control socket unless told not to (gunicorn 25 on).
 */
export function pythonServerCommand(opts: {
  bundle: string;
  manifest: ScriptManifest;
  python: string;
  bind: string;
  workers: number;
  noControlSocket: boolean;
}): PythonServerCommand {
  const app = path.join(opts.bundle, opts.manifest.app);
  return {
    command: opts.python,
    args: [
      '-m',
      'gunicorn',
      '--bind',
      opts.bind,
      '--workers',
      String(opts.workers),
      '--timeout',
      process.env.WORKER_TIMEOUT ?? '300',
      '--error-logfile',
      '-',
      ...(opts.noControlSocket ? ['--no-control-socket'] : []),
      'azureml_inference_server_http.server.entry:app',
    ],
    cwd: app,
    env: childEnvironment(app, opts.manifest),
  };
}

/**
 * Starts the server in its own process group (so its workers are stopped together), its output appended
 * to `logPath`, which the caller reads for the traceback when init() fails.
 */
export function spawnPythonServer(server: PythonServerCommand, logPath: string): ChildProcess {
  const log = fs.openSync(logPath, 'a');
  try {
    return spawn(server.command, server.args, {
      cwd: server.cwd,
      env: server.env,
      detached: true,
      stdio: ['ignore', log, log],
    });
  } finally {
    fs.closeSync(log);
  }
}

/** Longest Unix socket path every platform takes (sun_path is 104 bytes on macOS, 108 on Linux). */
const MAX_SOCKET_PATH = 103;

/**
 * A new directory only this user can open (mkdtemp makes it 0700) under the system's temp folder, and the
 * socket path in it; the caller removes the directory when it is done.
 */
export function privateSocketPath(): { dir: string; socketPath: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-script-'));
  const socketPath = path.join(dir, 'python.sock');
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `the Python server's socket path ${socketPath} is over ${MAX_SOCKET_PATH} bytes; set TMPDIR to a shorter folder`,
    );
  }
  return { dir, socketPath };
}
