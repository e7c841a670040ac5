/** The batch job flags `inferctl score` and `inferctl schedule create` share. */
import type { Command } from '@commander-js/extra-typings';

import path from 'node:path';

import { BlobLocationError, isBlobLocation, normaliseBlobLocation } from '../storage/blob-location';
import { GPU_TASK_QUEUE } from '../shared/batch-types';
import { CliError } from './cli-error';
import { int, threshold } from './flag-parsers';
import { PREPROCESS_HELP, decodeOption, givenPreprocess } from './preprocess-flag';
import type { PreprocessConfig } from '../shared/preprocess-types';

/** The job settings `score` and `schedule create` share. */
export interface BatchJobFlags {
  modelPath: string;
  inputPath: string;
  outputDir: string;
  name?: string;
  shardSize: number;
  batchSize: number;
  concurrency: number;
  errorThreshold: number;
  topK: number;
  rawOutputs: boolean;
  requireCuda: boolean;
  gpuTaskQueue?: string;
  /** --preprocess, read and checked (a preset becomes `{ preset }`). */
  preprocess?: PreprocessConfig;
  /** --labels, as typed (made absolute with the other paths). */
  labelsPath?: string;
  /** --all-files: score every file of an input folder, not only image names. */
  allFiles?: boolean;
}

/** Adds the batch job options to a freshly made command (its arguments, whatever they are, are kept). */
export function addBatchJobOptions<Args extends unknown[]>(cmd: Command<Args>, outputHelp: string) {
  return cmd
    .option('-m, --model <path|az://…>', 'ONNX image classifier (a file, or a blob)')
    .option(
      '-i, --input <dir|manifest|az://…>',
      'directory of images (recursive), a .jsonl/.csv/.txt manifest of paths, or a blob prefix az://<account>/<container>/<prefix>',
    )
    .option('-o, --output <dir>', outputHelp)
    .option('--shard-size <n>', 'inputs per shard (one activity)', int('--shard-size', 1), 1000)
    .option('--batch-size <n>', 'images per inference call', int('--batch-size', 1), 32)
    .option('--concurrency <n>', 'shards in flight across all GPU workers', int('--concurrency', 1), 4)
    .option(
      '--error-threshold <t>',
      'failed inputs tolerated: -1 ignore, a fraction like 0.05, or a count',
      threshold,
      -1,
    )
    .option('--top-k <n>', 'labels per input', int('--top-k', 1), 5)
    .option('--preprocess <preset|file.json>', PREPROCESS_HELP)
    .addOption(decodeOption())
    .option('--labels <file>', "labels, one per line in output order (over the model's own)")
    .option(
      '--raw-outputs',
      "also write raw.npy: every scored input's output row (NumPy float32 [rows, classes], in predictions.jsonl order)",
    )
    .option('--gpu', 'require the CUDA execution provider: fail rather than score on CPU')
    .option('--gpu-queue <queue>', 'task queue of the GPU workers', GPU_TASK_QUEUE)
    .option(
      '--all-files',
      'score every file of an input folder or prefix (default: files whose names are not images are skipped and counted)',
    );
}

/** The option values `addBatchJobOptions` adds, as commander parses them. */
export type BatchJobOptionValues = ReturnType<ReturnType<typeof addBatchJobOptions>['opts']>;

/** The job settings from the parsed flags; a usage error (exit 2) naming every required flag that is missing. */
export function batchJobFlags(o: BatchJobOptionValues, command: string): BatchJobFlags {
  const { model, input, output } = o;
  const preprocess = givenPreprocess(o.preprocess, o.decode);
  if (!model || !input || !output) {
    const given: Array<[string, string | undefined]> = [
      ['--model', model],
      ['--input', input],
      ['--output', output],
    ];
    const missing = given.filter(([, value]) => !value).map(([flag]) => flag);
    throw new CliError(`${command} needs ${missing.join(', ')} (see inferctl ${command} --help)`, 2);
  }
  return {
    modelPath: model,
    inputPath: input,
    outputDir: output,
    shardSize: o.shardSize,
    batchSize: o.batchSize,
    concurrency: o.concurrency,
    errorThreshold: o.errorThreshold,
    topK: o.topK,
    rawOutputs: Boolean(o.rawOutputs),
    requireCuda: Boolean(o.gpu),
    gpuTaskQueue: o.gpuQueue,
    ...(preprocess ? { preprocess } : {}),
    ...(o.labels ? { labelsPath: o.labels } : {}),
    ...(o.allFiles ? { allFiles: true } : {}),
  };
}

/**
 * A location as the user typed it, ready for the workflow: a file path made absolute (here, where it was
 * typed), a blob location checked and written canonically; a bad blob URL is a usage error (exit 2).
 * `{…}` template fields survive both.
 */
export function jobLocation(given: string): string {
  if (!isBlobLocation(given)) return path.resolve(given);
  try {
    return normaliseBlobLocation(given);
  } catch (err) {
    if (err instanceof BlobLocationError) throw new CliError(err.message, 2);
    throw err;
  }
}
