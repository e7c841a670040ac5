/**
 * The Open Inference Protocol's (KServe V2) tensors on the wire, both ways: the JSON form
 * (`{"name","shape","datatype","data":[…]}`, data row-major, flat or nested) and the binary tensor data
 * extension (a JSON header of `Inference-Header-Content-Length` bytes, then each binary tensor's raw
 * little-endian bytes in order, sized by `parameters.binary_data_size`). Pure: no HTTP, no onnxruntime.
 * Every malformed request is a V2Error (a 400) whose message names the tensor and says what to send.
 *
 * Datatypes: BOOL (one byte each), UINT8/16/32/64, INT8/16/32/64, FP16 (IEEE half, kept as its bits in
 * a Uint16Array, which onnxruntime takes for 'float16'), FP32, FP64. BYTES is refused (no string
 * tensors). 64-bit integers stay exact in JSON both ways (BigInt, written as raw JSON numbers).
 */
import { HttpError } from '../server/http-io';
import { float16Bits, float16Value } from '../scoring/float16';

export { float16Bits, float16Value } from '../scoring/float16';

/** A V2 datatype with its onnxruntime tensor type and size in bytes. */
export const V2_DATATYPES = {
  BOOL: { ort: 'bool', bytes: 1 },
  UINT8: { ort: 'uint8', bytes: 1 },
  UINT16: { ort: 'uint16', bytes: 2 },
  UINT32: { ort: 'uint32', bytes: 4 },
  UINT64: { ort: 'uint64', bytes: 8 },
  INT8: { ort: 'int8', bytes: 1 },
  INT16: { ort: 'int16', bytes: 2 },
  INT32: { ort: 'int32', bytes: 4 },
  INT64: { ort: 'int64', bytes: 8 },
  FP16: { ort: 'float16', bytes: 2 },
  FP32: { ort: 'float32', bytes: 4 },
  FP64: { ort: 'float64', bytes: 8 },
} as const;

export type V2Datatype = keyof typeof V2_DATATYPES;
export type OrtTensorType = (typeof V2_DATATYPES)[V2Datatype]['ort'];

export type TensorData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

/** A decoded tensor: the data's typed array is the one onnxruntime takes for the datatype. */
export interface V2Tensor {
  name: string;
  datatype: V2Datatype;
  shape: number[];
  data: TensorData;
}

export interface RequestedOutput {
  name: string;
  binary: boolean;
}

export interface InferRequest {
  id?: string;
  inputs: V2Tensor[];
  /** The outputs asked for, in order; undefined: all of them. */
  outputs?: RequestedOutput[];
  /** `parameters.binary_data_output`: outputs not listed individually come back binary. */
  binaryOutputs: boolean;
}

/** Thrown for a request the protocol refuses: a 400 answered as `{"error": message}`. */
export class V2Error extends HttpError {
  constructor(message: string, status = 400) {
    super(status, 'invalid-request', message);
  }
}

const ORT_TO_V2 = new Map<string, V2Datatype>(
  Object.entries(V2_DATATYPES).map(([v2, { ort }]) => [ort, v2 as V2Datatype]),
);

/** The V2 datatype of an onnxruntime tensor type ('string' is BYTES; undefined for anything else). */
export function v2DatatypeOf(ortType: string): V2Datatype | 'BYTES' | undefined {
  return ortType === 'string' ? 'BYTES' : ORT_TO_V2.get(ortType);
}

export function isV2Datatype(value: unknown): value is V2Datatype {
  return typeof value === 'string' && Object.hasOwn(V2_DATATYPES, value);
}

const INTEGER_RANGES: Partial<Record<V2Datatype, [number, number]>> = {
  UINT8: [0, 0xff],
  UINT16: [0, 0xffff],
  UINT32: [0, 0xffffffff],
  INT8: [-0x80, 0x7f],
  INT16: [-0x8000, 0x7fff],
  INT32: [-0x80000000, 0x7fffffff],
};
const BIGINT_RANGES: Partial<Record<V2Datatype, [bigint, bigint]>> = {
  UINT64: [0n, 2n ** 64n - 1n],
  INT64: [-(2n ** 63n), 2n ** 63n - 1n],
};

function allocate(datatype: V2Datatype, count: number): TensorData {
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(count);
    case 'INT8':
      return new Int8Array(count);
    case 'UINT16':
    case 'FP16':
      return new Uint16Array(count);
    case 'INT16':
      return new Int16Array(count);
    case 'UINT32':
      return new Uint32Array(count);
    case 'INT32':
      return new Int32Array(count);
    case 'UINT64':
      return new BigUint64Array(count);
    case 'INT64':
      return new BigInt64Array(count);
    case 'FP32':
      return new Float32Array(count);
    case 'FP64':
      return new Float64Array(count);
  }
}

/** A typed array's own bytes (little-endian on every platform onnxruntime-node ships for). */
export function bytesOf(data: ArrayBufferView): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** A tensor of `datatype` over a copy of `bytes` (copied so the typed array is aligned). */
export function tensorFromBytes(datatype: V2Datatype, bytes: Uint8Array): TensorData {
  const data = allocate(datatype, bytes.length / V2_DATATYPES[datatype].bytes);
  new Uint8Array(data.buffer).set(bytes);
  if (datatype === 'BOOL') for (let i = 0; i < data.length; i++) (data as Uint8Array)[i] = data[i] ? 1 : 0;
  return data;
}

/** Element count of a shape (1 for a scalar's []). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function flatten(value: unknown[], out: unknown[]): void {
  for (const v of value) {
    if (Array.isArray(v)) flatten(v, out);
    else out.push(v);
  }
}

/** JSON `data` (flat or nested, row-major) as the datatype's typed array; every bad element is a V2Error. */
export function tensorFromJson(name: string, datatype: V2Datatype, count: number, data: unknown[]): TensorData {
  const flat: unknown[] = [];
  flatten(data, flat);
  if (flat.length !== count) {
    throw new V2Error(`Input "${name}": data has ${flat.length} elements but its shape holds ${count}.`);
  }
  const out = allocate(datatype, count);
  const bad = (i: number, what: string): never => {
    throw new V2Error(`Input "${name}": data[${i}] is ${JSON.stringify(String(flat[i]))}; ${datatype} needs ${what}.`);
  };
  const range = INTEGER_RANGES[datatype];
  const bigRange = BIGINT_RANGES[datatype];
  for (let i = 0; i < count; i++) {
    const v = flat[i];
    if (datatype === 'BOOL') {
      if (typeof v !== 'boolean') bad(i, 'true or false');
      (out as Uint8Array)[i] = v ? 1 : 0;
    } else if (range) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) {
        bad(i, `an integer in [${range[0]}, ${range[1]}]`);
      }
      out[i] = v as number;
    } else if (bigRange) {
      const big = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : undefined;
      if (big === undefined || big < bigRange[0] || big > bigRange[1]) {
        bad(i, `an integer in [${bigRange[0]}, ${bigRange[1]}]`);
      }
      out[i] = big!;
    } else {
      if (typeof v !== 'number') bad(i, 'a number');
      out[i] = datatype === 'FP16' ? float16Bits(v as number) : (v as number);
    }
  }
  return out;
}

/** The tensor's elements as JSON values: booleans, numbers, or raw JSON for 64-bit integers (exact). */
export function tensorToJson(datatype: V2Datatype, data: ArrayBufferView): unknown[] {
  const bytes = bytesOf(data);
  const typed = tensorFromBytes(datatype, bytes);
  if (datatype === 'BOOL') return Array.from(typed as Uint8Array, (b) => b !== 0);
  if (datatype === 'FP16') return Array.from(typed as Uint16Array, float16Value);
  if (typed instanceof BigInt64Array || typed instanceof BigUint64Array) {
    return Array.from(typed, (b) => rawJson(b.toString()));
  }
  return Array.from(typed as Float64Array);
}

const rawJson = (JSON as unknown as { rawJSON(this: void, text: string): unknown }).rawJSON;

/** JSON.parse keeping integers beyond 2^53 exact, as BigInt (for INT64/UINT64 data). */
export function parseJson(text: string): unknown {
  return JSON.parse(text, function (this: unknown, _key: string, value: unknown, context?: { source?: string }) {
    const source = context?.source;
    if (typeof value === 'number' && !Number.isSafeInteger(value) && source && /^-?\d+$/.test(source)) {
      return BigInt(source);
    }
    return value;
  } as (key: string, value: unknown) => unknown);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * An infer request's body: the JSON header (all of it, or its first `headerLength` bytes when the
 * `Inference-Header-Content-Length` header was sent) and the binary tensors after it.
 */
export function parseInferRequest(body: Buffer, headerLength: string | undefined): InferRequest {
  let jsonEnd = body.length;
  if (headerLength !== undefined) {
    const n = Number(headerLength);
    if (!/^\d+$/.test(headerLength.trim()) || n > body.length) {
      throw new V2Error(
        `Inference-Header-Content-Length is ${JSON.stringify(headerLength)} but the body has ${body.length} bytes; ` +
          'send the JSON header length in bytes.',
      );
    }
    jsonEnd = n;
  }
  let request: unknown;
  try {
    request = parseJson(body.subarray(0, jsonEnd).toString('utf8'));
  } catch (err) {
    const hint = headerLength === undefined ? ' (binary tensors need the Inference-Header-Content-Length header)' : '';
    throw new V2Error(`The request header is not valid JSON${hint}: ${(err as Error).message}.`);
  }
  if (!isObject(request)) throw new V2Error('The request must be a JSON object with "inputs".');
  if (!Array.isArray(request.inputs) || request.inputs.length === 0) {
    throw new V2Error('The request needs "inputs": [{"name", "shape", "datatype", "data"}, …].');
  }
  const binary = body.subarray(jsonEnd);
  let offset = 0;
  const seen = new Set<string>();
  const inputs = request.inputs.map((input: unknown, i): V2Tensor => {
    if (!isObject(input) || typeof input.name !== 'string' || input.name === '') {
      throw new V2Error(`inputs[${i}] needs a "name".`);
    }
    const name = input.name;
    if (seen.has(name)) throw new V2Error(`Input "${name}" is given twice.`);
    seen.add(name);
    const datatype = input.datatype;
    if (!isV2Datatype(datatype)) {
      throw new V2Error(
        `Input "${name}": datatype ${JSON.stringify(datatype)} is not supported; use one of ${Object.keys(V2_DATATYPES).join(', ')}.`,
      );
    }
    if (!Array.isArray(input.shape) || !input.shape.every(isCount)) {
      throw new V2Error(`Input "${name}": "shape" must be an array of non-negative integers.`);
    }
    const shape = input.shape;
    const count = elementCount(shape);
    const parameters = input.parameters === undefined ? {} : input.parameters;
    if (!isObject(parameters)) throw new V2Error(`Input "${name}": "parameters" must be an object.`);
    const size = parameters.binary_data_size;
    if (size !== undefined) {
      if (input.data !== undefined) throw new V2Error(`Input "${name}" has both "data" and a binary_data_size.`);
      if (!isCount(size)) throw new V2Error(`Input "${name}": binary_data_size must be a non-negative integer.`);
      const expected = count * V2_DATATYPES[datatype].bytes;
      if (size !== expected) {
        throw new V2Error(
          `Input "${name}": binary_data_size is ${size} bytes but shape [${shape.join(', ')}] of ${datatype} is ${expected}.`,
        );
      }
      if (offset + size > binary.length) {
        throw new V2Error(
          `Input "${name}": the body ends ${offset + size - binary.length} bytes short of its binary data.`,
        );
      }
      const data = tensorFromBytes(datatype, binary.subarray(offset, offset + size));
      offset += size;
      return { name, datatype, shape, data };
    }
    if (!Array.isArray(input.data)) {
      throw new V2Error(`Input "${name}" needs "data" (an array) or parameters.binary_data_size.`);
    }
    return { name, datatype, shape, data: tensorFromJson(name, datatype, count, input.data) };
  });
  if (offset !== binary.length) {
    throw new V2Error(
      `The body has ${binary.length - offset} bytes after the JSON header that no input's binary_data_size accounts for.`,
    );
  }
  const parameters = request.parameters === undefined ? {} : request.parameters;
  if (!isObject(parameters)) throw new V2Error('The request\'s "parameters" must be an object.');
  const result: InferRequest = { inputs, binaryOutputs: parameters.binary_data_output === true };
  if (request.id !== undefined) {
    if (typeof request.id !== 'string') throw new V2Error('"id" must be a string.');
    result.id = request.id;
  }
  if (request.outputs !== undefined) {
    if (!Array.isArray(request.outputs)) throw new V2Error('"outputs" must be an array of {"name"}.');
    const names = new Set<string>();
    result.outputs = request.outputs.map((output: unknown, i): RequestedOutput => {
      if (!isObject(output) || typeof output.name !== 'string') throw new V2Error(`outputs[${i}] needs a "name".`);
      if (names.has(output.name)) throw new V2Error(`Output "${output.name}" is asked for twice.`);
      names.add(output.name);
      const params = output.parameters;
      if (params !== undefined && !isObject(params)) {
        throw new V2Error(`Output "${output.name}": "parameters" must be an object.`);
      }
      const wantsBinary = params?.binary_data;
      return { name: output.name, binary: wantsBinary === undefined ? result.binaryOutputs : wantsBinary === true };
    });
  }
  return result;
}

export interface OutputTensor {
  name: string;
  datatype: V2Datatype;
  shape: readonly number[];
  data: ArrayBufferView;
  binary: boolean;
}

export interface EncodedResponse {
  body: Buffer;
  /** Bytes of JSON at the start of the body when binary outputs follow it; undefined for plain JSON. */
  headerLength?: number;
}

/** The infer response: JSON outputs inline, binary ones after the JSON header, in order. */
export function encodeInferResponse(
  modelName: string,
  id: string | undefined,
  outputs: OutputTensor[],
): EncodedResponse {
  const blobs: Buffer[] = [];
  const header = {
    model_name: modelName,
    model_version: '1',
    ...(id !== undefined ? { id } : {}),
    outputs: outputs.map((o) => {
      const base = { name: o.name, datatype: o.datatype, shape: [...o.shape] };
      if (!o.binary) return { ...base, data: tensorToJson(o.datatype, o.data) };
      const bytes =
        o.datatype === 'BOOL' ? Buffer.from(tensorFromBytes('BOOL', bytesOf(o.data)).buffer) : bytesOf(o.data);
      blobs.push(bytes);
      return { ...base, parameters: { binary_data_size: bytes.length } };
    }),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (blobs.length === 0) return { body: json };
  return { body: Buffer.concat([json, ...blobs]), headerLength: json.length };
}
