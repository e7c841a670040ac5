/**
 * A small builder for ONNX graphs over the protobuf classes of `onnx-proto`: float and int64
 * initializers, nodes, typed inputs/outputs/value infos (with named dynamic dimensions), opset 17 and
 * metadata props. Enough to write real models here, since no model hub is reachable.
 *
 *   const g = new GraphBuilder('example');
 *   const x = g.input('image', ['batch', 3, 64, 64]);
 *   g.node('Relu', [x], {}, 'y');
 *   g.output('y', ['batch', 3, 64, 64]);
 *   const bytes = g.build({ 'inferctl.labels': '[]' });
 */
import { onnx } from 'onnx-proto';

export const OPSET = 17;
/** IR version 8 goes with opset 17 (ONNX 1.12+); every onnxruntime since 1.12 reads it. */
const IR_VERSION = 8;

/** A dimension: a fixed size, or the name of a dynamic one ('batch'). */
export type Dim = number | string;
/**
 * Attribute values: an integer is INT, any other number FLOAT, an array INTS, a string STRING.
 * A FLOAT that happens to be whole (alpha = 1) is written `{ float: 1 }`.
 */
export type AttrValue = number | number[] | string | { float: number };

export const ElemType = onnx.TensorProto.DataType;

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly valueInfos: onnx.IValueInfoProto[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  /** A unique value name with a readable prefix. */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  input(name: string, dims: Dim[], elemType: onnx.TensorProto.DataType = ElemType.FLOAT): string {
    this.inputs.push(valueInfo(name, dims, elemType));
    return name;
  }

  output(name: string, dims: Dim[], elemType: onnx.TensorProto.DataType = ElemType.FLOAT): string {
    this.outputs.push(valueInfo(name, dims, elemType));
    return name;
  }

  /** Declares the type and shape of an intermediate value (optional; helps readers and tools). */
  valueInfo(name: string, dims: Dim[], elemType: onnx.TensorProto.DataType = ElemType.FLOAT): string {
    this.valueInfos.push(valueInfo(name, dims, elemType));
    return name;
  }

  /** A float32 initializer, stored as raw little-endian bytes. */
  weight(prefix: string, dims: number[], values: Float32Array): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (values.length !== expected) throw new Error(`${prefix}: ${values.length} values for dims [${dims.join(', ')}]`);
    const name = this.fresh(prefix);
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    this.initializers.push({ name, dims, dataType: ElemType.FLOAT, rawData: bytes });
    return name;
  }

  /** An int64 initializer (shapes for Reshape and the like). */
  int64(prefix: string, values: number[]): string {
    const name = this.fresh(prefix);
    this.initializers.push({ name, dims: [values.length], dataType: ElemType.INT64, int64Data: values });
    return name;
  }

  /** Adds a node with one output (named `output`, or a fresh name); returns the output's name. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output ?? this.fresh(opType.toLowerCase());
    this.nodes.push({
      opType,
      input: inputs,
      output: [out],
      name: this.fresh(`${opType}_node`),
      attribute: Object.entries(attrs).map(([name, value]) => attribute(name, value)),
    });
    return out;
  }

  /** Serialises the model with the given metadata props (see metadata.ts). */
  build(metadata: Record<string, string> = {}): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'inferctl',
      producerVersion: '0.1.0',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
        valueInfo: this.valueInfos,
      },
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, dims: Dim[], elemType: onnx.TensorProto.DataType): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttrValue): onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: Buffer.from(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if (typeof value === 'object') return { name, type: AttributeType.FLOAT, f: value.float };
  if (Number.isInteger(value)) return { name, type: AttributeType.INT, i: value };
  return { name, type: AttributeType.FLOAT, f: value };
}
