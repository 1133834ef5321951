/**
 * A small typed builder over onnx-proto for the graphs latentgate makes in-process
 * (tiny autoencoders, test models). Weights become float32 initializers.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
export const OPSET = 13;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

type AttributeValue = number | number[] | string | { float: number };

export class GraphBuilder {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private counter = 0;

  /** A fresh value name with a readable prefix. */
  name(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  constant(name: string, dims: number[], values: Float32Array): string {
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType: FLOAT,
        rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      }),
    );
    return name;
  }

  int64Constant(name: string, values: number[]): string {
    const data = new BigInt64Array(values.map(BigInt));
    this.initializers.push(
      onnx.TensorProto.create({ name, dims: [values.length], dataType: INT64, rawData: new Uint8Array(data.buffer) }),
    );
    return name;
  }

  node(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, outputName?: string): string {
    const output = outputName ?? this.name(opType.toLowerCase());
    const attribute = Object.entries(attributes).map(([name, value]) => {
      if (typeof value === 'string')
        return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(value) };
      if (typeof value === 'number') return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
      if (Array.isArray(value)) return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: value };
      return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value.float };
    });
    this.nodes.push(
      onnx.NodeProto.create({ opType, input: inputs, output: [output], name: this.name(opType), attribute }),
    );
    return output;
  }

  /**
   * Serializes a model whose inputs and outputs are float NCHW tensors with a symbolic batch. One
   * spec or a list per side; a spec's spatial dims are symbolic (`{prefix}_height`, prefix `in` /
   * `out` for a single tensor, else its name) unless `spatial` fixes them (e.g. [1, 1] for
   * per-channel statistics).
   */
  build(input: TensorSpec | TensorSpec[], output: TensorSpec | TensorSpec[], graphName: string): Uint8Array {
    const valueInfos = (specs: TensorSpec | TensorSpec[], single: string) => {
      const list = Array.isArray(specs) ? specs : [specs];
      return list.map((spec) => valueInfo(spec, list.length === 1 ? single : spec.name));
    };
    const model = onnx.ModelProto.create({
      irVersion: 7,
      producerName: 'latentgate',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: valueInfos(input, 'in'),
        output: valueInfos(output, 'out'),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** A graph input or output: float NCHW, `channels` fixed, spatial dims symbolic unless given. */
export interface TensorSpec {
  name: string;
  channels: number;
  spatial?: [number, number];
}

function valueInfo(spec: TensorSpec, prefix: string) {
  const spatial = spec.spatial
    ? spec.spatial.map((dimValue) => ({ dimValue }))
    : [{ dimParam: `${prefix}_height` }, { dimParam: `${prefix}_width` }];
  return onnx.ValueInfoProto.create({
    name: spec.name,
    type: {
      tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: spec.channels }, ...spatial] } },
    },
  });
}

/**
 * A 1x1 identity convolution, input `x`, output `y`, one channel: the smallest graph that proves a
 * provider can load and run, or starts the runtime before a measurement.
 */
export function identityGraph(name: string): Uint8Array {
  const g = new GraphBuilder();
  g.node('Conv', ['x', g.constant('w', [1, 1, 1, 1], new Float32Array([1]))], { kernel_shape: [1, 1] }, 'y');
  return g.build({ name: 'x', channels: 1 }, { name: 'y', channels: 1 }, name);
}
