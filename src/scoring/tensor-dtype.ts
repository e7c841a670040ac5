/**
 * Float32 preprocessed values → the model's input element type, and float16 outputs back to float32.
 * float16 travels as its IEEE 754 bits in a Uint16Array (what onnxruntime-node takes for 'float16').
 */
import * as ort from 'onnxruntime-node';

import type { InputType } from '../model/model-info';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 half-precision bits of a float32, rounded to nearest, ties to even (as numpy's astype). */
export function float16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf, NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000; // subnormal: the implicit bit becomes explicit
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let bits = mant >>> shift;
    if (rest > half || (rest === half && bits & 1)) bits++;
    return sign | bits;
  }
  let bits = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && bits & 1)) bits++; // a carry into the exponent is still right
  return sign | bits;
}

export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The input tensor's data for this element type: float32 as is, float16 bits, uint8 rounded and clamped. */
export function toInputData(values: Float32Array, type: InputType): Float32Array | Uint16Array | Uint8Array {
  if (type === 'float32') return values;
  if (type === 'float16') return Uint16Array.from(values, float16Bits);
  return Uint8Array.from(values, (v) => Math.min(255, Math.max(0, Math.round(v))));
}

/** An output tensor's data as float32 (float16 outputs arrive as Uint16Array bits, or a Float16Array). */
export function outputAsFloat32(data: unknown): Float32Array {
  if (data instanceof Float32Array) return data;
  if (data instanceof Uint16Array) return Float32Array.from(data, float16ToNumber);
  if (ArrayBuffer.isView(data) && 'length' in data) return Float32Array.from(data as unknown as ArrayLike<number>);
  throw new Error('The model returned an output that is not a numeric tensor.');
}

/**
 * An onnxruntime input tensor. For float16, onnxruntime-common views Uint16Array data as a Float16Array
 * where the runtime has one (Node 24 does), and onnxruntime-node 1.30's native binding then reads 0
 * bytes from it ("not enough space: expected N, got 0"). The tensor keeps the Uint16Array bits instead.
 */
export function inputTensor(
  type: InputType,
  data: Float32Array | Uint16Array | Uint8Array,
  dims: number[],
): ort.Tensor {
  const tensor = new ort.Tensor(type, data, dims);
  if (type === 'float16' && !(tensor.data instanceof Uint16Array)) {
    (tensor as unknown as { cpuData: Uint16Array }).cpuData = data as Uint16Array;
  }
  return tensor;
}
