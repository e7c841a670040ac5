/**
 * How decode and inference share the cores. On C cores, onnxruntime by default starts C intra-op threads
 * that spin between operators, libvips gives each image C threads, and libuv runs 4 decodes at once:
 * all of them want every core at once and spend it switching. The defaults here let inference take the
 * cores while it runs and give them back as soon as it stops (no spinning), and decode several images
 * at once with one libvips thread each, which is how a pipeline keeps every core busy:
 *   - onnxruntime: one inference thread, intra-op threads C / inference threads, inter-op threads 1,
 *     `session.intra_op.allow_spinning` 0. More inference threads (single-threaded sessions, one per
 *     shard in flight) helped on camera-sized photos on 2 cores (8.9-11.0 against 8.2 items/s) and hurt
 *     on 256² JPEGs (10.7-17.3 against 19.1-20.2: two copies of the weights share the caches), so one
 *     session stays the default and --inference-threads chooses;
 *   - libvips (`sharp.concurrency`): 1 thread per image;
 *   - libuv's thread pool (UV_THREADPOOL_SIZE, where sharp decodes): max(4, C).
 * The GPU worker starts from these and, where the intra-op setting is left to it, measures inference at C,
 * C/2, … 1 intra-op threads in its first batches and keeps the best (src/batch/decode-split.ts).
 * Every one can be set (flags or INFERCTL_* variables); `describeThreading` is the line the worker logs.
 */
import os from 'node:os';

import type * as ort from 'onnxruntime-node';
import sharp from 'sharp';

export interface SessionThreading {
  /** onnxruntime intra-op threads per session (default: the cores divided among the inference threads). */
  intraOpNumThreads?: number;
  /** onnxruntime inter-op threads per session (default 1: operators run one after another). */
  interOpNumThreads?: number;
  /** Whether onnxruntime's idle intra-op threads spin (default false: they sleep and leave the cores to decode). */
  allowSpinning?: boolean;
  /** Inference threads, each with its own session (default 1). */
  inferenceThreads?: number;
}

export interface DecodeThreading {
  /** libvips threads per image (sharp.concurrency; default 1). */
  sharpConcurrency?: number;
  /** libuv's thread pool, where sharp decodes and fs reads (default max(4, cores)); only settable at startup. */
  uvThreadpoolSize?: number;
}

export type Threading = SessionThreading & DecodeThreading;

export function cores(): number {
  return os.availableParallelism();
}

/** The settings in effect once defaults are filled in. */
export function resolveThreading(t: Threading = {}): Required<Threading> {
  return {
    intraOpNumThreads: t.intraOpNumThreads ?? Math.max(1, Math.floor(cores() / (t.inferenceThreads ?? 1))),
    interOpNumThreads: t.interOpNumThreads ?? 1,
    allowSpinning: t.allowSpinning ?? false,
    inferenceThreads: t.inferenceThreads ?? 1,
    sharpConcurrency: t.sharpConcurrency ?? 1,
    uvThreadpoolSize: t.uvThreadpoolSize ?? Math.max(4, cores()),
  };
}

/** onnxruntime session options for these thread settings. */
export function sessionOptions(
  t: SessionThreading,
  graphOptimizationLevel: ort.InferenceSession.SessionOptions['graphOptimizationLevel'] = 'all',
): ort.InferenceSession.SessionOptions {
  const r = resolveThreading(t);
  return {
    graphOptimizationLevel,
    intraOpNumThreads: r.intraOpNumThreads,
    interOpNumThreads: r.interOpNumThreads,
    executionMode: 'sequential',
    extra: { 'session.intra_op.allow_spinning': r.allowSpinning ? '1' : '0' },
  };
}

/**
 * Applies the decode settings to this process: libvips' threads now, and libuv's pool size if nothing
 * has used the pool yet (call it first thing in an entry point; libuv reads the variable once, at its
 * first use, and a value already in the environment wins).
 */
export function applyDecodeThreading(t: DecodeThreading = {}): void {
  const r = resolveThreading(t);
  if (t.uvThreadpoolSize !== undefined || process.env.UV_THREADPOOL_SIZE === undefined) {
    process.env.UV_THREADPOOL_SIZE = String(r.uvThreadpoolSize);
  }
  sharp.concurrency(r.sharpConcurrency);
}

/** libuv's thread pool size in this process (where sharp decodes): UV_THREADPOOL_SIZE, else libuv's 4. */
export function uvThreadpoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? n : 4;
}

/** What runs where, for startup logs and benchmark reports. */
export function threadingReport(t: SessionThreading = {}): Record<string, number | boolean | string> {
  const r = resolveThreading(t);
  return {
    cores: cores(),
    inferenceThreads: r.inferenceThreads,
    intraOpNumThreads: r.intraOpNumThreads,
    interOpNumThreads: r.interOpNumThreads,
    allowSpinning: r.allowSpinning,
    sharpConcurrency: sharp.concurrency(),
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (libuv default)',
  };
}

export function describeThreading(t: SessionThreading = {}): string {
  const r = threadingReport(t);
  return (
    `Threads: ${r.cores} cores; ${r.inferenceThreads} inference thread(s), onnxruntime intra-op ${r.intraOpNumThreads}, ` +
    `inter-op ${r.interOpNumThreads}, spinning ${r.allowSpinning ? 'on' : 'off'}; libvips ${r.sharpConcurrency} per image; ` +
    `libuv pool ${r.uvThreadpoolSize}`
  );
}
