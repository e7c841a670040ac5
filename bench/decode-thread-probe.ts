/**
 * `node dist/bench/decode-thread-probe.js [images dir] [rounds] [threads]` (after `npm run build`; default
 * bench/work/images-2048, 5 rounds, 2 threads): would decoding in worker_threads help the GPU worker? Its
 * JavaScript thread runs sharp's synchronous part (reading the options, queueing the work) and the
 * normalisation into the tensor for every image (docs/batch-scoring.md). This decodes one corpus to the
 * tiny model's 64x64 input, 4 images at once as the decode split runs them on 2 cores, in turns: on the main
 * thread, and in a pool of worker threads (the bytes sent, the Float32 tensor transferred back); CPU per
 * image (the whole process's, user + system) and items/s, the median of the rounds, and whether the tensors
 * are bit-identical. Measured 2026-12-07 on 2 cores under load (two runs; threads against the main thread):
 * 256x256, 2.10 against 1.85 and 2.63 against 2.32 core-ms per image, 419 against 459 and 483 against 497
 * items/s; photos, 29.1 against 28.7 and 32.7 against 31.3 core-ms per photo, 17.6 against 18.0 and 52.4
 * against 48.1 items/s; bit-identical. Not faster in both corpora: not kept.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

import { preprocessImage } from '../src/preprocess/preprocess-image';
import type { ImageTransform } from '../src/preprocess/preprocess-image';

const INFO: ImageTransform = {
  width: 64,
  height: 64,
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
  scale: 1 / 255,
};
const AT_ONCE = 4;

if (!isMainThread) {
  parentPort!.on('message', (m: { id: number; bytes: Uint8Array }) => {
    void preprocessImage(Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength), INFO).then((t) =>
      parentPort!.postMessage({ id: m.id, tensor: t }, [t.buffer as ArrayBuffer]),
    );
  });
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

async function main(): Promise<void> {
  const dir = process.argv[2] ?? path.resolve(__dirname, '..', '..', 'bench', 'work', 'images-2048');
  const rounds = Number(process.argv[3] ?? 5);
  const threads = Number(process.argv[4] ?? 2);
  const files = (await fs.readdir(dir)).sort().map((f) => path.join(dir, f));
  const pool = Array.from({ length: threads }, () => new Worker(__filename));
  const waiting = new Map<number, (t: Float32Array) => void>();
  for (const w of pool) {
    w.on('message', (m: { id: number; tensor: Float32Array }) => waiting.get(m.id)!(m.tensor));
  }
  let seq = 0;
  const inThread = (bytes: Buffer) =>
    new Promise<Float32Array>((resolve) => {
      const id = seq++;
      waiting.set(id, resolve);
      pool[id % threads]!.postMessage({ id, bytes }, [bytes.buffer as ArrayBuffer]);
    });
  const decode = { main: (bytes: Buffer) => preprocessImage(bytes, INFO), threads: inThread };

  const run = async (how: keyof typeof decode) => {
    const tensors: Float32Array[] = [];
    const cpu = process.cpuUsage();
    const started = performance.now();
    let next = 0;
    const lane = async () => {
      for (let i = next++; i < files.length; i = next++) tensors[i] = await decode[how](await fs.readFile(files[i]!));
    };
    await Promise.all(Array.from({ length: AT_ONCE }, lane));
    const used = process.cpuUsage(cpu);
    const seconds = (performance.now() - started) / 1000;
    return { tensors, coreMs: (used.user + used.system) / 1000 / files.length, perSecond: files.length / seconds };
  };
  const first = { main: await run('main'), threads: await run('threads') }; // warm-up, and the equality check
  const identical = first.main.tensors.every((t, i) =>
    Buffer.from(t.buffer).equals(Buffer.from(first.threads.tensors[i]!.buffer)),
  );
  type Round = { coreMs: number; perSecond: number };
  const seen: Record<'main' | 'threads', Round[]> = { main: [], threads: [] };
  for (let r = 0; r < rounds; r++) for (const how of ['main', 'threads'] as const) seen[how].push(await run(how));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const how of ['main', 'threads'] as const) {
    const coreMs = median(seen[how].map((s) => s.coreMs)).toFixed(3);
    const perSecond = median(seen[how].map((s) => s.perSecond)).toFixed(1);
    console.log(`${how}: ${coreMs} core-ms per image, ${perSecond} items/s (median of ${rounds})`);
  }
  console.log(`tensors bit-identical across the thread boundary: ${identical}`);
  await Promise.all(pool.map((w) => w.terminate()));
}
