/**
 * What inferctl needs to know about an image classifier, read from the ONNX protobuf itself (no
 * onnxruntime session, so it is fast and safe to run in a control-plane activity): its image input
 * (name, size, layout NCHW or NHWC, dtype float32, float16 or uint8), its score output, the preprocessing
 * spec it is served with (src/preprocess/model-preprocess.ts) and its labels. Every way a model can be unusable becomes a
 * ModelError whose `type` is stable (ModelNotFound, InvalidModel, UnsupportedModel, MissingLabels) and
 * whose message says what to fix; a given spec that does not fit is an InvalidPreprocess error.
 */
import crypto from 'node:crypto';
import path from 'node:path';

import { onnx } from 'onnx-proto';

import { readFileInsideAllowedRoots, rootsAndHome } from '../allowed-roots';
import { InvalidInputError, ModelError } from '../errors';
import { readLabels, readLabelsFile } from './labels';
import { LABELS_KEY, PREPROCESS_KEY, labelsSidecarPath } from './metadata';
import { modelPreprocess, preprocessSidecarPath } from '../preprocess/model-preprocess';
import { FailureType } from '../shared/failure-types';
import type {
  LabelsSource,
  PreprocessConfig,
  PreprocessSource,
  ResolvedPreprocess,
  TensorLayout,
} from '../shared/preprocess-types';

/** The input element types inferctl can feed. */
export type InputType = 'float32' | 'float16' | 'uint8';

export interface ModelInfo extends ResolvedPreprocess {
  path: string;
  /** 'sha256:<hex>' of the file. */
  digest: string;
  inputName: string;
  inputType: InputType;
  outputName: string;
  outputType: 'float32' | 'float16';
  labels: string[];
  /** True when the batch dimension is symbolic; false when the model takes one image at a time (no batching). */
  dynamicBatch: boolean;
  /** Where the preprocessing spec came from (flag, sidecar, metadata, defaults). */
  preprocessSource: PreprocessSource;
  /** Where the labels came from (flag, sidecar, metadata, directory): the same rule as the spec. */
  labelsSource: LabelsSource;
}

/** A deployment's or job's spec and labels file, read into ModelOverrides (the labels file is read here). */
export async function readOverrides(given: {
  preprocess?: PreprocessConfig;
  labelsPath?: string;
}): Promise<ModelOverrides> {
  return {
    ...(given.preprocess ? { preprocess: given.preprocess } : {}),
    ...(given.labelsPath ? { labels: await readLabelsFile(given.labelsPath) } : {}),
  };
}

/** What a deployment or a job says instead of what the model and its sidecars say. */
export interface ModelOverrides {
  /** A spec as written (`--preprocess`): wins over the sidecar and the metadata. */
  preprocess?: PreprocessConfig;
  /** Labels in output order (`--labels`): win over the sidecars and the metadata. */
  labels?: string[];
}

type Dim = number | string;
const DataType = onnx.TensorProto.DataType;
const INPUT_TYPES = new Map<number, InputType>([
  [DataType.FLOAT, 'float32'],
  [DataType.FLOAT16, 'float16'],
  [DataType.UINT8, 'uint8'],
]);

export async function readModelInfo(modelPath: string, overrides: ModelOverrides = {}): Promise<ModelInfo> {
  return modelInfoOf(modelPath, await readModelFile(modelPath), overrides);
}

/** What readModelInfo finds, in bytes already read (and checked) by readModelFile: the session opens the same bytes. */
export async function modelInfoOf(
  modelPath: string,
  bytes: Buffer,
  overrides: ModelOverrides = {},
): Promise<ModelInfo> {
  const graph = decodeGraph(modelPath, bytes);
  const input = imageInput(modelPath, graph.model, overrides.preprocess?.layout);
  const output = scoreOutput(modelPath, graph.model);
  const props = new Map(graph.props.map((p) => [p.key ?? '', p.value ?? '']));
  const { spec, source } = await modelPreprocess(modelPath, input, overrides.preprocess, props.get(PREPROCESS_KEY));
  const { labels, source: labelsSource } =
    overrides.labels !== undefined
      ? { labels: overrides.labels, source: 'flag' as const }
      : await readLabels(modelPath, props.get(LABELS_KEY));
  if (overrides.labels !== undefined && labels.length === 0) {
    throw new InvalidInputError(
      'The given labels (--labels) are empty: put one label per line, in output order.',
      FailureType.MissingLabels,
    );
  }
  if (typeof output.classes === 'number' && output.classes !== labels.length) {
    const where =
      overrides.labels !== undefined ? 'the given labels (--labels)' : describeLabelsSource(modelPath, labelsSource);
    throw new ModelError(
      `${modelPath}: the output "${output.name}" has ${output.classes} classes but there are ${labels.length} labels. ` +
        `Give one label per class, in output order (${where}).`,
      FailureType.MissingLabels,
    );
  }
  return {
    path: modelPath,
    digest: `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`,
    inputName: input.name,
    inputType: input.type,
    outputName: output.name,
    outputType: output.type,
    ...spec,
    labels,
    dynamicBatch: typeof input.dims[0] !== 'number',
    preprocessSource: source,
    labelsSource,
  };
}

/** Where a model's labels came from, as a user finds it: `the sidecar resnet.labels.txt`, … */
export function describeLabelsSource(modelPath: string, source: LabelsSource): string {
  switch (source) {
    case 'flag':
      return 'the given labels (--labels)';
    case 'sidecar':
      return `the sidecar ${path.basename(labelsSidecarPath(modelPath))}`;
    case 'metadata':
      return `the model's metadata "${LABELS_KEY}"`;
    case 'directory':
      return `${path.join(path.basename(path.dirname(modelPath)), 'labels.txt')} in the model's directory`;
  }
}

/** Where a model's preprocessing spec came from, as a user finds it. */
export function describePreprocessSource(modelPath: string, source: PreprocessSource): string {
  switch (source) {
    case 'flag':
      return 'the given spec (--preprocess)';
    case 'sidecar':
      return `the sidecar ${path.basename(preprocessSidecarPath(modelPath))}`;
    case 'metadata':
      return `the model's metadata "${PREPROCESS_KEY}"`;
    case 'defaults':
      return "defaults from the model's input shape";
  }
}

/**
 * The model's bytes. With INFERCTL_ALLOWED_ROOTS set, the file opened is checked against the roots and
 * inferctl's own home (bundles, the blob cache), so a link swapped in after validation cannot make a
 * worker read another file as the model.
 */
export async function readModelFile(modelPath: string): Promise<Buffer> {
  try {
    return await readFileInsideAllowedRoots('model', modelPath, rootsAndHome());
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
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

export function decodeGraph(
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

/**
 * The one image input: [batch, 3, H, W] (NCHW) or [batch, H, W, 3] (NHWC), float32, float16 or uint8, a
 * dynamic batch or a batch of 1. The layout is the shape's unless the spec names one (then checked later).
 */
function imageInput(
  modelPath: string,
  graph: onnx.IGraphProto,
  layoutGiven: TensorLayout | undefined,
): { name: string; dims: Dim[]; type: InputType; layout: TensorLayout | undefined } {
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
  const type = elemType != null ? INPUT_TYPES.get(elemType) : undefined;
  const layout = dims[1] === 3 ? 'NCHW' : dims[3] === 3 ? 'NHWC' : undefined;
  if (type && dims.length === 4 && (layout || layoutGiven)) {
    const batch = dims[0];
    if (typeof batch === 'number' && batch !== 1) {
      throw new ModelError(
        `${modelPath}: input "${input.name}" has a fixed batch of ${batch}; inferctl needs a dynamic batch axis ` +
          'or a batch of 1. Re-export with a dynamic batch (torch.onnx.export(..., dynamic_axes={"input": {0: "batch"}})).',
        FailureType.UnsupportedModel,
      );
    }
    return { name: input.name ?? '', dims, type, layout: layoutGiven ?? layout };
  }
  const found = `${typeName(elemType)} [${dims.join(', ')}]`;
  throw new ModelError(
    `${modelPath}: input "${input.name}" is ${found}; inferctl needs a float32, float16 or uint8 image input with ` +
      '3 channels, shaped [batch, 3, height, width] (NCHW) or [batch, height, width, 3] (NHWC).',
    FailureType.UnsupportedModel,
  );
}

/** The first float32 or float16 output (classifiers exported from sklearn and the like also emit a label tensor). */
function scoreOutput(
  modelPath: string,
  graph: onnx.IGraphProto,
): { name: string; type: 'float32' | 'float16'; classes: Dim | undefined } {
  const outputs = graph.output ?? [];
  const output = outputs.find((o) => [DataType.FLOAT, DataType.FLOAT16].includes(o.type?.tensorType?.elemType ?? -1));
  if (!output) {
    const found = outputs.map((o) => `"${o.name}" ${typeName(o.type?.tensorType?.elemType)}`).join(', ');
    throw new ModelError(
      `${modelPath} has no float32 or float16 output (found ${found}); inferctl needs the class scores as [batch, classes].`,
      FailureType.UnsupportedModel,
    );
  }
  const dims = dimsOf(output) ?? [];
  const type = output.type?.tensorType?.elemType === DataType.FLOAT16 ? 'float16' : 'float32';
  return { name: output.name ?? '', type, classes: dims[dims.length - 1] };
}
