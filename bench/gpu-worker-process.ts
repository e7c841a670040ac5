/**
 * The benchmarks' GPU worker: `dist/worker/gpu.js` as its own process (as users run it), started and
 * awaited until it polls. Returns the process and the thread settings it reported at startup.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';

const ROOT = path.resolve(__dirname, '..', '..');

export async function startGpuWorker(
  concurrency: number,
): Promise<{ gpu: ChildProcessByStdio<null, Readable, null>; threads: string }> {
  const gpu = spawn(
    process.execPath,
    [path.join(ROOT, 'dist', 'worker', 'gpu.js'), '--max-concurrent-shards', String(concurrency)],
    { env: { INFERCTL_LOG_LEVEL: 'WARN', ...process.env }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let threads = '';
  await new Promise<void>((resolve) =>
    gpu.stdout.on('data', (d: Buffer) => {
      const text = d.toString();
      threads ||= /Threads: .*/.exec(text)?.[0] ?? '';
      if (text.includes('polling')) resolve();
    }),
  );
  return { gpu, threads };
}
