/** The scoring server's entry point as its own process, for the tests of its flags and startup checks. */
import { spawn } from 'node:child_process';
import path from 'node:path';

export const SERVER_MAIN = path.resolve(__dirname, '..', '..', 'src', 'server', 'main.js');

/** Runs `main.js` with `args` until it exits: its exit code and what it wrote to stderr. */
export function runServerMain(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SERVER_MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stderr }));
  });
}
