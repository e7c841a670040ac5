/**
 * Any ONNX model's inputs and outputs as the Open Inference Protocol (KServe V2) names them: name,
 * datatype (FP32, INT64, …, BYTES for strings) and shape, -1 for a dynamic axis. Read from the protobuf
 * (no onnxruntime session), so a control-plane activity can check a V2 request against the model.
 */
import crypto from 'node:crypto';

import { onnx } from 'onnx-proto';

import { decodeGraph, readModelFile } from './model-info';

export interface TensorSignature {
  name: string;
  /** The V2 datatype; undefined for a type V2 cannot express (or a value that is not a tensor). */
  datatype: string | undefined;
  /** -1 for a dynamic (or unknown) axis; empty for a scalar. */
  shape: number[];
}

export interface ModelSignature {
  /** 'sha256:<hex>' of the file. */
  digest: string;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

const DataType = onnx.TensorProto.DataType;
const V2_NAMES = new Map<number, string>([
  [DataType.BOOL, 'BOOL'],
  [DataType.UINT8, 'UINT8'],
  [DataType.UINT16, 'UINT16'],
  [DataType.UINT32, 'UINT32'],
  [DataType.UINT64, 'UINT64'],
  [DataType.INT8, 'INT8'],
  [DataType.INT16, 'INT16'],
  [DataType.INT32, 'INT32'],
  [DataType.INT64, 'INT64'],
  [DataType.FLOAT16, 'FP16'],
  [DataType.FLOAT, 'FP32'],
  [DataType.DOUBLE, 'FP64'],
  [DataType.STRING, 'BYTES'],
]);

function signatureOf(info: onnx.IValueInfoProto): TensorSignature {
  const tensor = info.type?.tensorType;
  const elemType = tensor?.elemType;
  return {
    name: info.name ?? '',
    datatype: elemType != null ? V2_NAMES.get(elemType) : undefined,
    shape: (tensor?.shape?.dim ?? []).map((d) =>
      d.dimValue != null && Number(d.dimValue) > 0 ? Number(d.dimValue) : -1,
    ),
  };
}

/** The model's graph inputs (initializers excluded) and outputs; a missing or corrupt file is a ModelError. */
export async function readModelSignature(modelPath: string): Promise<ModelSignature> {
  const bytes = await readModelFile(modelPath);
  const { model: graph } = decodeGraph(modelPath, bytes);
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  return {
    digest: `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`,
    inputs: (graph.input ?? []).filter((i) => !initializers.has(i.name)).map(signatureOf),
    outputs: (graph.output ?? []).map(signatureOf),
  };
}
