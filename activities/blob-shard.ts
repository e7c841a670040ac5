/**
 * A job's shards on Blob Storage (the shard runner's blob store, ./shard-runner.ts; the blobs are
 * src/storage/blob-output.ts's). An attempt downloads its inputs ahead of decode (bounded), stages its rows
 * as blocks of its own blobs (`shards/shard-N/attempt-K/…`) and commits each once at the end, then
 * done.json. A retry is a new attempt with blobs of its own: it starts the shard again (staged blocks are
 * not readable, so there is nothing durable to resume from), and whatever a lost attempt still writes
 * stays in that attempt's blobs, which the merge never reads unless the workflow accepted that attempt's
 * result.
 */
import type { BlobBatchOutput } from '../src/storage/blob-output';
import { InputPrefetcher } from '../src/storage/blob-reader';
import { EMPTY_CHECKPOINT } from '../src/batch/shard-scorer';
import { failingPermanently } from './failures';
import type { ShardStore } from './shard-runner';

export function blobShardStore(output: BlobBatchOutput): ShardStore {
  return {
    doneRecord: (shard) => failingPermanently(() => output.anyDoneRecord(shard)),

    async open(task, attempt, _previous, signal) {
      const inputs = await failingPermanently(() => output.readShardManifest(task.shard));
      const blobs = output.openAttempt(task.shard, attempt, task.rawOutputs);
      const reader = new InputPrefetcher(inputs, { ahead: Math.max(32, 2 * task.batchSize), concurrency: 16, signal });
      return {
        inputs,
        from: EMPTY_CHECKPOINT,
        sinks: blobs.sinks,
        readInput: (file, position) => reader.read(file, position),
        flush: () => Promise.resolve(),
        close: () => Promise.resolve(),
        commit: async (result, model, checkpoint) => {
          await failingPermanently(() => blobs.finish({ ...result, attempt, model }, checkpoint));
        },
      };
    },
  };
}
