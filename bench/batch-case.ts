/**
 * One in-process case of the batch benchmark, run in its own process so its peak RSS is its own:
 *   node dist/bench/batch-case.js --case bare|decode|floor|pipeline --model M --images DIR --batch-size B --shard-size S
 *        --concurrency C --out DIR [--decode exact|fast|draft]
 * Prints one JSON line: { items, seconds, itemsPerSecond, peakRssMb, executionProvider }.
 *
 * bare:     onnxruntime-node inference on tensors decoded beforehand (the ceiling); also reports
 *           inferMsPerImage (I: wall ms per image with the default C intra-op threads) and inferCoreMsPerImage
 *           (the process's CPU ms per image meanwhile: what inference costs the cores).
 * decode:   read + decode + preprocess each image, one at a time on one libvips thread; reports
 *           decodeCoreMsPerImage (D: CPU ms per image, user + system, from process.cpuUsage).
 * floor:    the same preprocessing, one at a time, on JPEGs already at the model's input size (made in memory
 *           from the first 256 images, q90, before timing): what a decode call costs with next to no pixels
 *           to decode or resize (sharp's and libvips' fixed cost per image); reports floorCoreMsPerImage.
 * pipeline: the decode → infer → write shard pipeline inferctl's GPU worker runs, without Temporal,
 *           over the same shards with the same concurrency and the same thread settings.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { listInputs } from '../src/batch/input-listing';
import { EMPTY_CHECKPOINT, scoreShard } from '../src/batch/shard-scorer';
import { preprocessImage } from '../src/preprocess/preprocess-image';
import { Classifier } from '../src/scoring/classifier';
import { applyDecodeThreading, threadingReport } from '../src/scoring/thread-tuning';
import type { DecodeMode } from '../src/shared/preprocess-types';

async function main(): Promise<void> {
  applyDecodeThreading(); // first, before anything uses libuv's pool: as the GPU worker starts
  const extra: Record<string, unknown> = {};
  const { values } = parseArgs({
    options: {
      case: { type: 'string' },
      model: { type: 'string' },
      images: { type: 'string' },
      'batch-size': { type: 'string', default: '16' },
      'shard-size': { type: 'string', default: '64' },
      concurrency: { type: 'string', default: '2' },
      out: { type: 'string' },
      'inference-threads': { type: 'string' },
      'intra-op-threads': { type: 'string' },
      decode: { type: 'string' },
    },
  });
  const threads = {
    ...(values['inference-threads'] ? { inferenceThreads: Number(values['inference-threads']) } : {}),
    ...(values['intra-op-threads'] ? { intraOpNumThreads: Number(values['intra-op-threads']) } : {}),
  };
  const batchSize = Number(values['batch-size']);
  // --decode: how JPEGs decode (the spec's `decode` over the model's own spec, as `inferctl score --decode`).
  const decode = values.decode as DecodeMode | undefined;
  const classifier = await Classifier.load(values.model!, {
    ...threads,
    ...(decode ? { overrides: { preprocess: { decode } } } : {}),
  });
  const files: string[] = [];
  for await (const f of listInputs(values.images!)) files.push(f);

  let seconds: number;
  let timed = files.length; // the images timed (floor: its first 256)
  if (values.case === 'bare') {
    const tensors = await Promise.all(files.map(async (f) => preprocessImage(await fs.readFile(f), classifier.info)));
    await classifier.infer(tensors.slice(0, 1)); // warm-up, as the other cases' first batch is not timed apart
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < tensors.length; i += batchSize) await classifier.infer(tensors.slice(i, i + batchSize));
    seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    extra.inferMsPerImage = (seconds * 1000) / files.length;
    extra.inferCoreMsPerImage = (used.user + used.system) / 1000 / files.length;
  } else if (values.case === 'decode') {
    sharp.concurrency(1);
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (const f of files) await preprocessImage(await fs.readFile(f), classifier.info);
    seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    extra.decodeCoreMsPerImage = (used.user + used.system) / 1000 / files.length;
  } else if (values.case === 'floor') {
    sharp.concurrency(1);
    const { width, height } = classifier.info;
    const small: Buffer[] = [];
    for (const f of files.slice(0, 256)) {
      small.push(
        await sharp(await fs.readFile(f))
          .resize(width, height, { fit: 'fill' })
          .jpeg({ quality: 90 })
          .toBuffer(),
      );
    }
    for (const b of small.slice(0, 8)) await preprocessImage(b, classifier.info); // warm-up
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (const b of small) await preprocessImage(b, classifier.info);
    seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    extra.floorCoreMsPerImage = (used.user + used.system) / 1000 / small.length;
    timed = small.length;
  } else if (values.case === 'pipeline') {
    const shardSize = Number(values['shard-size']);
    const concurrency = Number(values.concurrency);
    await classifier.infer([new Float32Array(3 * classifier.info.width * classifier.info.height)]);
    const out = values.out!;
    await fs.mkdir(out, { recursive: true });
    const shards = Array.from({ length: Math.ceil(files.length / shardSize) }, (_, i) => i);
    const started = performance.now();
    const workers = Array.from({ length: concurrency }, async () => {
      for (let shard = shards.shift(); shard !== undefined; shard = shards.shift()) {
        const open = (name: string) => fs.open(path.join(out, `shard-${shard}.${name}`), 'w');
        const sinks = { predictions: await open('jsonl'), errors: await open('errors.jsonl') };
        try {
          await scoreShard({
            classifier,
            inputs: files.slice(shard * shardSize, (shard + 1) * shardSize),
            baseIndex: shard * shardSize,
            batchSize,
            topK: 5,
            sinks,
            from: EMPTY_CHECKPOINT,
          });
        } finally {
          await Promise.all([sinks.predictions.close(), sinks.errors.close()]);
        }
      }
    });
    await Promise.all(workers);
    seconds = (performance.now() - started) / 1000;
  } else {
    throw new Error(`--case must be bare, decode, floor or pipeline (got ${values.case})`);
  }
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(
    JSON.stringify({
      items: timed,
      seconds,
      itemsPerSecond: timed / seconds,
      peakRssMb,
      executionProvider: classifier.executionProvider,
      decode: classifier.info.decode,
      threading: threadingReport(threads),
      ...extra,
    }) + '\n',
  );
  await classifier.release();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
