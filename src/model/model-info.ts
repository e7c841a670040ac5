/**
 * What inferctl needs to know about an image classifier, read from the ONNX protobuf itself (no
 * onnxruntime session, so it is fast and safe to run in a control-plane activity): its image input
 * (name, size, NCHW), its probability output, preprocessing and labels. Every way a model can be
 * unusable becomes a ModelError whose `type` is stable (ModelNotFound, InvalidModel, UnsupportedModel,
 * MissingLabels) and whose message says what to fix.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { onnx } from 'onnx-proto';

import { ModelError } from '../errors';
import { IMAGENET_NORMALISATION, LABELS_KEY, PREPROCESS_KEY, labelsSidecarPath } from './metadata';
import type { PreprocessSpec } from './metadata';
import { FailureType } from '../shared/failure-types';

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

type Dim = number | string;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

export async function readModelInfo(modelPath: string): Promise<ModelInfo> {
  const bytes = await readModelFile(modelPath);
  const graph = decodeGraph(modelPath, bytes);
  const input = imageInput(modelPath, graph.model);
  const output = probabilityOutput(modelPath, graph.model);
  const props = new Map(graph.props.map((p) => [p.key ?? '', p.value ?? '']));
  const preprocess = preprocessSpec(modelPath, props.get(PREPROCESS_KEY), input.dims);
  const labels = await readLabels(modelPath, props.get(LABELS_KEY));
  if (typeof output.classes === 'number' && output.classes !== labels.length) {
    throw new ModelError(
      `${modelPath}: the output "${output.name}" has ${output.classes} classes but there are ${labels.length} labels. ` +
        `Give one label per class, in output order (metadata "${LABELS_KEY}" or ${path.basename(labelsSidecarPath(modelPath))}).`,
      FailureType.MissingLabels,
    );
  }
  return {
    path: modelPath,
    digest: `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`,
    inputName: input.name,
    outputName: output.name,
    ...preprocess,
    labels,
    dynamicBatch: typeof input.dims[0] !== 'number',
  };
}

async function readModelFile(modelPath: string): Promise<Buffer> {
  try {
    return await fs.readFile(modelPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ModelError(
        `Model file not found: ${modelPath}. Pass the path to an .onnx file.`,
        FailureType.ModelNotFound,
      );
    }
    if (code === 'EISDIR') {
      throw new ModelError(`${modelPath} is a directory. Pass the path to an .onnx file.`, FailureType.ModelNotFound);
    }
    throw new ModelError(
      `Cannot read the model ${modelPath} (${code ?? String(err)}). Check that it exists and is readable.`,
      FailureType.ModelNotFound,
    );
  }
}

function decodeGraph(
  modelPath: string,
  bytes: Buffer,
): { model: onnx.IGraphProto; props: onnx.IStringStringEntryProto[] } {
  const invalid = (why: string) =>
    new ModelError(
      `${modelPath} is not a valid ONNX model (${why}). Re-export it, e.g. with torch.onnx.export or tf2onnx.`,
      FailureType.InvalidModel,
    );
  if (bytes.length === 0) throw invalid('the file is empty');
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw invalid(`protobuf decoding failed: ${(err as Error).message}`);
  }
  const graph = model.graph;
  // Random bytes sometimes decode as a protobuf; a real model has a graph with nodes, inputs and outputs.
  if (!graph?.node?.length || !graph.input?.length || !graph.output?.length) {
    throw invalid('no graph with nodes, inputs and outputs');
  }
  return { model: graph, props: model.metadataProps };
}

function dimsOf(info: onnx.IValueInfoProto): Dim[] | undefined {
  const dims = info.type?.tensorType?.shape?.dim;
  if (!dims) return undefined;
  return dims.map((d) => {
    const value = d.dimValue != null ? Number(d.dimValue) : 0;
    return value > 0 ? value : d.dimParam || '?';
  });
}

function typeName(elemType: number | null | undefined): string {
  const name = elemType != null ? onnx.TensorProto.DataType[elemType] : undefined;
  return name ? name.toLowerCase().replace(/^float$/, 'float32') : 'non-tensor';
}

function imageInput(modelPath: string, graph: onnx.IGraphProto): { name: string; dims: Dim[] } {
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((i) => !initializers.has(i.name));
  if (inputs.length !== 1) {
    throw new ModelError(
      `${modelPath} has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ') || 'none'}); ` +
        'inferctl serves image classifiers with exactly one image input. Re-export the model with a single input.',
      FailureType.UnsupportedModel,
    );
  }
  const input = inputs[0]!;
  const dims = dimsOf(input) ?? [];
  const elemType = input.type?.tensorType?.elemType;
  if (elemType === FLOAT && dims.length === 4 && dims[1] === 3) {
    const batch = dims[0];
    if (typeof batch === 'number' && batch !== 1) {
      throw new ModelError(
        `${modelPath}: input "${input.name}" has a fixed batch of ${batch}; inferctl needs a dynamic batch axis ` +
          'or a batch of 1. Re-export with a dynamic batch (torch.onnx.export(..., dynamic_axes={"input": {0: "batch"}})).',
        FailureType.UnsupportedModel,
      );
    }
    return { name: input.name ?? '', dims };
  }
  const found = `${typeName(elemType)} [${dims.join(', ')}]`;
  const hint = dims.length === 4 && dims[3] === 3 ? ' It looks channels-last (NHWC): export it channels-first.' : '';
  throw new ModelError(
    `${modelPath}: input "${input.name}" is ${found}; inferctl needs a float32 image input shaped ` +
      `[batch, 3, height, width] (NCHW).${hint}`,
    FailureType.UnsupportedModel,
  );
}

/** The first float32 output (classifiers exported from sklearn and the like also emit a label tensor). */
function probabilityOutput(modelPath: string, graph: onnx.IGraphProto): { name: string; classes: Dim | undefined } {
  const outputs = graph.output ?? [];
  const output = outputs.find((o) => o.type?.tensorType?.elemType === FLOAT);
  if (!output) {
    const found = outputs.map((o) => `"${o.name}" ${typeName(o.type?.tensorType?.elemType)}`).join(', ');
    throw new ModelError(
      `${modelPath} has no float32 output (found ${found}); inferctl needs the class scores as [batch, classes].`,
      FailureType.UnsupportedModel,
    );
  }
  const dims = dimsOf(output) ?? [];
  return { name: output.name ?? '', classes: dims[dims.length - 1] };
}

type Preprocess = Pick<ModelInfo, 'width' | 'height' | 'scale' | 'mean' | 'std'>;

/**
 * The `inferctl.preprocess` metadata, checked field by field (every problem reported at once). Without
 * it: the input's static height and width, and ImageNet normalisation.
 */
function preprocessSpec(modelPath: string, raw: string | undefined, inputDims: Dim[]): Preprocess {
  const [, , staticHeight, staticWidth] = inputDims;
  let spec: Partial<Record<keyof PreprocessSpec, unknown>> = {};
  if (raw) {
    try {
      const parsed = JSON.parse(raw) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      spec = parsed;
    } catch (err) {
      throw new ModelError(
        `${modelPath}: metadata "${PREPROCESS_KEY}" is not a JSON object (${(err as Error).message}). ` +
          'Write it as {"width":224,"height":224,"layout":"NCHW","scale":0.00392156862745098,"mean":[...],"std":[...]}.',
        FailureType.InvalidModel,
      );
    }
  }
  const problems: string[] = [];
  const positiveInt = (key: 'width' | 'height', fallback: Dim | undefined): number => {
    const value = spec[key] ?? fallback;
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
    problems.push(
      spec[key] === undefined
        ? `the input's ${key} is not fixed (${String(fallback)}) and "${PREPROCESS_KEY}" gives no ${key}`
        : `${key} must be a positive integer, not ${JSON.stringify(spec[key])}`,
    );
    return 0;
  };
  const triple = (key: 'mean' | 'std', nonZero: boolean): [number, number, number] => {
    const value = spec[key] ?? IMAGENET_NORMALISATION[key];
    const ok =
      Array.isArray(value) &&
      value.length === 3 &&
      value.every((v) => typeof v === 'number' && Number.isFinite(v) && (!nonZero || v !== 0));
    if (ok) return value as [number, number, number];
    problems.push(`${key} must be 3 finite numbers${nonZero ? ', none zero' : ''}, not ${JSON.stringify(value)}`);
    return [0, 0, 0];
  };
  const width = positiveInt('width', staticWidth);
  const height = positiveInt('height', staticHeight);
  const mean = triple('mean', false);
  const std = triple('std', true);
  const scale = spec.scale ?? IMAGENET_NORMALISATION.scale;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) {
    problems.push(`scale must be a positive number, not ${JSON.stringify(scale)}`);
  }
  if (spec.layout !== undefined && spec.layout !== 'NCHW') {
    problems.push(`layout ${JSON.stringify(spec.layout)} is not supported (only "NCHW")`);
  }
  for (const [key, value, fixed] of [
    ['width', width, staticWidth],
    ['height', height, staticHeight],
  ] as const) {
    if (typeof fixed === 'number' && value > 0 && value !== fixed) {
      problems.push(`${key} ${value} disagrees with the input's fixed ${key} ${fixed}`);
    }
  }
  if (problems.length > 0) {
    const kind = raw ? `metadata "${PREPROCESS_KEY}" is unusable` : 'the input size cannot be determined';
    throw new ModelError(
      `${modelPath}: ${kind}: ${problems.join('; ')}. Fix the metadata and re-export.`,
      FailureType.UnsupportedModel,
    );
  }
  return { width, height, mean, std, scale: scale as number };
}

/** Labels from the "inferctl.labels" metadata, else `<model>.labels.txt` or `labels.txt` beside it. */
async function readLabels(modelPath: string, fromMetadata: string | undefined): Promise<string[]> {
  if (fromMetadata) {
    let labels: unknown;
    try {
      labels = JSON.parse(fromMetadata);
    } catch {
      // reported below
    }
    if (Array.isArray(labels) && labels.length > 0 && labels.every((l) => typeof l === 'string')) return labels;
    throw new ModelError(
      `${modelPath}: metadata "${LABELS_KEY}" must be a non-empty JSON array of strings. Fix it, or remove it and ` +
        `put the labels in ${path.basename(labelsSidecarPath(modelPath))} beside the model.`,
      FailureType.MissingLabels,
    );
  }
  const candidates = [labelsSidecarPath(modelPath), path.join(path.dirname(modelPath), 'labels.txt')];
  for (const candidate of candidates) {
    let text: string;
    try {
      text = await fs.readFile(candidate, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new ModelError(
        `Cannot read the labels file ${candidate} (${(err as NodeJS.ErrnoException).code ?? String(err)}). Check its permissions.`,
        FailureType.MissingLabels,
      );
    }
    const labels = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    if (labels.length > 0) return labels;
    throw new ModelError(
      `The labels file ${candidate} is empty. Put one label per line, in output order.`,
      FailureType.MissingLabels,
    );
  }
  throw new ModelError(
    `${modelPath} has no labels: add ${path.basename(candidates[0]!)} (one label per line, in output order) beside it, ` +
      `or set the "${LABELS_KEY}" metadata to a JSON array.`,
    FailureType.MissingLabels,
  );
}
