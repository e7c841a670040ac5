/**
 * What inferctl needs to know about an image classifier, read from the ONNX file itself (no session):
 * its input (name, size, NCHW), its output, preprocessing and labels. Every way a model can be unusable
 * becomes a ModelError that says what to fix.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { onnx } from 'onnx-proto';

import { ModelError } from '../errors';
import type { PreprocessSpec } from './onnx-builder';

export interface ModelInfo {
  path: string;
  /** 'sha256:<hex>' of the file. */
  digest: string;
  inputName: string;
  outputName: string;
  width: number;
  height: number;
  mean: [number, number, number];
  std: [number, number, number];
  scale: number;
  labels: string[];
  /** True when the batch dimension is symbolic; false when the model takes one image at a time. */
  dynamicBatch: boolean;
}

const IMAGENET: Pick<PreprocessSpec, 'mean' | 'std' | 'scale'> = {
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

export async function readModelInfo(modelPath: string): Promise<ModelInfo> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(modelPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new ModelError(`Model file not found: ${modelPath}. Pass the path to an .onnx file.`, 'ModelNotFound');
    if (code === 'EISDIR')
      throw new ModelError(`${modelPath} is a directory; pass the path to an .onnx file.`, 'ModelNotFound');
    throw new ModelError(`Cannot read the model ${modelPath} (${code}). Check its permissions.`, 'ModelNotFound');
  }
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new ModelError(
      `${modelPath} is not a valid ONNX model (${(err as Error).message}). Re-export it, e.g. with torch.onnx.export.`,
      'InvalidModel',
    );
  }
  const graph = model.graph;
  const nodes = graph?.node ?? [];
  const graphInputs = graph?.input ?? [];
  const graphOutputs = graph?.output ?? [];
  if (nodes.length === 0 || graphInputs.length === 0 || graphOutputs.length === 0) {
    throw new ModelError(
      `${modelPath} is not a valid ONNX model (no graph with inputs, outputs and nodes). Re-export it.`,
      'InvalidModel',
    );
  }

  const initializers = new Set((graph?.initializer ?? []).map((t) => t.name));
  const inputs = graphInputs.filter((i) => !initializers.has(i.name));
  if (inputs.length !== 1) {
    throw new ModelError(
      `${modelPath} has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); inferctl serves image classifiers with exactly one image input.`,
      'UnsupportedModel',
    );
  }
  const input = inputs[0]!;
  const tensor = input.type?.tensorType;
  const dims = tensor?.shape?.dim ?? [];
  const dimValue = (i: number) => {
    const d = dims[i];
    return d?.dimValue != null ? Number(d.dimValue) : undefined;
  };
  if (!tensor || tensor.elemType !== onnx.TensorProto.DataType.FLOAT || dims.length !== 4 || dimValue(1) !== 3) {
    const shape = dims.map((d) => (d.dimValue != null ? String(d.dimValue) : (d.dimParam ?? '?'))).join(', ');
    throw new ModelError(
      `${modelPath}: input "${input.name}" is [${shape}] of element type ${tensor?.elemType ?? 'unknown'}; ` +
        'inferctl needs a float32 image input shaped [batch, 3, height, width] (NCHW).',
      'UnsupportedModel',
    );
  }

  const props = new Map(model.metadataProps.map((p) => [p.key, p.value]));
  let preprocess: Partial<PreprocessSpec> = {};
  const rawPreprocess = props.get('inferctl.preprocess');
  if (rawPreprocess) {
    try {
      preprocess = JSON.parse(rawPreprocess) as PreprocessSpec;
    } catch {
      throw new ModelError(`${modelPath}: metadata "inferctl.preprocess" is not valid JSON.`, 'InvalidModel');
    }
  }
  const width = preprocess.width ?? dimValue(3);
  const height = preprocess.height ?? dimValue(2);
  if (!width || !height) {
    throw new ModelError(
      `${modelPath}: the input's height and width are not fixed and the model has no "inferctl.preprocess" metadata saying which size to feed it.`,
      'UnsupportedModel',
    );
  }

  const labels = await readLabels(modelPath, props.get('inferctl.labels') ?? undefined);
  const output = graphOutputs[0]!;
  const outDims = output.type?.tensorType?.shape?.dim ?? [];
  const classes = outDims.length > 0 ? outDims[outDims.length - 1]!.dimValue : undefined;
  if (classes != null && Number(classes) !== labels.length) {
    throw new ModelError(
      `${modelPath}: the output "${output.name}" has ${Number(classes)} classes but there are ${labels.length} labels. Fix the labels.`,
      'MissingLabels',
    );
  }

  return {
    path: modelPath,
    digest: `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`,
    inputName: input.name ?? 'input',
    outputName: output.name ?? 'output',
    width,
    height,
    mean: preprocess.mean ?? IMAGENET.mean,
    std: preprocess.std ?? IMAGENET.std,
    scale: preprocess.scale ?? IMAGENET.scale,
    labels,
    dynamicBatch: dimValue(0) === undefined,
  };
}

/** Labels from the "inferctl.labels" metadata, else `<model>.labels.txt` or `labels.txt` beside it. */
async function readLabels(modelPath: string, fromMetadata: string | undefined): Promise<string[]> {
  if (fromMetadata) {
    try {
      const labels = JSON.parse(fromMetadata) as unknown;
      if (Array.isArray(labels) && labels.every((l) => typeof l === 'string')) return labels;
    } catch {
      // fall through to the error below
    }
    throw new ModelError(`${modelPath}: metadata "inferctl.labels" must be a JSON array of strings.`, 'MissingLabels');
  }
  const base = modelPath.replace(/\.onnx$/i, '');
  for (const candidate of [`${base}.labels.txt`, path.join(path.dirname(modelPath), 'labels.txt')]) {
    try {
      const text = await fs.readFile(candidate, 'utf8');
      return text
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.length > 0);
    } catch {
      // try the next
    }
  }
  throw new ModelError(
    `${modelPath} has no labels: add ${path.basename(base)}.labels.txt (one label per line, in output order) beside it.`,
    'MissingLabels',
  );
}

/** Writes labels as a sidecar file next to a model. */
export async function writeLabelsFile(modelPath: string, labels: string[]): Promise<string> {
  const file = `${modelPath.replace(/\.onnx$/i, '')}.labels.txt`;
  await fs.writeFile(file, labels.join('\n') + '\n');
  return file;
}
