/**
 * `npm run bench -- --scale [N]` (default 1,000,000): one batchScore job of N inputs with the tiny
 * colour CNN, through a real dev server, control worker and GPU worker process. The inputs are a .txt
 * manifest listing 64 small JPEGs over and over (each line a distinct input, with its own index).
 * Reports wall time, items/s, control-plane cost per shard (wall time not spent inside shard
 * activities, spread over the shards), the largest history of any run of the job (events), the GPU
 * worker's RSS after warm-up and at its peak, the output's size, and checks that every index 0…N-1
 * appears exactly once in predictions.jsonl + errors.jsonl. Writes bench/results/scale-<date>.json/.md.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import { Client, Connection } from '@temporalio/client';

import { writeSampleImages } from '../src/demo/sample-images';
import { buildTinyCnn } from '../src/demo/tiny-cnn';
import { batchWorkflowId } from '../src/shared/batch-types';
import type { BatchScoreInput } from '../src/shared/batch-types';
import { startDevServer } from '../src/temporal/dev-server';
import { batchScore } from '../workflows/batch-score';
import { runControlWorker } from '../worker/control';
import { startGpuWorker } from './gpu-worker-process';

export interface ScaleBenchOptions {
  items: number;
  work: string;
  results: string;
  log: (line: string) => void;
}

function rssMb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number | undefined> {
  return fs
    .readFile(`/proc/${pid}/status`, 'utf8')
    .then((s) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(s)?.[1]) / 1024)
    .catch(() => undefined);
}

async function writeManifest(file: string, images: string[], items: number): Promise<void> {
  const out = createWriteStream(file);
  for (let i = 0; i < items; i++) {
    if (!out.write(`${images[i % images.length]}\n`)) await once(out, 'drain');
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

/** Each index in [0, items) seen exactly once across the files' rows: { missing, duplicated, rows }. */
async function checkOnce(files: string[], items: number) {
  const seen = new Uint8Array(items);
  let duplicated = 0;
  let rows = 0;
  for (const file of files) {
    const lines = readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line) continue;
      rows++;
      const index = Number(/"index":(\d+)/.exec(line)?.[1]);
      if (!(index >= 0 && index < items) || seen[index]) duplicated++;
      else seen[index] = 1;
    }
  }
  const missing = seen.reduce((n, v) => n + (v ? 0 : 1), 0);
  return { rows, missing, duplicated };
}

async function duBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

export async function scaleBench({ items, work, results, log }: ScaleBenchOptions): Promise<void> {
  const shardSize = Math.max(1000, Math.min(10_000, Math.ceil(items / 100)));
  const batchSize = 64;
  const concurrency = 2;
  await fs.mkdir(work, { recursive: true });
  const model = path.join(work, 'tiny-cnn.onnx');
  await fs.writeFile(model, buildTinyCnn());
  const imageDir = path.join(work, 'scale-images');
  const samples = await writeSampleImages(imageDir, 64, { size: 64 });
  const data = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-scale-'));
  const manifest = path.join(data, `inputs-${items}.txt`);
  await writeManifest(
    manifest,
    samples.map((s) => s.path),
    items,
  );
  log(`scale: ${items} inputs, shards of ${shardSize}, batches of ${batchSize}, ${concurrency} in flight`);

  const server = await startDevServer({ dataDir: data, headless: true, buildCli: true });
  process.env.TEMPORAL_ADDRESS = server.address;
  let stopWorker!: () => void;
  const control = runControlWorker({ until: new Promise<void>((r) => (stopWorker = r)) });
  const { gpu, threads } = await startGpuWorker(concurrency);
  const connection = await Connection.connect({ address: server.address });
  try {
    const client = new Client({ connection });
    const job = (name: string, inputPath: string): BatchScoreInput => ({
      name,
      modelPath: model,
      inputPath,
      outputDir: path.join(data, name),
      shardSize,
      batchSize,
      maxShardsInFlight: concurrency,
      errorThreshold: 0,
      topK: 1,
    });
    const run = (input: BatchScoreInput) =>
      client.workflow.execute(batchScore, {
        taskQueue: 'inferctl-control',
        workflowId: batchWorkflowId(input.name),
        args: [input],
      });
    await run(job('warm-up', imageDir));
    const rssStartMb = await rssMb(gpu.pid!, 'VmRSS');
    const samples: number[] = [];
    const sampler = setInterval(() => {
      void rssMb(gpu.pid!, 'VmRSS').then((v) => v !== undefined && samples.push(v));
    }, 1000);

    const name = `scale-${Date.now().toString(36)}`;
    const started = performance.now();
    const outcome = await run(job(name, manifest));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const rssHwmMb = await rssMb(gpu.pid!, 'VmHWM');
    const rssPeakSampledMb = Math.max(rssStartMb ?? 0, ...samples);
    // RSS at each quarter of the run's wall time: flat means it stops growing once the pipeline is full.
    const quarters = [0.25, 0.5, 0.75, 1].map((q) =>
      Math.round(samples[Math.min(samples.length - 1, Math.floor(q * samples.length) - 1)] ?? NaN),
    );

    const summary = JSON.parse(await fs.readFile(path.join(outcome.outputDir, 'summary.json'), 'utf8')) as {
      shardTimings: Array<{ wallMs: number }>;
    };
    const busyMs = summary.shardTimings.reduce((n, s) => n + s.wallMs, 0) / concurrency;
    const controlPlaneMsPerShard = (seconds * 1000 - busyMs) / outcome.shards;

    const histories: number[] = [];
    for await (const execution of client.workflow.list({ query: `WorkflowId = '${batchWorkflowId(name)}'` })) {
      const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
      histories.push(history.events?.length ?? 0);
    }
    const once = await checkOnce([outcome.predictionsFile, outcome.errorsFile], items);
    const outputBytes = await duBytes(outcome.outputDir);
    const predictionsBytes = (await fs.stat(outcome.predictionsFile)).size;

    const report = {
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, loadAverage: os.loadavg() },
      model: 'tiny colour CNN, 64x64',
      items,
      shardSize,
      batchSize,
      concurrency,
      shards: outcome.shards,
      threads,
      seconds: Number(seconds.toFixed(1)),
      itemsPerSecond: Number((items / seconds).toFixed(1)),
      controlPlaneMsPerShard: Number(controlPlaneMsPerShard.toFixed(1)),
      runs: histories.length,
      largestHistoryEvents: Math.max(...histories),
      historyEvents: histories,
      workerRssMb: {
        afterWarmUp: Number(rssStartMb?.toFixed(0)),
        peakSampled: Number(rssPeakSampledMb.toFixed(0)),
        peakHwm: Number(rssHwmMb?.toFixed(0)),
        atQuartersOfTheRun: quarters,
      },
      outputBytes,
      predictionsBytes,
      exactlyOnce: { ...once, ok: once.missing === 0 && once.duplicated === 0 && once.rows === items },
      itemsOk: outcome.itemsOk,
      itemsFailed: outcome.itemsFailed,
    };
    await fs.mkdir(results, { recursive: true });
    const stamp = report.date.slice(0, 16).replace(':', '-');
    await fs.writeFile(path.join(results, `scale-${stamp}.json`), JSON.stringify(report, null, 2) + '\n');
    const md = [
      `# Batch scoring at scale, ${report.date}`,
      '',
      `${items} inputs (a manifest of 64 small JPEGs, listed over and over), ${report.model}; shards of ${shardSize} ` +
        `(${report.shards}), batches of ${batchSize}, ${concurrency} in flight; ${report.machine.cpus} CPUs, ${report.machine.node}; ` +
        `GPU worker: ${threads}.`,
      '',
      '| measure | value | target |',
      '|---|---|---|',
      `| wall time | ${report.seconds} s | |`,
      `| items/s | ${report.itemsPerSecond} | |`,
      `| control-plane cost per shard | ${report.controlPlaneMsPerShard} ms | |`,
      `| largest history (events) | ${report.largestHistoryEvents} (over ${report.runs} run(s)) | < 10,000 |`,
      `| GPU worker RSS after warm-up / peak sampled / high-water mark | ${report.workerRssMb.afterWarmUp} / ${report.workerRssMb.peakSampled} / ${report.workerRssMb.peakHwm} MB | flat |`,
      `| GPU worker RSS at 25 / 50 / 75 / 100% of the run | ${quarters.join(' / ')} MB | flat |`,
      `| output size / predictions.jsonl | ${(outputBytes / 2 ** 20).toFixed(1)} / ${(predictionsBytes / 2 ** 20).toFixed(1)} MiB | about equal |`,
      `| every input exactly once | ${report.exactlyOnce.ok ? 'yes' : 'NO'} (${once.rows} rows, ${once.missing} missing, ${once.duplicated} duplicated) | yes |`,
      '',
    ].join('\n');
    await fs.writeFile(path.join(results, `scale-${stamp}.md`), md);
    process.stdout.write(md);
  } finally {
    await connection.close();
    gpu.kill('SIGTERM');
    stopWorker();
    await control;
    await server.stop();
    await fs.rm(data, { recursive: true, force: true });
  }
}
