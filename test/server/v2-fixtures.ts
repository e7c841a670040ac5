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
