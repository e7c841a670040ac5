/**
 * summary.json from the finished shards' records: counts, wall time, items/s, execution providers,
 * per-shard timings, the model output and preprocessing, and where each output file is. Shared by the
 * file and the blob outputs.
 */
import type { BatchScoreInput, BatchSummary, PreparedBatch, ShardRecord } from '../shared/batch-types';

export interface SummaryFiles {
  predictionsFile: string;
  errorsFile: string;
  summaryFile: string;
  raw: Pick<BatchSummary, 'rawFile' | 'rawShape'>;
}

export function buildSummary(
  input: BatchScoreInput,
  prepared: PreparedBatch,
  startedAt: string,
  shards: readonly ShardRecord[],
  files: SummaryFiles,
): BatchSummary {
  const model = shards.find((s) => s.model)?.model;
  const itemsOk = shards.reduce((n, s) => n + s.itemsOk, 0);
  const itemsFailed = shards.reduce((n, s) => n + s.itemsFailed, 0);
  const wallSeconds = Math.max(0.001, (Date.now() - Date.parse(startedAt)) / 1000);
  const providers = [...new Set(shards.map((s) => s.executionProvider))];
  return {
    name: input.name,
    modelPath: input.modelPath,
    modelDigest: prepared.modelDigest,
    inputPath: input.inputPath,
    outputDir: input.outputDir,
    totalItems: prepared.totalItems,
    itemsOk,
    itemsFailed,
    shards: prepared.shardCount,
    wallSeconds: Number(wallSeconds.toFixed(3)),
    itemsPerSecond: Number(((itemsOk + itemsFailed) / wallSeconds).toFixed(1)),
    executionProvider: providers.join(', ') || 'none',
    predictionsFile: files.predictionsFile,
    errorsFile: files.errorsFile,
    ...(prepared.skippedFiles ? { skippedFiles: prepared.skippedFiles } : {}),
    ...(model ? { modelOutput: model.output, preprocess: model.preprocess } : {}),
    ...files.raw,
    summaryFile: files.summaryFile,
    shardTimings: shards.map(
      ({ shard, itemsOk: ok, itemsFailed: failed, wallMs, decodeMs, inferMs, attempts, worker }) => ({
        shard,
        itemsOk: ok,
        itemsFailed: failed,
        wallMs,
        decodeMs,
        inferMs,
        attempts,
        worker,
      }),
    ),
  };
}

/** What summary.json keeps besides the summary. */
export interface SummaryFile extends BatchSummary {
  complete: boolean;
  missingShards: number[];
}

/** The summary as the workflow returns it: without the per-shard list, nor summary.json's own fields. */
export function compactSummary(file: SummaryFile | BatchSummary): Omit<BatchSummary, 'shardTimings'> {
  const { shardTimings: _t, complete: _c, missingShards: _m, ...compact } = file as SummaryFile;
  return compact;
}
