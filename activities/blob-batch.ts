/**
 * The batch activities' steps when the job's output is a blob prefix (src/storage/blob-output.ts): the
 * same contract as on files. Listing is idempotent per job token; a new job on the same prefix (a
 * re-run of a scheduled slot) first removes the previous job's blobs. The summary composes the final
 * files server-side from the attempt of each shard the workflow accepted, then writes summary.json and
 * removes the shard blobs (unless keepShards).
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';

import { buildSummary, compactSummary } from '../src/batch/batch-summary';
import type { SummaryFile } from '../src/batch/batch-summary';
import { BlobBatchOutput, MAX_BLOB_SHARDS } from '../src/storage/blob-output';
import type { BlobShardRecord } from '../src/storage/blob-output';
import { writeShardManifests } from '../src/batch/input-listing';
import type { JobFile } from '../src/batch/output-layout';
import type { BatchScoreInput, BatchSummary, PreparedBatch } from '../src/shared/batch-types';
import { FailureType } from '../src/shared/failure-types';
import { failingPermanently } from './failures';

export async function prepareBlobBatch(
  input: BatchScoreInput,
  jobToken: string,
  modelDigest: string,
): Promise<PreparedBatch> {
  const out = new BlobBatchOutput(input.outputDir);
  const ctx = Context.current();
  return failingPermanently(async () => {
    await out.checkWritable();
    const existing = await out.readJson<JobFile>('manifest', 'job.json');
    if (existing && existing.jobToken === jobToken) {
      const { jobToken: _t, ...prepared } = existing;
      return prepared;
    }
    await out.removeJobOutputs();
    ctx.heartbeat({ listed: 0 });
    const { totalItems, shardCount, skippedFiles } = await writeShardManifests(
      input.inputPath,
      out.manifestSink(),
      input.shardSize,
      (items) => ctx.heartbeat({ listed: items }),
      input.outputDir, // an output prefix inside the input is not input
      { allFiles: input.allFiles || input.script !== undefined }, // a script reads any kind of file
    );
    if (shardCount > MAX_BLOB_SHARDS) {
      throw ApplicationFailure.nonRetryable(
        `${totalItems} inputs make ${shardCount} shards, more than the ${MAX_BLOB_SHARDS} a blob output can compose ` +
          `into one predictions.jsonl. Run the job with --shard-size ${Math.ceil(totalItems / MAX_BLOB_SHARDS)} or more.`,
        FailureType.InvalidBatchJob,
      );
    }
    const prepared: PreparedBatch = {
      totalItems,
      shardCount,
      manifestDir: out.manifestDir,
      modelDigest,
      ...(skippedFiles > 0 ? { skippedFiles } : {}),
    };
    await out.writeJson({ ...prepared, jobToken } satisfies JobFile, 'manifest', 'job.json');
    log.info('Inputs listed', { totalItems, shardCount, output: input.outputDir });
    return prepared;
  });
}

export async function summariseBlobBatch(
  input: BatchScoreInput,
  prepared: PreparedBatch,
  startedAt: string,
  shardOwners: Record<string, number>,
): Promise<Omit<BatchSummary, 'shardTimings'>> {
  const out = new BlobBatchOutput(input.outputDir);
  const ctx = Context.current();
  return failingPermanently(async () => {
    // A retry after the merge: summary.json is written only once the final blobs are committed.
    const previous = await out.readJson<SummaryFile>('summary.json');
    if (
      previous?.complete &&
      previous.totalItems === prepared.totalItems &&
      previous.modelDigest === prepared.modelDigest &&
      previous.outputDir === input.outputDir
    ) {
      if (!input.keepShards) await removeShardBlobs(out);
      return compactSummary(previous);
    }
    const shards: BlobShardRecord[] = [];
    const missing: number[] = [];
    for (let shard = 0; shard < prepared.shardCount; shard++) {
      // The attempt whose result the workflow accepted (1 unless it said otherwise): never a stale one's.
      const record = await out.doneRecord(shard, shardOwners[String(shard)] ?? 1);
      if (record) shards.push(record);
      else missing.push(shard);
      if (shard % 100 === 0) ctx.heartbeat({ read: shard });
    }
    const heartbeat = () => ctx.heartbeat();
    await out.compose('predictions.jsonl', shards, 'predictions', { onShard: heartbeat });
    await out.compose('errors.jsonl', shards, 'errors', { onShard: heartbeat });
    const model = shards.find((s) => s.model)?.model;
    let raw: Pick<BatchSummary, 'rawFile' | 'rawShape'> = {};
    if (input.rawOutputs && model) {
      raw = { rawFile: out.rawFile, rawShape: await out.composeRaw(shards, model.output.classes, heartbeat) };
    }
    const summary = buildSummary(input, prepared, startedAt, shards, {
      predictionsFile: out.predictionsFile,
      errorsFile: out.errorsFile,
      summaryFile: out.summaryFile,
      raw,
    });
    const complete = missing.length === 0;
    await out.writeJson({ ...summary, complete, missingShards: missing } satisfies SummaryFile, 'summary.json');
    if (complete && !input.keepShards) await removeShardBlobs(out);
    log.info('Batch outputs composed', { shards: shards.length, missing: missing.length });
    return compactSummary(summary);
  });
}

async function removeShardBlobs(out: BlobBatchOutput): Promise<void> {
  await out.removeTree('shards');
  await out.removeTree('manifest');
}
