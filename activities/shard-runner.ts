/**
 * One shard attempt, whatever holds the job's output: open the attempt in its store (fencing the earlier
 * ones, resuming where the store can), score the inputs while heartbeating and reporting the
 * checkpoints, then commit the shard's record and log it. The stores are a directory of files
 * (./file-shard.ts) and Blob Storage (./blob-shard.ts); this skeleton is what both share.
 */
import { Context, log } from '@temporalio/activity';

import type { DecodeSplitter } from '../src/batch/decode-split';
import { batchModelRecord } from '../src/batch/model-record';
import { scoreShard } from '../src/batch/shard-scorer';
import type { ShardScoringStats, ShardSinks } from '../src/batch/shard-scorer';
import type { Classifier } from '../src/scoring/classifier';
import type { ShardCheckpoint, ShardRecord, ShardResult, ShardTask } from '../src/shared/batch-types';
import { failingPermanently } from './failures';
import { shardCheckpointing } from './shard-progress';

/** Where a job's shards are read and written: the output directory's files, or the output prefix's blobs. */
export interface ShardStore {
  /** The shard's record when an attempt already finished it (a retry then returns that attempt's result). */
  doneRecord(shard: number): Promise<ShardRecord | undefined>;
  /**
   * Opens attempt `attempt` of the task's shard: fences the earlier attempts, so a lost one cannot commit,
   * and resumes from `previous` (the checkpoint an earlier attempt heartbeated) where the store can.
   */
  open(
    task: ShardTask,
    attempt: number,
    previous: ShardCheckpoint | undefined,
    signal: AbortSignal,
  ): Promise<ShardAttempt>;
}

/** One attempt's inputs and sinks, and how it ends. */
export interface ShardAttempt {
  /** The shard's input paths, in order. */
  inputs: string[];
  /** Where scoring starts: the resumed checkpoint, or an empty one. */
  from: ShardCheckpoint;
  sinks: ShardSinks;
  /** How an input is read, when not from the file system (blobs, fetched ahead). */
  readInput?: (file: string, position: number) => Promise<Buffer>;
  /** Makes the written rows durable; called once scoring has finished. */
  flush(): Promise<void>;
  /** Releases what the attempt holds, whether or not scoring finished. */
  close(): Promise<void>;
  /** Records the shard as done by this attempt, with its result and the model it was scored with. */
  commit(result: ShardResult, model: ShardRecord['model'], checkpoint: ShardCheckpoint): Promise<void>;
}

/** What scores an attempt's inputs: the ONNX pipeline (classifierScorer) or the user's script (./script-shard.ts). */
export interface ShardScorer {
  executionProvider: string;
  score(
    open: ShardAttempt,
    onCheckpoint: (checkpoint: ShardCheckpoint) => void,
    signal: AbortSignal,
  ): Promise<ShardScoringStats>;
  /** What the shard's record says it was scored with (none for a script). */
  model(stats: ShardScoringStats, open: ShardAttempt): ShardRecord['model'];
}

export interface ShardRunOptions {
  task: ShardTask;
  scorer: ShardScorer;
  workerName: string;
  /** How often the latest checkpoint is heartbeated while a batch runs. */
  everyMs: number;
}

/** The ONNX pipeline (src/batch/shard-scorer.ts) as a shard's scorer. */
export function classifierScorer(
  task: ShardTask,
  classifier: Classifier & { executionProvider: string },
  onBatch: (batch: { ok: number; failed: number; inferMs: number }) => void,
  /** The process's decode split (src/batch/decode-split.ts), shared by its shards. */
  decodeSplitter?: DecodeSplitter,
): ShardScorer {
  return {
    executionProvider: classifier.executionProvider,
    score: (open, onCheckpoint, signal) =>
      scoreShard({
        classifier,
        inputs: open.inputs,
        baseIndex: task.baseIndex,
        batchSize: task.batchSize,
        topK: task.topK,
        sinks: open.sinks,
        from: open.from,
        ...(open.readInput ? { readInput: open.readInput } : {}),
        onCheckpoint,
        onBatch,
        ...(decodeSplitter
          ? { decodeSplit: { splitter: decodeSplitter, executionProvider: classifier.executionProvider } }
          : {}),
        signal,
      }),
    model: (stats, open) => {
      // Values per output row: as seen in this attempt, else what the checkpointed raw rows hold, else one per label.
      const cp = stats.checkpoint;
      const classes =
        stats.outputClasses ??
        (open.sinks.raw && cp.itemsOk > 0 ? cp.rawBytes / 4 / cp.itemsOk : classifier.info.labels.length);
      return batchModelRecord(classifier.info, classes);
    },
  };
}

export async function runShard(store: ShardStore, opts: ShardRunOptions): Promise<ShardResult> {
  const { task, scorer } = opts;
  const ctx = Context.current();
  const attempt = ctx.info.attempt;
  const previous = ctx.info.heartbeatDetails as ShardCheckpoint | undefined;
  const open = await store.open(task, attempt, previous, ctx.cancellationSignal);
  if (open.from.itemsDone > 0) {
    log.info('Resuming shard from checkpoint', { shard: task.shard, itemsDone: open.from.itemsDone, attempt });
  }
  const started = performance.now();
  const checkpointing = shardCheckpointing(ctx, task, opts.everyMs, open.from);
  let stats;
  try {
    stats = await failingPermanently(() => scorer.score(open, checkpointing.onCheckpoint, ctx.cancellationSignal));
    await open.flush();
  } finally {
    checkpointing.stop();
    await open.close();
  }

  const result: ShardResult = {
    shard: task.shard,
    itemsOk: stats.checkpoint.itemsOk,
    itemsFailed: stats.checkpoint.itemsFailed,
    wallMs: Math.round(performance.now() - started),
    decodeMs: Math.round(stats.decodeWaitMs),
    inferMs: Math.round(stats.inferMs),
    attempts: attempt,
    executionProvider: scorer.executionProvider,
    worker: opts.workerName,
  };
  await open.commit(result, scorer.model(stats, open), stats.checkpoint);
  log.info('Shard scored', {
    shard: task.shard,
    attempt,
    ok: result.itemsOk,
    failed: result.itemsFailed,
    ms: result.wallMs,
  });
  return result;
}
