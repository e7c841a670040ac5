/**
 * What the batch benchmarks share (batch-bench.ts, decode-bench.ts): the work and results folders, the
 * in-process cases (batch-case.ts, each in its own process), the Python peers (peer_score.py in
 * bench/.venv) and the full batchScore workflow through a GPU worker process.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { Client, Connection } from '@temporalio/client';

import { buildResnet50Shaped } from '../src/demo/resnet50';
import { writeSampleImages } from '../src/demo/sample-images';
import { batchWorkflowId } from '../src/shared/batch-types';
import type { BatchScoreInput } from '../src/shared/batch-types';
import type { PreprocessConfig } from '../src/shared/preprocess-types';
import { startDevServer } from '../src/temporal/dev-server';
import { batchScore } from '../workflows/batch-score';
import type { BatchOutcome } from '../workflows/batch-score';
import { runControlWorker } from '../worker/control';
import { BENCH_SCRIPT_DIR, benchScript, modelFolder } from './script-cases';
import { startGpuWorker } from './gpu-worker-process';
import { treeCpuSeconds } from './proc-cpu';

const execFileAsync = promisify(execFile);
export const ROOT = path.resolve(__dirname, '..', '..');
export const WORK = path.join(ROOT, 'bench', 'work');
export const RESULTS = path.join(ROOT, 'bench', 'results');

export interface CaseResult {
  case: string;
  items: number;
  seconds: number;
  itemsPerSecond: number;
  peakRssMb?: number;
  executionProvider?: string;
  note?: string;
  inferMsPerImage?: number;
  /** CPU ms per image of bare inference (every thread of the process). */
  inferCoreMsPerImage?: number;
  decodeCoreMsPerImage?: number;
  /** The `floor` case: core-ms of a decode call on a JPEG already at the model's input size. */
  floorCoreMsPerImage?: number;
  /** CPU seconds per item of the control plane while a job ran: the Temporal dev server and the control worker. */
  controlCpuSecondsPerItem?: number;
  /** CPU seconds per item of the scoring side (the GPU worker and its Python processes; the peer itself). */
  cpuSecondsPerItem?: number;
  threading?: Record<string, unknown>;
}

export function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

export const exists = (p: string): Promise<boolean> =>
  fs.access(p).then(
    () => true,
    () => false,
  );

export async function runCase(args: string[]): Promise<CaseResult> {
  const { stdout } = await execFileAsync(process.execPath, [path.join(__dirname, 'batch-case.js'), ...args], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as CaseResult;
}

export async function pythonPeer(
  model: string,
  images: string,
  batchSize: number,
  mode: 'draft' | 'naive' | 'script',
  processes = 1,
): Promise<CaseResult> {
  const venv = path.join(ROOT, 'bench', '.venv');
  const python = path.join(venv, 'bin', 'python');
  try {
    await execFileAsync('python3', ['--version']);
  } catch {
    return { case: mode, items: 0, seconds: 0, itemsPerSecond: 0, note: 'skipped: python3 not found' };
  }
  if (!(await exists(python))) {
    log('creating the Python peer venv (bench/.venv, once)…');
    await execFileAsync('python3', ['-m', 'venv', venv]);
    await execFileAsync(
      python,
      ['-m', 'pip', 'install', '--quiet', '-r', path.join(ROOT, 'bench', 'requirements.txt')],
      {
        maxBuffer: 16 << 20,
      },
    );
  }
  const out = path.join(WORK, 'peer-predictions.jsonl');
  const script = mode === 'script' ? ['--script', path.join(BENCH_SCRIPT_DIR, 'batch_score.py')] : [];
  const { stdout } = await execFileAsync(python, [
    path.join(ROOT, 'bench', 'peer_score.py'),
    ...script,
    '--model',
    mode === 'script' ? await modelFolder(model, WORK) : model,
    '--images',
    images,
    '--batch-size',
    String(batchSize),
    '--output',
    out,
    '--mode',
    mode,
    '--processes',
    String(processes),
  ]);
  const r = JSON.parse(stdout.trim()) as {
    items: number;
    seconds: number;
    items_per_second: number;
    peak_rss_mb: number;
    cpu_seconds?: number;
  };
  return {
    case: processes > 1 ? `${mode}-${processes}` : mode,
    items: r.items,
    seconds: r.seconds,
    itemsPerSecond: r.items_per_second,
    peakRssMb: r.peak_rss_mb,
    executionProvider: 'cpu',
    ...(r.cpu_seconds !== undefined ? { cpuSecondsPerItem: r.cpu_seconds / r.items } : {}),
  };
}

/** The GPU worker's startup line saying which thread settings it runs with. */
export let gpuThreads = '';

function peakRssOf(pid: number): Promise<number | undefined> {
  return fs
    .readFile(`/proc/${pid}/status`, 'utf8')
    .then((s) => Number(/VmHWM:\s+(\d+) kB/.exec(s)?.[1]) / 1024)
    .catch(() => undefined);
}

export async function fullWorkflow(
  model: string,
  images: string,
  opts: {
    batchSize: number;
    shardSize: number;
    concurrency: number;
    preprocess?: PreprocessConfig;
    script?: boolean;
    /** More GPU worker flags (--script-processes N, …). */
    gpuArgs?: string[];
    /** Also time a job of one input per slot after the warm-up: the fixed cost of a job, reported apart. */
    fixedCost?: boolean;
    /**
     * Also time the same job again on the same worker (returned as `again`): a worker that has scored this model
     * before starts with its decode split and measures nothing (src/batch/split-registry.ts).
     */
    again?: boolean;
    /** The job's window of shards in flight (default `concurrency`, the GPU worker's slots). */
    inFlight?: number;
  },
) {
  const data = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-bench-'));
  const server = await startDevServer({ dataDir: data, headless: true, buildCli: true });
  process.env.TEMPORAL_ADDRESS = server.address;
  let stopWorker!: () => void;
  const control = runControlWorker({ until: new Promise<void>((r) => (stopWorker = r)) });
  const started = await startGpuWorker(opts.concurrency, opts.gpuArgs);
  const gpu = started.gpu;
  const decodeSplit = started.decodeSplit;
  gpuThreads ||= started.threads;
  const connection = await Connection.connect({ address: server.address });
  try {
    const client = new Client({ connection });
    const job = (name: string, inputPath: string): BatchScoreInput => ({
      name,
      modelPath: model,
      inputPath,
      outputDir: path.join(data, name),
      shardSize: opts.shardSize,
      batchSize: opts.batchSize,
      maxShardsInFlight: opts.inFlight ?? opts.concurrency,
      errorThreshold: 0,
      topK: 5,
      ...(opts.preprocess ? { preprocess: opts.preprocess } : {}),
      ...(opts.script ? { script: benchScript(opts.batchSize) } : {}),
    });
    const run = (input: BatchScoreInput) =>
      client.workflow.execute(batchScore, {
        taskQueue: 'inferctl-control',
        workflowId: batchWorkflowId(input.name),
        args: [input],
      });
    /** One timed job over `images`: its result, shards, orchestration per shard and control-plane CPU. */
    const timedJob = async (name: string) => {
      const cpuBefore = await Promise.all([treeCpuSeconds(gpu.pid!), treeCpuSeconds(server.pid)]);
      const controlBefore = process.cpuUsage();
      const started = performance.now();
      const outcome: BatchOutcome = await run(job(name, images));
      const seconds = (performance.now() - started) / 1000;
      const control = process.cpuUsage(controlBefore);
      const cpuAfter = await Promise.all([treeCpuSeconds(gpu.pid!), treeCpuSeconds(server.pid)]);
      const delta = (i: number) =>
        cpuBefore[i] !== undefined && cpuAfter[i] !== undefined ? cpuAfter[i] - cpuBefore[i] : undefined;
      const scoringCpu = delta(0);
      const serverCpu = delta(1);
      const peakRssMb = await peakRssOf(gpu.pid!);
      // What Temporal adds: wall time not covered by shard activities doing work (listing, scheduling,
      // heartbeats, summary), spread over the shards.
      const summary = JSON.parse(await fs.readFile(path.join(outcome.outputDir, 'summary.json'), 'utf8')) as {
        shardTimings: Array<{ wallMs: number }>;
      };
      const busyMs = summary.shardTimings.reduce((n, s) => n + s.wallMs, 0) / opts.concurrency;
      const orchestrationMsPerShard = (seconds * 1000 - busyMs) / outcome.shards;
      const result: CaseResult = {
        case: opts.script ? 's' : 'c',
        items: outcome.itemsOk,
        seconds,
        itemsPerSecond: outcome.itemsOk / seconds,
        peakRssMb,
        executionProvider: outcome.executionProvider,
        ...(scoringCpu !== undefined ? { cpuSecondsPerItem: scoringCpu / outcome.itemsOk } : {}),
      };
      // The control plane's CPU (the dev server, and this process, which runs the control worker).
      const controlCpuSeconds = (serverCpu ?? 0) + (control.user + control.system) / 1e6;
      result.controlCpuSecondsPerItem = controlCpuSeconds / outcome.itemsOk;
      return {
        result,
        shards: outcome.shards,
        orchestrationMsPerShard,
        controlCpuSeconds,
      };
    };
    // Warm-up: a job of one image per slot loads the model into the worker (a script: one process per
    // slot, its environment built), as the other cases load it before timing.
    const warm = path.join(data, 'warm-up-input'); // not the job's output directory (path.join(data, name))
    await fs.mkdir(warm);
    const first = path.join(images, (await fs.readdir(images))[0]!);
    for (let i = 0; i < opts.concurrency; i++) await fs.copyFile(first, path.join(warm, `one-${i}.jpg`));
    await run({ ...job('warm-up', warm), shardSize: 1 });
    let fixedSeconds: number | undefined;
    if (opts.fixedCost) {
      const tiny = performance.now();
      await run({ ...job(`tiny-${Date.now().toString(36)}`, warm), shardSize: 1 });
      fixedSeconds = (performance.now() - tiny) / 1000;
    }

    const timed = await timedJob(`bench-${Date.now().toString(36)}`);
    // The same job again on the same worker: its decode split is known (src/batch/split-registry.ts).
    const again = opts.again ? await timedJob(`again-${Date.now().toString(36)}`) : undefined;
    return { ...timed, decodeSplit: decodeSplit(), fixedSeconds, again };
  } finally {
    await connection.close();
    gpu.kill('SIGTERM');
    stopWorker();
    await control;
    await server.stop();
    await fs.rm(data, { recursive: true, force: true });
  }
}

export const ratio = (x: number, y: number) => (y > 0 ? Number((x / y).toFixed(3)) : null);

/** The ResNet-50-shaped model and `items` 256x256 JPEGs under bench/work (made once). */
export async function prepare(items: number): Promise<{ model: string; images: string }> {
  await fs.mkdir(WORK, { recursive: true });
  const model = path.join(WORK, 'resnet50-shaped.onnx');
  if (!(await exists(model))) {
    log('generating the ResNet-50-shaped model (once)…');
    await fs.writeFile(`${model}.tmp`, buildResnet50Shaped({ seed: 50 }));
    await fs.rename(`${model}.tmp`, model);
  }
  const images = path.join(WORK, `images-${items}`);
  if (!(await exists(images))) {
    log(`generating ${items} JPEGs (once)…`);
    await writeSampleImages(`${images}.tmp`, items, { size: 256 });
    await fs.rename(`${images}.tmp`, images);
  }
  return { model, images };
}
