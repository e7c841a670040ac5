/**
 * `inferctl model inspect <model.onnx>`: what inferctl reads from a model before anything is deployed:
 * its input and output, the preprocessing spec it would use (and where that came from), the labels,
 * and, with `--sample`, the top-k answer for an image, computed here with the same code a replica runs.
 * Needs no Temporal server.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import type { Command } from '@commander-js/extra-typings';

import { ModelError } from '../../errors';
import { describeLabelsSource, describePreprocessSource, readModelInfo, readOverrides } from '../../model/model-info';
import type { ModelInfo } from '../../model/model-info';
import { readModelSignature } from '../../model/model-signature';
import type { ModelSignature } from '../../model/model-signature';
import { FailureType } from '../../shared/failure-types';
import { Classifier } from '../../scoring/classifier';
import type { Prediction } from '../../scoring/classifier';
import type { DecodeMode, PreprocessConfig } from '../../shared/preprocess-types';
import { CliError } from '../cli-error';
import { int } from '../flag-parsers';
import { createOutput } from '../output';
import type { Output } from '../output';
import { PREPROCESS_HELP, decodeOption, givenPreprocess } from '../preprocess-flag';

export function addModelCommands(program: Command): void {
  const model = program.command('model').description('Look at a model the way inferctl will serve it');
  model
    .command('inspect <model>')
    .description(
      'Print the model’s input and output, the preprocessing spec inferctl would use and where it came from, ' +
        'the labels, and with --sample the top-k answer for an image (no Temporal server needed)',
    )
    .option('--preprocess <preset|file.json>', PREPROCESS_HELP)
    .addOption(decodeOption())
    .option('--labels <file>', "labels, one per line in output order (over the model's own)")
    .option('--sample <image>', 'JPEG/PNG/WebP to classify with the spec')
    .option('--top-k <n>', 'labels in the answer', int('--top-k', 1), 5)
    .option('--json', 'print one JSON document')
    .action(async (modelPath, o) => {
      await modelInspectCommand(
        { out: createOutput(Boolean(o.json)) },
        {
          modelPath,
          preprocess: givenPreprocess(o.preprocess, o.decode),
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

/** What `inspect` prints for a model that is not an image classifier: it is served on V2 only. */
export interface V2InspectResult {
  protocol: 'v2';
  path: string;
  /** Why it is not served as an image classifier. */
  reason: string;
  signature: ModelSignature;
}

export async function modelInspectCommand(
  ctx: { out: Output },
  opts: ModelInspectOptions,
): Promise<ModelInspectResult | V2InspectResult> {
  const modelPath = path.resolve(opts.modelPath);
  const overrides = await readOverrides({ preprocess: opts.preprocess, labelsPath: opts.labelsPath });
  let info: ModelInfo;
  try {
    info = await readModelInfo(modelPath, overrides);
  } catch (err) {
    const classifierFlags = opts.preprocess || opts.labelsPath || opts.samplePath;
    if (!(err instanceof ModelError && err.type === FailureType.UnsupportedModel) || classifierFlags) throw err;
    const v2: V2InspectResult = {
      protocol: 'v2',
      path: modelPath,
      reason: err.message,
      signature: await readModelSignature(modelPath),
    };
    for (const line of describeV2(v2)) ctx.out.line(line);
    ctx.out.result(v2);
    return v2;
  }
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

const DECODE_WORDS: Record<DecodeMode, string> = {
  exact: 'at full size, then resampled',
  fast: 'at a DCT scale leaving at least twice the resized size, then resampled',
  draft: 'at the smallest DCT scale not below the resized size, then resampled',
};

function describe({ model: m, sample }: ModelInspectResult): string[] {
  const size = `${m.width}×${m.height}`;
  const lines = [
    `Model ${m.path} (${m.digest.slice(0, 19)}…)`,
    `  input   ${m.inputName}: ${m.inputType}, ${m.layout}, ${size}, batch ${m.dynamicBatch ? 'dynamic' : 'fixed at 1 (served without batching)'}`,
    `  output  ${m.outputName}: ${m.outputType}, ${m.labelCount} classes, scores as ${m.output}`,
    `  labels  ${m.firstLabels.join(', ')}${m.labelCount > m.firstLabels.length ? ', …' : ''}`,
    `  labels from ${describeLabelsSource(m.path, m.labelsSource)}`,
    `Preprocessing (from ${describePreprocessSource(m.path, m.preprocessSource)}):`,
    `  resize  ${m.resize ? ('shorterSide' in m.resize ? `shorter side to ${m.resize.shorterSide}` : `stretch to ${m.resize.width}×${m.resize.height}`) : 'none'}` +
      `${m.crop ? `, centre crop ${m.crop.width}×${m.crop.height}` : ''} (${m.interpolation}), orientation ${m.orientation}`,
    `  decode  ${m.decode} (JPEG: ${DECODE_WORDS[m.decode]})`,
    `  pixels  ${m.channelOrder}, (pixel × ${m.scale} − [${m.mean.join(', ')}]) / [${m.std.join(', ')}]`,
  ];
  if (sample) {
    lines.push(`Sample ${sample.path}:`);
    for (const p of sample.predictions) lines.push(`  ${p.label.padEnd(24)} ${p.score.toFixed(4)}`);
  }
  return lines;
}

function describeV2({ path: modelPath, reason, signature }: V2InspectResult): string[] {
  const tensor = (t: ModelSignature['inputs'][number]) =>
    `${t.name}: ${t.datatype ?? 'not expressible in V2'} [${t.shape.join(', ')}]`;
  return [
    `Model ${modelPath} (${signature.digest.slice(0, 19)}…)`,
    `  not an image classifier (${reason})`,
    '  served on the Open Inference Protocol only: POST /v2/models/{name}/infer; deploy it with --smoke-request',
    ...signature.inputs.map((t) => `  input   ${tensor(t)}`),
    ...signature.outputs.map((t) => `  output  ${tensor(t)}`),
  ];
}
