/**
 * A model version with a bug that only real traffic finds: the demo colour classifier plus a branch whose
 * inference fails (onnxruntime: "cannot reshape") on any batch holding an image with a bright green
 * channel. The red smoke sample passes; a green image is a 500 from the scoring server. Same labels,
 * preprocessing and metadata as the demo model, so validation accepts it.
 *
 *   image → Slice(channel 1) → ReduceMax → Less(0) → Reshape[1] → NonZero → Reshape[1]   (fails when 0 found)
 *         → Cast → Mul(0) → Add to the probabilities
 */
import { onnx } from 'onnx-proto';

import { buildTinyCnn } from '../../src/demo/tiny-cnn';

export function buildGreenFailingCnn(): Uint8Array {
  const model = onnx.ModelProto.decode(buildTinyCnn());
  const graph = model.graph!;
  const last = graph.node!.find((n) => n.output?.includes('probabilities'))!;
  last.output = ['probabilities_ok'];
  graph.name = 'inferctl-tiny-colour-cnn-green-bug';
  const int64 = (name: string, values: number[]) =>
    graph.initializer!.push({
      name,
      dims: [values.length],
      dataType: onnx.TensorProto.DataType.INT64,
      int64Data: values,
    });
  int64('bug_one', [1]);
  int64('bug_two', [2]);
  int64('bug_shape', [1]);
  graph.initializer!.push({
    name: 'bug_zero',
    dims: [1],
    dataType: onnx.TensorProto.DataType.FLOAT,
    floatData: [0],
  });
  const node = (opType: string, input: string[], output: string, attribute: onnx.IAttributeProto[] = []) =>
    graph.node!.push({ opType, input, output: [output], name: `${output}_node`, attribute });
  node('Slice', ['image', 'bug_one', 'bug_two', 'bug_one'], 'bug_green');
  node('ReduceMax', ['bug_green'], 'bug_max', [
    { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 },
  ]);
  node('Less', ['bug_max', 'bug_zero'], 'bug_dark');
  node('Reshape', ['bug_dark', 'bug_shape'], 'bug_flag');
  node('NonZero', ['bug_flag'], 'bug_found');
  node('Reshape', ['bug_found', 'bug_shape'], 'bug_one_found');
  node('Cast', ['bug_one_found'], 'bug_float', [
    { name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: onnx.TensorProto.DataType.FLOAT },
  ]);
  node('Mul', ['bug_float', 'bug_zero'], 'bug_nothing');
  node('Add', ['probabilities_ok', 'bug_nothing'], 'probabilities');
  return onnx.ModelProto.encode(model).finish();
}
