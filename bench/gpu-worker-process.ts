/**
 * The benchmarks' GPU worker: `dist/worker/gpu.js` as its own process (as users run it), started and
 * awaited until it polls. Returns the process, the thread settings it reported at startup, and the decode
 * split it logs once its first batches are measured (its log at INFO, read from its stdout).
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';

const ROOT = path.resolve(__dirname, '..', '..');

export async function startGpuWorker(
  concurrency: number,
  more: string[] = [],
): Promise<{ gpu: ChildProcessByStdio<null, Readable, Readable>; threads: string; decodeSplit: () => string }> {
  const gpu = spawn(
    process.execPath,
    [path.join(ROOT, 'dist', 'worker', 'gpu.js'), '--max-concurrent-shards', String(concurrency), ...more],
    { env: { ...process.env, INFERCTL_LOG_LEVEL: 'INFO' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let threads = '';
  let output = '';
  // Its log (INFO, for the decode split): kept, and passed on where it warns or fails.
  gpu.stderr.on('data', (d: Buffer) => {
    const text = d.toString();
    output = (output + text).slice(-200_000);
    if (/\[(WARN|ERROR)\]/.test(text)) process.stderr.write(text);
  });
  await new Promise<void>((resolve) =>
    gpu.stdout.on('data', (d: Buffer) => {
      const text = d.toString();
      output = (output + text).slice(-200_000);
      threads ||= /Threads: .*/.exec(text)?.[0] ?? '';
      if (text.includes('polling')) resolve();
    }),
  );
  // The choice's attributes on one line, without the activity's ids.
  const decodeSplit = () => {
    const logged = /Decode concurrency chosen \{[^]*?\n\}/.exec(output)?.[0];
    if (!logged) return 'not chosen (fewer batches than it measures: one at each intra-op setting)';
    const attrs = logged.replace(/^Decode concurrency chosen \{|\}$/g, '').replace(/\s+/g, ' ');
    return attrs
      .replace(
        / ?(key|activityId|activityType|attempt|isLocal|namespace|taskQueue|workflowId|workflowRunId|workflowType|sdkComponent|taskToken): ('[^']*'|[^,]*),?/g,
        '',
      )
      .trim()
      .replace(/,$/, '');
  };
  return { gpu, threads, decodeSplit };
}
