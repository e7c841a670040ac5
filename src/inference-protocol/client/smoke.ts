/**
 * The Open Inference Protocol smoke query's checks, pure (no HTTP): a request file checked against the
 * model's inputs and an expected-outputs file against its outputs, every problem at once (what validate
 * reports before anything is created); an infer answer decoded, JSON or binary; and the answer compared
 * with the expectation, each difference named by tensor and element.
 *
 * Expected outputs are written like a V2 answer (a saved one works as it is):
 *   {"outputs": [{"name": "sum", "datatype": "FP32", "shape": [1, 3], "data": [1.5, 2, 3]}]}
 * `datatype` and `shape` are optional and, when given, must match the answer's; `data` is flat or nested.
 * Floating-point elements pass when |answer − expected| ≤ tolerance × max(1, |expected|) (NaN matches
 * NaN); integers and BOOL must be equal.
 */
import type { ModelSignature, TensorSignature } from '../../model/model-signature';
import {
  V2_DATATYPES,
  elementCount,
  float16Value,
  isV2Datatype,
  parseInferRequest,
  parseJson,
  tensorFromBytes,
} from '../tensors';

export type Element = number | bigint | boolean;

export interface ExpectedTensor {
  name: string;
  datatype?: string;
  shape?: number[];
  data: Element[];
}

export interface AnswerTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: Element[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isShape = (v: unknown): v is number[] =>
  Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0);
const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;
const fits = (spec: readonly number[], shape: readonly number[]) =>
  spec.length === shape.length && spec.every((d, i) => d === -1 || d === shape[i]);
const namesOf = (tensors: readonly TensorSignature[]) => tensors.map((t) => `"${t.name}"`).join(', ');
const rawJson = (JSON as unknown as { rawJSON(this: void, text: string): unknown }).rawJSON;
/** A codec message as one item of a list: no capital-letter start is changed, the final period dropped. */
const item = (err: unknown) => (err instanceof Error ? err.message : String(err)).replace(/\.$/, '');

function parse(text: string): { value?: unknown; problem?: string } {
  try {
    return { value: parseJson(text) };
  } catch (err) {
    return { problem: `it is not valid JSON (${item(err)})` };
  }
}

function flatten(value: unknown, out: unknown[]): void {
  if (Array.isArray(value)) for (const v of value) flatten(v, out);
  else out.push(value);
}

/** Every problem of a V2 infer request (its JSON text) for this model; empty when it can be sent as it is. */
export function smokeRequestProblems(text: string, model: ModelSignature): string[] {
  const { value: request, problem } = parse(text);
  if (problem) return [problem];
  if (!isObject(request) || !Array.isArray(request.inputs) || request.inputs.length === 0) {
    return ['it needs "inputs": [{"name", "datatype", "shape", "data"}, …]'];
  }
  const problems: string[] = [];
  const byName = new Map(model.inputs.map((i) => [i.name, i]));
  const given = new Set<string>();
  for (const input of request.inputs as unknown[]) {
    // The server's own codec, one input at a time, so that each input's problem is reported.
    try {
      const one = JSON.stringify({ inputs: [input] }, (_k, v: unknown) =>
        typeof v === 'bigint' ? rawJson(v.toString()) : v,
      );
      parseInferRequest(Buffer.from(one), undefined);
    } catch (err) {
      problems.push(item(err));
    }
    if (!isObject(input) || typeof input.name !== 'string' || input.name === '') continue;
    const name = input.name;
    if (given.has(name)) {
      problems.push(`Input "${name}" is given twice`);
      continue;
    }
    given.add(name);
    const spec = byName.get(name);
    if (!spec) {
      problems.push(`the model has no input "${name}" (it takes ${namesOf(model.inputs)})`);
      continue;
    }
    if (isV2Datatype(input.datatype) && input.datatype !== spec.datatype) {
      problems.push(`input "${name}" is ${input.datatype} but the model takes ${spec.datatype ?? 'a non-tensor'}`);
    }
    if (isShape(input.shape) && !fits(spec.shape, input.shape)) {
      problems.push(
        `input "${name}" has shape ${shapeText(input.shape)} but the model takes ${shapeText(spec.shape)} (-1: any size)`,
      );
    }
  }
  const missing = model.inputs.filter((i) => !given.has(i.name));
  if (missing.length > 0)
    problems.push(`it lacks input ${namesOf(missing)} (the model takes ${namesOf(model.inputs)})`);
  if (Array.isArray(request.outputs)) {
    for (const output of request.outputs as unknown[]) {
      const name = isObject(output) ? output.name : undefined;
      if (typeof name === 'string' && !model.outputs.some((o) => o.name === name)) {
        problems.push(`it asks for output "${name}", which the model lacks (it has ${namesOf(model.outputs)})`);
      }
    }
  }
  if (problems.length === 0) {
    // What only the whole request shows: its parameters, id and outputs list.
    try {
      parseInferRequest(Buffer.from(text), undefined);
    } catch (err) {
      problems.push(item(err));
    }
  }
  return problems;
}

/** The outputs a request lists by name (undefined: it asks for all of them). */
export function requestedOutputs(text: string): string[] | undefined {
  const request = parse(text).value;
  if (!isObject(request) || !Array.isArray(request.outputs)) return undefined;
  return (request.outputs as unknown[]).flatMap((o) => (isObject(o) && typeof o.name === 'string' ? [o.name] : []));
}

/**
 * The expected outputs of an expectation file, and every problem with it. With the model's signature
 * (at validate), names, datatypes and shapes are checked against the model's outputs and the request's.
 */
export function parseExpectedOutputs(
  text: string,
  model?: ModelSignature,
  requested?: string[],
): { expected: ExpectedTensor[]; problems: string[] } {
  const { value, problem } = parse(text);
  if (problem) return { expected: [], problems: [problem] };
  if (!isObject(value) || !Array.isArray(value.outputs) || value.outputs.length === 0) {
    return { expected: [], problems: ['it needs "outputs": [{"name", "data"[, "datatype", "shape"]}, …]'] };
  }
  const problems: string[] = [];
  const expected: ExpectedTensor[] = [];
  const seen = new Set<string>();
  (value.outputs as unknown[]).forEach((output, i) => {
    if (!isObject(output) || typeof output.name !== 'string' || output.name === '') {
      problems.push(`outputs[${i}] needs a "name"`);
      return;
    }
    const name = output.name;
    if (seen.has(name)) problems.push(`output "${name}" is given twice`);
    seen.add(name);
    const spec = model?.outputs.find((o) => o.name === name);
    if (model && !spec) problems.push(`the model has no output "${name}" (it has ${namesOf(model.outputs)})`);
    if (spec && requested && !requested.includes(name)) {
      problems.push(`output "${name}" is not among the outputs the request asks for (${requested.join(', ')})`);
    }
    const { datatype, shape } = output;
    if (datatype !== undefined && !isV2Datatype(datatype)) {
      problems.push(`output "${name}": datatype ${JSON.stringify(datatype)} is not a V2 datatype this server returns`);
    } else if (datatype !== undefined && spec && datatype !== spec.datatype) {
      problems.push(
        `output "${name}" is expected as ${datatype} but the model returns ${spec.datatype ?? 'a non-tensor'}`,
      );
    }
    if (shape !== undefined && !isShape(shape))
      problems.push(`output "${name}": "shape" must be non-negative integers`);
    else if (shape !== undefined && spec && !fits(spec.shape, shape)) {
      problems.push(
        `output "${name}" is expected with shape ${shapeText(shape)} but the model returns ${shapeText(spec.shape)} (-1: any size)`,
      );
    }
    if (!Array.isArray(output.data)) {
      problems.push(`output "${name}" needs "data" (an array; binary outputs cannot be expected)`);
      return;
    }
    const data: unknown[] = [];
    flatten(output.data, data);
    const bad = data.findIndex((v) => typeof v !== 'number' && typeof v !== 'bigint' && typeof v !== 'boolean');
    if (bad >= 0)
      problems.push(`output "${name}": data[${bad}] is ${JSON.stringify(data[bad])}, not a number or boolean`);
    if (isShape(shape) && elementCount(shape) !== data.length) {
      problems.push(
        `output "${name}": data has ${data.length} elements but shape ${shapeText(shape)} holds ${elementCount(shape)}`,
      );
    }
    expected.push({
      name,
      ...(typeof datatype === 'string' ? { datatype } : {}),
      ...(isShape(shape) ? { shape } : {}),
      data: data as Element[],
    });
  });
  return { expected, problems };
}

/** The elements of a binary tensor, as JSON values would be (FP16 as numbers, 64-bit integers as bigint). */
function elementsOf(datatype: string, bytes: Uint8Array): Element[] {
  if (!isV2Datatype(datatype)) throw new Error(`output datatype ${JSON.stringify(datatype)} is not a V2 datatype`);
  if (bytes.length % V2_DATATYPES[datatype].bytes !== 0) {
    throw new Error(`${bytes.length} bytes are not a whole number of ${datatype} elements`);
  }
  const typed = tensorFromBytes(datatype, bytes);
  if (datatype === 'BOOL') return Array.from(typed as Uint8Array, (b) => b !== 0);
  if (datatype === 'FP16') return Array.from(typed as Uint16Array, float16Value);
  return Array.from(typed as ArrayLike<number | bigint>);
}

/** An infer answer's outputs, JSON or binary (`headerLength`: its Inference-Header-Content-Length); throws an Error saying what is wrong. */
export function decodeInferResponse(body: Buffer, headerLength: string | null): AnswerTensor[] {
  const jsonEnd = headerLength === null ? body.length : Number(headerLength);
  if (!Number.isSafeInteger(jsonEnd) || jsonEnd < 0 || jsonEnd > body.length) {
    throw new Error(`Inference-Header-Content-Length ${headerLength} does not fit a body of ${body.length} bytes`);
  }
  const { value, problem } = parse(body.subarray(0, jsonEnd).toString('utf8'));
  if (problem) throw new Error(problem);
  if (!isObject(value) || !Array.isArray(value.outputs)) throw new Error('it has no "outputs" array');
  let offset = jsonEnd;
  return (value.outputs as unknown[]).map((output, i) => {
    if (!isObject(output) || typeof output.name !== 'string' || typeof output.datatype !== 'string') {
      throw new Error(`outputs[${i}] lacks a name or a datatype`);
    }
    const { name, datatype } = output;
    if (!isShape(output.shape)) throw new Error(`output "${name}" has no valid shape`);
    const size = isObject(output.parameters) ? output.parameters.binary_data_size : undefined;
    let data: Element[];
    if (typeof size === 'number') {
      if (offset + size > body.length) throw new Error(`output "${name}": the body ends before its ${size} bytes`);
      data = elementsOf(datatype, body.subarray(offset, offset + size));
      offset += size;
    } else {
      const flat: unknown[] = [];
      flatten(output.data, flat);
      data = flat as Element[];
    }
    if (data.length !== elementCount(output.shape)) {
      throw new Error(`output "${name}" has ${data.length} elements but shape ${shapeText(output.shape)}`);
    }
    return { name, datatype, shape: output.shape, data };
  });
}

/** Row-major element `i` of `shape` as an index: 5 of [2, 3] is [1, 2]. */
function indexOf(i: number, shape: readonly number[]): string {
  const index: number[] = [];
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    const size = shape[axis]!;
    index.unshift(i % size);
    i = Math.floor(i / size);
  }
  return shapeText(index);
}

const FLOATS = new Set(['FP16', 'FP32', 'FP64']);
/** A difference in six significant digits: 0.015, not 0.014999999999986358. */
const short = (n: number) => String(Number(n.toPrecision(6)));

/** How far `answer` is from `expected`: 0 when equal, Infinity for a type clash or NaN against a number. */
function difference(answer: Element, expected: Element): number {
  if (typeof answer === 'boolean' || typeof expected === 'boolean') {
    return Number(answer) === Number(expected) ? 0 : Infinity;
  }
  if (typeof answer === 'bigint' || typeof expected === 'bigint') {
    const [a, e] = [BigInt(answer), BigInt(expected)];
    return Number(a > e ? a - e : e - a);
  }
  if (Number.isNaN(answer) || Number.isNaN(expected))
    return Number.isNaN(answer) && Number.isNaN(expected) ? 0 : Infinity;
  return answer === expected ? 0 : Math.abs(answer - expected);
}

export interface Comparison {
  /** One message per output that does not match, naming it, the element and the difference. */
  mismatches: string[];
  /** Each compared output's largest difference. */
  maxDifference: Map<string, number>;
}

/** Compares the answer with the expectation; a tensor the answer lacks is a mismatch too. */
export function compareOutputs(answer: AnswerTensor[], expected: ExpectedTensor[], tolerance: number): Comparison {
  const mismatches: string[] = [];
  const maxDifference = new Map<string, number>();
  for (const want of expected) {
    const got = answer.find((a) => a.name === want.name);
    if (!got) {
      mismatches.push(
        `output "${want.name}" is missing from the answer (it has ${answer.map((a) => a.name).join(', ')})`,
      );
      continue;
    }
    if (want.datatype !== undefined && want.datatype !== got.datatype) {
      mismatches.push(`output "${want.name}" is ${got.datatype}, expected ${want.datatype}`);
      continue;
    }
    const shapeDiffers = want.shape !== undefined && shapeText(want.shape) !== shapeText(got.shape);
    if (shapeDiffers || want.data.length !== got.data.length) {
      const expectedShape = want.shape ? shapeText(want.shape) : `${want.data.length} elements`;
      mismatches.push(`output "${want.name}" has shape ${shapeText(got.shape)}, expected ${expectedShape}`);
      continue;
    }
    const float = FLOATS.has(got.datatype);
    let worst = 0;
    let failed = 0;
    let first: string | undefined;
    got.data.forEach((a, i) => {
      const e = want.data[i]!;
      const diff = difference(a, e);
      worst = Math.max(worst, diff);
      const allowed = float && typeof e === 'number' ? tolerance * Math.max(1, Math.abs(e)) : 0;
      if (diff > allowed) {
        failed++;
        first ??=
          `at ${indexOf(i, got.shape)}: it answered ${String(a)}, expected ${String(e)} ` +
          `(difference ${short(diff)}${float ? `, allowed ${short(allowed)}` : ', must be equal'})`;
      }
    });
    maxDifference.set(want.name, worst);
    if (first) {
      mismatches.push(
        `output "${want.name}" differs ${first}; ${failed} of ${got.data.length} elements differ, the largest by ${short(worst)}`,
      );
    }
  }
  return { mismatches, maxDifference };
}
