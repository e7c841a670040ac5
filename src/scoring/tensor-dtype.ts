/**
 * Float32 preprocessed values → the model's input element type, and float16 outputs back to float32.
 * float16 travels as its IEEE 754 bits in a Uint16Array (what onnxruntime-node takes for 'float16').
 */
import * as ort from 'onnxruntime-node';

import type { InputType } from '../model/model-info';
import { float16Bits, float16Value } from './float16';

/** The input tensor's data for this element type: float32 as is, float16 bits, uint8 rounded and clamped. */
export function toInputData(values: Float32Array, type: InputType): Float32Array | Uint16Array | Uint8Array {
  if (type === 'float32') return values;
  if (type === 'float16') return Uint16Array.from(values, float16Bits);
  return Uint8Array.from(values, (v) => Math.min(255, Math.max(0, Math.round(v))));
}

/** An output tensor's data as float32 (float16 outputs arrive as Uint16Array bits, or a Float16Array). */
export function outputAsFloat32(data: unknown): Float32Array {
  if (data instanceof Float32Array) return data;
  if (data instanceof Uint16Array) return Float32Array.from(data, float16Value);
  if (ArrayBuffer.isView(data) && 'length' in data) return Float32Array.from(data as unknown as ArrayLike<number>);
  throw new Error('The model returned an output that is not a numeric tensor.');
}

/**
 * An onnxruntime tensor over `data`, the one place tensors with float16 data are made. onnxruntime-common
 * views Uint16Array data of a float16 tensor as a Float16Array where the runtime has one (Node 24 does),
 * and onnxruntime-node 1.30's native binding then reads 0 bytes from it ("not enough space: expected N,
 * got 0"); the tensor keeps the Uint16Array bits instead. Drop the workaround when onnxruntime fixes it.
 */
export function ortTensor(type: ort.Tensor.Type, data: ArrayBufferView, dims: readonly number[]): ort.Tensor {
  const tensor = new ort.Tensor(type, data as ort.Tensor.DataTypeMap['float32'], dims);
  if (type === 'float16' && data instanceof Uint16Array) (tensor as unknown as { cpuData: Uint16Array }).cpuData = data;
  return tensor;
}

/** The classifier's input tensor (float32, float16 bits or uint8). */
export function inputTensor(
  type: InputType,
  data: Float32Array | Uint16Array | Uint8Array,
  dims: number[],
): ort.Tensor {
  return ortTensor(type, data, dims);
}
