/**
 * The decode → infer → write pipeline for one shard, shared by the GPU worker's activity and the
 * benchmark's in-process baseline. By default (and in the decode split's "overlap" mode) batch k+1 is
 * already being read and decoded while batch k is in inference (sharp runs on libuv's thread pool,
 * onnxruntime on its own threads), so the accelerator does not wait on decode unless decode is the
 * bottleneck. In the split's "phases" mode (both on the CPU, ./decode-split.ts) batch k+1 decodes only after
 * batch k's inference, and the process's decodes and inferences take turns (./phase-gate.ts), each phase
 * with every core.
 *
 * Rows are appended in input order at explicit byte offsets; after each batch the caller gets a
 * checkpoint (items done, byte offsets) that is only reported once the bytes are written, so resuming
 * from it after a crash (truncating whatever came after) yields every input exactly once.
 */
import type fs from 'node:fs/promises';

import { allowedRoots } from '../allowed-roots';
import { ImageError, InvalidInputError } from '../errors';
import { preprocessImage } from '../preprocess/preprocess-image';
import type { Classifier } from '../scoring/classifier';
import type { ShardCheckpoint } from '../shared/batch-types';
import type { DecodeSplitter } from './decode-split';
import { ByteBudget, MAX_INPUT_BYTES, ReadBuffers, readLocalInput } from './local-input';

/** Where a shard's rows go when not a file: bytes at explicit offsets (a blob's staged blocks). */
export interface ByteSink {
  writeAt(buf: Buffer, position: number): Promise<void>;
}

export type ShardSink = fs.FileHandle | ByteSink;

export interface ShardSinks {
  predictions: ShardSink;
  errors: ShardSink;
  raw?: ShardSink;
}

export interface ShardScoringOptions {
  classifier: Classifier;
  /** The shard's input paths, in order. */
  inputs: string[];
  /** Global index of inputs[0] in the job (rows carry global indices). */
  baseIndex: number;
  batchSize: number;
  topK: number;
  sinks: ShardSinks;
  /** Where to resume; zeros for a fresh shard. */
  from: ShardCheckpoint;
  /** Called after each batch is written; heartbeat it. */
  onCheckpoint?: (checkpoint: ShardCheckpoint) => void;
  /** Called after each batch with what it did (for metrics). */
  onBatch?: (batch: { size: number; ok: number; failed: number; inferMs: number }) => void;
  signal?: AbortSignal;
  /** Bytes of local input one shard reads and decodes at once (default 2 × MAX_INPUT_BYTES). */
  maxBytesInFlight?: number;
  /**
   * Reads input `inputs[position]` (default: the file, checked against the allowed roots, regular files of
   * at most MAX_INPUT_BYTES only, within maxBytesInFlight). A reader may
   * fetch ahead (blob downloads); it throws an ImageError for an input that cannot be read.
   */
  readInput?: (file: string, position: number) => Promise<Buffer>;
  /**
   * The process's decode split (./decode-split.ts): decodes run within its limit and feed it their times,
   * batches their inference times. Without it, a batch decodes all at once (as many as libuv's pool runs).
   */
  decodeSplit?: { splitter: DecodeSplitter; executionProvider: string };
}

export interface ShardScoringStats {
  checkpoint: ShardCheckpoint;
  /** Time inference waited for decode (ms): near zero when decode keeps up. */
  decodeWaitMs: number;
  inferMs: number;
  /** Values per output row, as the model returned them (undefined when this attempt scored no input). */
  outputClasses?: number;
}

type Decoded = { ok: true; tensor: Float32Array } | { ok: false; reason: string; message: string };

/** Read buffers of large inputs, reused across the process's shards once their inputs are decoded. */
const READ_BUFFERS = new ReadBuffers();

/** Batches decoding ahead of the one in inference, in the overlap mode (and without a decode split). */
const DECODE_AHEAD = 2;

export const EMPTY_CHECKPOINT: ShardCheckpoint = {
  itemsDone: 0,
  itemsOk: 0,
  itemsFailed: 0,
  predictionsBytes: 0,
  errorsBytes: 0,
  rawBytes: 0,
};

export async function scoreShard(opts: ShardScoringOptions): Promise<ShardScoringStats> {
  const { classifier, inputs, batchSize, sinks } = opts;
  const info = classifier.info;
  const expectedLength = 3 * info.width * info.height;
  const cp: ShardCheckpoint = { ...opts.from };
  let decodeWaitMs = 0;
  let inferMs = 0;
  let outputClasses: number | undefined;

  const roots = allowedRoots();
  const budget = new ByteBudget(opts.maxBytesInFlight ?? 2 * MAX_INPUT_BYTES);
  const read = async (file: string, position: number) =>
    opts.readInput
      ? { bytes: await opts.readInput(file, position), release: () => undefined }
      : readLocalInput(file, { roots, budget, buffers: READ_BUFFERS });
  const decodeOne = async (file: string, position: number): Promise<Decoded> => {
    let release = () => undefined as void;
    try {
      const input = await read(file, position);
      release = input.release;
      const split = opts.decodeSplit?.splitter;
      const tensor = split
        ? await split.decodes.run(async () => {
            const started = performance.now();
            const atOnce = split.decodes.active;
            const decoded = await preprocessImage(input.bytes, info);
            split.recordDecode(performance.now() - started, Math.max(atOnce, split.decodes.active));
            return decoded;
          })
        : await preprocessImage(input.bytes, info);
      if (tensor.length !== expectedLength) {
        return {
          ok: false,
          reason: 'wrong-size',
          message: `decoded to ${tensor.length} values, want ${expectedLength}`,
        };
      }
      return { ok: true, tensor };
    } catch (err) {
      if (err instanceof ImageError) return { ok: false, reason: err.reason, message: err.message };
      if (err instanceof InvalidInputError) return { ok: false, reason: 'not-allowed', message: err.message };
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') {
        return { ok: false, reason: 'unreadable', message: `${code}: cannot read ${file}` };
      }
      throw err;
    } finally {
      release();
    }
  };
  // In phases (the splitter's `inPhases`), a batch decodes only while no batch infers, in this shard or another.
  const decodeBatch = (start: number) => {
    const all = () => Promise.all(inputs.slice(start, start + batchSize).map((file, i) => decodeOne(file, start + i)));
    const split = opts.decodeSplit?.splitter;
    const batch = split?.inPhases ? split.gate.run('decode', all) : all();
    batch.catch(() => undefined); // awaited later; don't let a failure count as unhandled meanwhile
    return batch;
  };

  // With a decode split: the batch runs at the intra-op setting the splitter gives it, and reports its own
  // run's time (while the splitter measures, runs take turns, with no decode beside them; a setting's first
  // measured batch is preceded, in the same turn, by an untimed run on its first image that warms the session
  // up); in phases it runs only while no batch decodes; once chosen, the classifier settles on the chosen setting.
  const infer = async (tensors: Float32Array[]): Promise<Float32Array[]> => {
    const split = opts.decodeSplit;
    if (!split) return classifier.infer(tensors);
    const { splitter } = split;
    const intraOpThreads = splitter.nextIntraOpThreads();
    const run = () =>
      splitter.infers.run(async () => {
        if (splitter.warmUpDue(split.executionProvider, intraOpThreads)) {
          // A failed warm-up leaves the setting cold: this batch is then its warm-up, not counted (the
          // batch's own run reports any real fault).
          const warmed = await classifier.infer(tensors.slice(0, 1), { intraOpThreads }).then(
            () => true,
            () => false,
          );
          if (warmed) splitter.recordWarmUp(intraOpThreads);
        }
        const started = performance.now();
        const out = await classifier.infer(tensors, { intraOpThreads });
        splitter.recordBatch(split.executionProvider, tensors.length, performance.now() - started, intraOpThreads);
        return out;
      });
    const outputs = await (splitter.inPhases ? splitter.gate.run('infer', run) : run());
    const chosen = split.splitter.chosen?.intraOpThreads;
    // (Once settled, this returns at once; settling on the session's own setting closes the others.)
    if (chosen !== undefined) await classifier.settleIntraOpThreads(chosen);
    return outputs;
  };

  // Batches whose decodes were started, in order. Overlap: DECODE_AHEAD of them decode while batch k infers,
  // so a shard alone (the others between shards, or done) still keeps every decode slot busy across a batch's
  // last, slowest decodes. Phases: the next batch decodes once batch k's inference is done.
  const ahead: Array<Promise<Decoded[]>> = [];
  let queued = cp.itemsDone;
  const decodeAhead = (depth: number) => {
    for (; ahead.length < depth && queued < inputs.length; queued += batchSize) ahead.push(decodeBatch(queued));
  };
  decodeAhead(1);
  for (let start = cp.itemsDone; start < inputs.length; start += batchSize) {
    opts.signal?.throwIfAborted();
    const waitStarted = performance.now();
    const decoded = await ahead.shift()!;
    decodeWaitMs += performance.now() - waitStarted;
    const inTurns = opts.decodeSplit?.splitter.inPhases ?? false;
    if (!inTurns) decodeAhead(DECODE_AHEAD);

    const tensors = decoded.filter((d): d is Extract<Decoded, { ok: true }> => d.ok).map((d) => d.tensor);
    const inferStarted = performance.now();
    const outputs = tensors.length > 0 ? await infer(tensors) : [];
    const batchInferMs = performance.now() - inferStarted;
    inferMs += batchInferMs;
    if (inTurns) decodeAhead(1);

    const predictionRows: string[] = [];
    const errorRows: string[] = [];
    const rawChunks: Buffer[] = [];
    let o = 0;
    decoded.forEach((d, i) => {
      const index = opts.baseIndex + start + i;
      const file = inputs[start + i]!;
      if (d.ok) {
        const probs = outputs[o++]!;
        outputClasses ??= probs.length;
        predictionRows.push(JSON.stringify({ index, path: file, predictions: classifier.topK(probs, opts.topK) }));
        if (sinks.raw) rawChunks.push(Buffer.from(probs.buffer, probs.byteOffset, probs.byteLength));
      } else {
        errorRows.push(JSON.stringify({ index, path: file, reason: d.reason, message: d.message }));
      }
    });

    cp.predictionsBytes += await appendRows(sinks.predictions, predictionRows, cp.predictionsBytes);
    cp.errorsBytes += await appendRows(sinks.errors, errorRows, cp.errorsBytes);
    if (sinks.raw && rawChunks.length > 0) {
      const buf = Buffer.concat(rawChunks);
      await writeAll(sinks.raw, buf, cp.rawBytes);
      cp.rawBytes += buf.length;
    }
    cp.itemsDone += decoded.length;
    cp.itemsOk += tensors.length;
    cp.itemsFailed += decoded.length - tensors.length;
    opts.onCheckpoint?.({ ...cp });
    opts.onBatch?.({
      size: decoded.length,
      ok: tensors.length,
      failed: decoded.length - tensors.length,
      inferMs: batchInferMs,
    });
  }
  return { checkpoint: cp, decodeWaitMs, inferMs, outputClasses };
}

/** Appends rows as lines at `position`; the bytes written. */
export async function appendRows(handle: ShardSink, rows: string[], position: number): Promise<number> {
  if (rows.length === 0) return 0;
  const buf = Buffer.from(rows.join('\n') + '\n');
  await writeAll(handle, buf, position);
  return buf.length;
}

async function writeAll(handle: ShardSink, buf: Buffer, position: number): Promise<void> {
  if ('writeAt' in handle) return handle.writeAt(buf, position);
  let written = 0;
  while (written < buf.length) {
    const { bytesWritten } = await handle.write(buf, written, buf.length - written, position + written);
    written += bytesWritten;
  }
}
