/**
 * A model that is not an image classifier, for the Open Inference Protocol tests: six inputs of six
 * datatypes, each with a dynamic batch axis, and outputs that are simple enough to compute here too.
 *   a INT64 [batch,3], b FP32 [batch,3]   → sum FP32 = float(a) + b,  neg INT64 = -a
 *   h FP16 [batch,2]                      → square FP16 = h · h
 *   u UINT8 [batch,2], i INT32 [batch,2]  → isum INT32 = int32(u) + i
 *   flag BOOL [batch,2]                   → not BOOL = !flag
 */
import { ElemType, GraphBuilder } from '../../src/model/onnx-builder';

export function buildMultiInputModel(): Uint8Array {
  const g = new GraphBuilder('v2-multi-input');
  const a = g.input('a', ['batch', 3], ElemType.INT64);
  const b = g.input('b', ['batch', 3], ElemType.FLOAT);
  const h = g.input('h', ['batch', 2], ElemType.FLOAT16);
  const u = g.input('u', ['batch', 2], ElemType.UINT8);
  const i = g.input('i', ['batch', 2], ElemType.INT32);
  const flag = g.input('flag', ['batch', 2], ElemType.BOOL);
  g.node('Add', [g.node('Cast', [a], { to: ElemType.FLOAT }), b], {}, 'sum');
  g.node('Neg', [a], {}, 'neg');
  g.node('Mul', [h, h], {}, 'square');
  g.node('Add', [g.node('Cast', [u], { to: ElemType.INT32 }), i], {}, 'isum');
  g.node('Not', [flag], {}, 'not');
  g.output('sum', ['batch', 3], ElemType.FLOAT);
  g.output('neg', ['batch', 3], ElemType.INT64);
  g.output('square', ['batch', 2], ElemType.FLOAT16);
  g.output('isum', ['batch', 2], ElemType.INT32);
  g.output('not', ['batch', 2], ElemType.BOOL);
  return g.build();
}

/**
 * One row for each of the six inputs of the multi-input model (a V2 infer request body), and what the
 * model answers to it: a smoke request and its expected outputs.
 */
export const MULTI_INPUT_REQUEST = {
  inputs: [
    { name: 'a', datatype: 'INT64', shape: [1, 3], data: [1, 2, 3] },
    { name: 'b', datatype: 'FP32', shape: [1, 3], data: [0.5, 0.25, -1] },
    { name: 'h', datatype: 'FP16', shape: [1, 2], data: [1.5, -2] },
    { name: 'u', datatype: 'UINT8', shape: [1, 2], data: [200, 7] },
    { name: 'i', datatype: 'INT32', shape: [1, 2], data: [-100, 3] },
    { name: 'flag', datatype: 'BOOL', shape: [1, 2], data: [true, false] },
  ],
};
export const MULTI_INPUT_ANSWER = {
  outputs: [
    { name: 'sum', datatype: 'FP32', shape: [1, 3], data: [1.5, 2.25, 2] },
    { name: 'neg', datatype: 'INT64', shape: [1, 3], data: [-1, -2, -3] },
    { name: 'square', datatype: 'FP16', shape: [1, 2], data: [2.25, 4] },
    { name: 'isum', data: [[100, 10]] },
    { name: 'not', data: [false, true] },
  ],
};
