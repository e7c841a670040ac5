/**
 * One shard attempt when the job's output is on Blob Storage (src/batch/blob-output.ts). The attempt
 * downloads its inputs ahead of decode (bounded), stages its rows as blocks of its own blobs
 * (`shards/shard-N/attempt-K/…`) and commits each once at the end, then done.json. A retry is a new
 * attempt with blobs of its own: it starts the shard again (staged blocks are not readable, so there
 * is nothing durable to resume from), and whatever a lost attempt still writes stays in that attempt's
 * blobs, which the merge never reads unless the workflow accepted that attempt's result.
 */
import { Context, log } from '@temporalio/activity';

import { InputPrefetcher } from '../src/storage/blob-reader';
import type { BlobBatchOutput } from '../src/storage/blob-output';
import { batchModelRecord } from '../src/batch/model-record';
import { EMPTY_CHECKPOINT, scoreShard } from '../src/batch/shard-scorer';
import type { Classifier } from '../src/scoring/classifier';
import type { ShardResult, ShardTask } from '../src/shared/batch-types';
import { failingPermanently } from './failures';
import { shardCheckpointing } from './shard-progress';

export interface BlobShardOptions {
  task: ShardTask;
  output: BlobBatchOutput;
  classifier: Classifier & { executionProvider: string };
  workerName: string;
  everyMs: number;
  onBatch: (batch: { ok: number; failed: number; inferMs: number }) => void;
}

export async function scoreBlobShard(opts: BlobShardOptions): Promise<ShardResult> {
  const { task, output, classifier } = opts;
  const ctx = Context.current();
  const attempt = ctx.info.attempt;
  const inputs = await failingPermanently(() => output.readShardManifest(task.shard));
  const blobs = output.openAttempt(task.shard, attempt, task.rawOutputs);
  const reader = new InputPrefetcher(inputs, {
    ahead: Math.max(32, 2 * task.batchSize),
    concurrency: 16,
    signal: ctx.cancellationSignal,
  });
  const checkpointing = shardCheckpointing(ctx, task, opts.everyMs, EMPTY_CHECKPOINT);
  const started = performance.now();
  let stats;
  try {
    stats = await failingPermanently(() =>
      scoreShard({
        classifier,
        inputs,
        baseIndex: task.baseIndex,
        batchSize: task.batchSize,
        topK: task.topK,
        sinks: blobs.sinks,
        from: EMPTY_CHECKPOINT,
        readInput: (file, position) => reader.read(file, position),
        onCheckpoint: checkpointing.onCheckpoint,
        onBatch: opts.onBatch,
        signal: ctx.cancellationSignal,
      }),
    );
  } finally {
    checkpointing.stop();
  }
  const result: ShardResult = {
    shard: task.shard,
    itemsOk: stats.checkpoint.itemsOk,
    itemsFailed: stats.checkpoint.itemsFailed,
    wallMs: Math.round(performance.now() - started),
    decodeMs: Math.round(stats.decodeWaitMs),
    inferMs: Math.round(stats.inferMs),
    attempts: attempt,
    executionProvider: classifier.executionProvider,
    worker: opts.workerName,
  };
  const classes = stats.outputClasses ?? classifier.info.labels.length;
  await failingPermanently(() =>
    blobs.finish({ ...result, attempt, model: batchModelRecord(classifier.info, classes) }, stats.checkpoint),
  );
  log.info('Shard scored', { shard: task.shard, attempt, ok: result.itemsOk, failed: result.itemsFailed });
  return result;
}
