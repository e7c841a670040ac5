/**
 * `inferctl model inspect <model.onnx>`: what inferctl reads from a model before anything is deployed:
 * its input and output, the preprocessing spec it would use (and where that came from), the labels,
 * and, with `--sample`, the top-k answer for an image, computed here with the same code a replica runs.
 * Needs no Temporal server.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import type { Command } from '@commander-js/extra-typings';

import { readModelInfo, readOverrides } from '../../model/model-info';
import type { ModelInfo } from '../../model/model-info';
import { Classifier } from '../../scoring/classifier';
import type { Prediction } from '../../scoring/classifier';
import type { PreprocessConfig } from '../../shared/preprocess-types';
import { CliError } from '../cli-error';
import { int } from '../flag-parsers';
import { createOutput } from '../output';
import type { Output } from '../output';
import { PREPROCESS_HELP, preprocessFlag } from '../preprocess-flag';

export function addModelCommands(program: Command): void {
  const model = program.command('model').description('Look at a model the way inferctl will serve it');
  model
    .command('inspect <model>')
    .description(
      'Print the model’s input and output, the preprocessing spec inferctl would use and where it came from, ' +
        'the labels, and with --sample the top-k answer for an image (no Temporal server needed)',
    )
    .option('--preprocess <preset|file.json>', PREPROCESS_HELP)
    .option('--labels <file>', "labels, one per line in output order (over the model's own)")
    .option('--sample <image>', 'JPEG/PNG/WebP to classify with the spec')
    .option('--top-k <n>', 'labels in the answer', int('--top-k', 1), 5)
    .option('--json', 'print one JSON document')
    .action(async (modelPath, o) => {
      await modelInspectCommand(
        { out: createOutput(Boolean(o.json)) },
        {
          modelPath,
          preprocess: o.preprocess ? preprocessFlag(o.preprocess) : undefined,
          labelsPath: o.labels ? path.resolve(o.labels) : undefined,
          samplePath: o.sample,
          topK: o.topK,
        },
      );
    });
}

export interface ModelInspectOptions {
  modelPath: string;
  preprocess?: PreprocessConfig;
  labelsPath?: string;
  samplePath?: string;
  topK: number;
}

export interface ModelInspectResult {
  model: Omit<ModelInfo, 'labels'> & { labelCount: number; firstLabels: string[] };
  sample?: { path: string; predictions: Prediction[] };
}

export async function modelInspectCommand(
  ctx: { out: Output },
  opts: ModelInspectOptions,
): Promise<ModelInspectResult> {
  const modelPath = path.resolve(opts.modelPath);
  const overrides = await readOverrides({ preprocess: opts.preprocess, labelsPath: opts.labelsPath });
  const info = await readModelInfo(modelPath, overrides);
  const { labels, ...rest } = info;
  const result: ModelInspectResult = {
    model: { ...rest, labelCount: labels.length, firstLabels: labels.slice(0, 10) },
  };
  if (opts.samplePath) {
    const samplePath = path.resolve(opts.samplePath);
    const image = await fs.readFile(samplePath).catch(() => {
      throw new CliError(`Sample image not found: ${samplePath}. Pass an existing JPEG, PNG or WebP with --sample.`, 2);
    });
    const classifier = await Classifier.load(modelPath, { overrides });
    try {
      const [answer] = await classifier.classify([image], opts.topK);
      if (!answer?.ok) throw new CliError(`The sample could not be scored: ${answer?.message ?? 'no answer'}`, 2);
      result.sample = { path: samplePath, predictions: answer.predictions };
    } finally {
      await classifier.release();
    }
  }
  for (const line of describe(result)) ctx.out.line(line);
  ctx.out.result(result);
  return result;
}

function describe({ model: m, sample }: ModelInspectResult): string[] {
  const size = `${m.width}×${m.height}`;
  const lines = [
    `Model ${m.path} (${m.digest.slice(0, 19)}…)`,
    `  input   ${m.inputName}: ${m.inputType}, ${m.layout}, ${size}, batch ${m.dynamicBatch ? 'dynamic' : 'fixed at 1 (served without batching)'}`,
    `  output  ${m.outputName}: ${m.outputType}, ${m.labelCount} classes, scores as ${m.output}`,
    `  labels  ${m.firstLabels.join(', ')}${m.labelCount > m.firstLabels.length ? ', …' : ''}`,
    `Preprocessing (from ${m.preprocessSource}):`,
    `  resize  ${m.resize ? ('shorterSide' in m.resize ? `shorter side to ${m.resize.shorterSide}` : `stretch to ${m.resize.width}×${m.resize.height}`) : 'none'}` +
      `${m.crop ? `, centre crop ${m.crop.width}×${m.crop.height}` : ''} (${m.interpolation}), orientation ${m.orientation}`,
    `  pixels  ${m.channelOrder}, (pixel × ${m.scale} − [${m.mean.join(', ')}]) / [${m.std.join(', ')}]`,
  ];
  if (sample) {
    lines.push(`Sample ${sample.path}:`);
    for (const p of sample.predictions) lines.push(`  ${p.label.padEnd(24)} ${p.score.toFixed(4)}`);
  }
  return lines;
}
