/**
 * The processes a bench:serve script run starts (script-front-bench.ts): inferctl's script front on a bundle,
 * the direct path's Python server on a loopback port, the two relays (script-relay.ts) on the front's socket;
 * and their stop.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';

import { SCRIPT_MANIFEST } from '../src/script/bundle-manifest';
import type { ScriptManifest } from '../src/script/bundle-manifest';
import { pythonServerCommand, spawnPythonServer } from '../src/script/python-server';
import { freePort } from '../src/temporal/dev-server';

const ROOT = path.resolve(__dirname, '..', '..');
const FRONT_MAIN = path.join(ROOT, 'dist', 'src', 'script', 'front-main.js');
const RELAY_MAIN = path.join(ROOT, 'dist', 'bench', 'script-relay.js');

/** The front started on the bundle; its URL, and its Python server's group and socket (from the line it prints). */
export async function startFront(bundle: string, dir: string, keyFile: string) {
  const readyFile = path.join(dir, 'ready.json');
  const child: ChildProcess = spawn(
    process.execPath,
    [
      FRONT_MAIN,
      '--bundle',
      bundle,
      '--api-key-file',
      keyFile,
      '--ready-file',
      readyFile,
      '--child-record',
      path.join(dir, 'python.json'),
      '--python-log',
      path.join(dir, 'python.log'),
      '--port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 180_000;
  for (;;) {
    const m = /script front on http:\/\/127\.0\.0\.1:(\d+), Python server \(group (\d+)\) on unix:(\S+)/.exec(out);
    if (m) {
      const port = Number(m[1]);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) return { child, port, pythonGroup: Number(m[2]), socketPath: m[3]! };
    }
    if (child.exitCode !== null) throw new Error(`the script front exited (${child.exitCode}): ${out}`);
    if (Date.now() > deadline) throw new Error(`the script was not ready within 180 s: ${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The direct path's Python server: the front's command line, bound to a loopback port; answering once init() ran. */
export async function startDirect(bundle: string, dir: string) {
  const manifest = JSON.parse(await fs.readFile(path.join(bundle, SCRIPT_MANIFEST), 'utf8')) as ScriptManifest;
  const port = await freePort();
  const command = pythonServerCommand({
    bundle,
    manifest,
    python: manifest.python,
    bind: `127.0.0.1:${port}`,
    workers: 1,
    noControlSocket: manifest.noControlSocket ?? false,
  });
  const child = spawnPythonServer(command, path.join(dir, 'direct.log'));
  const deadline = Date.now() + 180_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { child, port };
    if (child.exitCode !== null) throw new Error(`the direct Python server exited (${child.exitCode}); see ${dir}`);
    if (Date.now() > deadline) throw new Error('the direct Python server did not answer within 180 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The byte relay (script-relay.ts) on the front's Python socket; its port once it listens. */
export async function startRelay(socketPath: string, httpMode: boolean) {
  const child = spawn(process.execPath, [RELAY_MAIN, '--socket', socketPath, ...(httpMode ? ['--http'] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /relay on 127\.0\.0\.1:(\d+)/.exec(out);
    if (m) return { child, port: Number(m[1]) };
    if (child.exitCode !== null) throw new Error(`the relay exited (${child.exitCode}): ${out}`);
    if (Date.now() > deadline) throw new Error('the relay did not listen within 30 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function stop(child: ChildProcess, group = false): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  const signal = (s: NodeJS.Signals) => (group ? process.kill(-child.pid!, s) : child.kill(s));
  signal('SIGTERM'); // the front stops its Python group with it
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (child.exitCode === null && child.signalCode === null) signal('SIGKILL');
}
