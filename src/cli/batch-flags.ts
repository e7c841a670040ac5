/** The batch job flags `inferctl score` and `inferctl schedule create` share. */
import type { Command } from 'commander';

import { GPU_TASK_QUEUE } from '../shared/batch-types';
import { CliError } from './cli-error';
import type { BatchJobFlags } from './commands/score';
import { int, threshold } from './flag-parsers';

export function addBatchJobOptions(cmd: Command, outputHelp: string): Command {
  return cmd
    .option('-m, --model <path>', 'ONNX image classifier')
    .option('-i, --input <dir|manifest>', 'directory of images (recursive) or a .jsonl/.csv/.txt manifest of paths')
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
    .option('--raw-outputs', 'also write every raw float32 output vector (raw.f32)')
    .option('--gpu', 'require the CUDA execution provider: fail rather than score on CPU')
    .option('--gpu-queue <queue>', 'task queue of the GPU workers', GPU_TASK_QUEUE);
}

export function batchJobFlags(o: Record<string, unknown>, command: string): BatchJobFlags {
  const missing = ['model', 'input', 'output'].filter((k) => !o[k]).map((k) => `--${k}`);
  if (missing.length > 0)
    throw new CliError(`${command} needs ${missing.join(', ')} (see inferctl ${command} --help)`, 2);
  return {
    modelPath: o.model as string,
    inputPath: o.input as string,
    outputDir: o.output as string,
    shardSize: o.shardSize as number,
    batchSize: o.batchSize as number,
    concurrency: o.concurrency as number,
    errorThreshold: o.errorThreshold as number,
    topK: o.topK as number,
    rawOutputs: Boolean(o.rawOutputs),
    requireCuda: Boolean(o.gpu),
    gpuTaskQueue: o.gpuQueue as string,
  };
}
