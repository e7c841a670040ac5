/** The batch job flags `inferctl score` and `inferctl schedule create` share. */
import type { Command } from '@commander-js/extra-typings';

import path from 'node:path';

import { BlobLocationError, isBlobLocation, normaliseBlobLocation } from '../storage/blob-location';
import { GPU_TASK_QUEUE } from '../shared/batch-types';
import { addPriceTableOption, amount } from './budget-flags';
import { CliError } from './cli-error';
import { duration, int, threshold } from './flag-parsers';
import { PREPROCESS_HELP, decodeOption, givenPreprocess } from './preprocess-flag';
import type { PreprocessConfig } from '../shared/preprocess-types';
import type { BatchScriptSpec, OutputAction } from '../shared/batch-types';

const OUTPUT_ACTIONS: readonly OutputAction[] = ['jsonl', 'append_row'];

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
  /** --entry-script and its flags, paths as typed (made absolute with the other paths). */
  script?: BatchScriptSpec;
  /** --price-table, as typed (read with the other flags into the job's cost input). */
  priceTable?: string;
  /** --budget, in the price table's currency. */
  budget?: number;
}

/** Adds the batch job options to a freshly made command (its arguments, whatever they are, are kept). */
export function addBatchJobOptions<Args extends unknown[]>(cmd: Command<Args>, outputHelp: string) {
  return addPriceTableOption(cmd)
    .option(
      '--budget <amount>',
      "stop the job between shards once it has cost this much (the price table's currency; a warning at 80 %)",
      amount('--budget'),
    )
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
    )
    .option(
      '--entry-script <batch_score.py>',
      "score with your own script instead (Azure ML's batch contract: init(), run(mini_batch) with a list of file paths)",
    )
    .option('--source-dir <dir>', 'with --entry-script: the folder it runs from (default: the script’s folder)')
    .option(
      '--environment <requirements.txt|conda.yml>',
      'with --entry-script: the Python environment to build on each worker (once per content)',
    )
    .option('--mini-batch-size <n>', 'with --entry-script: file paths per run() call', int('--mini-batch-size', 1))
    .option(
      '--mini-batch-timeout <duration>',
      'with --entry-script: stop a run() that takes longer (e.g. 60s, 5m); its inputs fail as timeout',
      duration('--mini-batch-timeout'),
    )
    .option(
      '--output-action <jsonl|append_row>',
      'with --entry-script: predictions.jsonl rows {index, path, result} (jsonl), or Azure ML’s predictions.csv lines (append_row)',
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
    ...(o.priceTable ? { priceTable: o.priceTable } : {}),
    ...(o.budget !== undefined ? { budget: o.budget } : {}),
    ...(o.entryScript ? { script: scriptFlags(o, o.entryScript) } : scriptOnlyFlagsRefused(o)),
  };
}

/** --entry-script's settings: paths absolute (here, where they were typed), defaults filled in. */
function scriptFlags(o: BatchJobOptionValues, entryScript: string): BatchScriptSpec {
  const action = o.outputAction ?? 'jsonl';
  if (!OUTPUT_ACTIONS.includes(action as OutputAction)) {
    throw new CliError(`--output-action must be ${OUTPUT_ACTIONS.join(' or ')} (got ${action}).`, 2);
  }
  const refused = [o.rawOutputs && '--raw-outputs', o.preprocess && '--preprocess', o.labels && '--labels'];
  const onnxOnly = refused.filter((f): f is string => typeof f === 'string');
  if (onnxOnly.length > 0) {
    throw new CliError(`${onnxOnly.join(', ')} are for ONNX models; a scoring script reads its inputs itself.`, 2);
  }
  return {
    entryScript: path.resolve(entryScript),
    ...(o.sourceDir ? { sourceDir: path.resolve(o.sourceDir) } : {}),
    ...(o.environment ? { environmentFile: path.resolve(o.environment) } : {}),
    miniBatchSize: o.miniBatchSize ?? 10,
    miniBatchTimeoutSeconds: o.miniBatchTimeout ?? 60,
    outputAction: action as OutputAction,
  };
}

/** The script flags without --entry-script: a usage error naming them. */
function scriptOnlyFlagsRefused(o: BatchJobOptionValues): object {
  const given: Array<[string, unknown]> = [
    ['--source-dir', o.sourceDir],
    ['--environment', o.environment],
    ['--mini-batch-size', o.miniBatchSize],
    ['--mini-batch-timeout', o.miniBatchTimeout],
    ['--output-action', o.outputAction],
  ];
  const stray = given.filter(([, v]) => v !== undefined).map(([flag]) => flag);
  if (stray.length > 0) throw new CliError(`${stray.join(', ')} go with --entry-script.`, 2);
  return {};
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
