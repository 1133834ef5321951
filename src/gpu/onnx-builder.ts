/**
 * A small typed builder over onnx-proto for the graphs latentgate makes in-process
 * (tiny autoencoders, test models). Weights become initializers, inline or, as big exports
 * store them, in an external data file beside the model.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
export const OPSET = 13;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const INT32 = onnx.TensorProto.DataType.INT32;

/** Element types of graph inputs, outputs and initializers. */
export type ElementType = 'float32' | 'int64' | 'int32';
const DATA_TYPES: Record<ElementType, number> = { float32: FLOAT, int64: INT64, int32: INT32 };

/** A dimension: a fixed size, or a symbolic name (`batch_size`). */
export type Dim = number | string;

/** A graph input or output of any element type and rank (`dims: []` is a scalar). */
export interface ValueSpec {
  name: string;
  /** float32 unless given. */
  type?: ElementType;
  dims: Dim[];
}

/** Where initializers go when stored outside the model, as exports over 2 GB must. */
export interface ExternalDataOptions {
  /** The data file's name, relative to the model's folder (optimum: `model.onnx_data`). */
  location: string;
}

/** A serialized model and, when its initializers are external, the data file it refers to. */
export interface BuiltModel {
  model: Uint8Array;
  external?: { location: string; data: Uint8Array };
}

type Initializer = InstanceType<typeof onnx.TensorProto>;

type AttributeValue = number | number[] | string | { float: number };

export class GraphBuilder {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: Initializer[] = [];
  private counter = 0;

  /** A fresh value name with a readable prefix. */
  name(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** An initializer whose element type follows the array's (float32, int32 or int64); `dims: []` is a scalar. */
  constant(name: string, dims: number[], values: Float32Array | Int32Array | BigInt64Array): string {
    const dataType = values instanceof Float32Array ? FLOAT : values instanceof Int32Array ? INT32 : INT64;
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType,
        rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      }),
    );
    return name;
  }

  /** A float32 scalar initializer. */
  scalar(name: string, value: number): string {
    return this.constant(name, [], new Float32Array([value]));
  }

  /** An int64 vector initializer (shapes, axes). */
  int64Constant(name: string, values: number[]): string {
    return this.constant(name, [values.length], new BigInt64Array(values.map(BigInt)));
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
    const specs = (side: TensorSpec | TensorSpec[], single: string) => {
      const list = Array.isArray(side) ? side : [side];
      return list.map((spec) => nchwSpec(spec, list.length === 1 ? single : spec.name));
    };
    return this.buildModel(specs(input, 'in'), specs(output, 'out'), graphName).model;
  }

  /**
   * Serializes a model with inputs and outputs of any type and shape. With `external`, the float and
   * int32 initializers are written to one data file, back to back, and the model refers to them by
   * location, offset and length; write both with `writeModel`.
   */
  buildModel(inputs: ValueSpec[], outputs: ValueSpec[], graphName: string, external?: ExternalDataOptions): BuiltModel {
    const { initializers, data } = external
      ? externalize(this.initializers, external)
      : { initializers: this.initializers, data: undefined };
    const model = onnx.ModelProto.create({
      irVersion: 7,
      producerName: 'latentgate',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: initializers,
        input: inputs.map(valueInfo),
        output: outputs.map(valueInfo),
      },
    });
    const bytes = onnx.ModelProto.encode(model).finish();
    return external && data ? { model: bytes, external: { location: external.location, data } } : { model: bytes };
  }
}

/** Writes a model to `path` and its external data file, if any, beside it. */
export function writeModel(path: string, built: BuiltModel): void {
  writeFileSync(path, built.model);
  if (built.external) writeFileSync(join(dirname(path), built.external.location), built.external.data);
}

/** Copies of the initializers with their raw data moved into one buffer (undefined when none moved). */
function externalize(
  initializers: Initializer[],
  { location }: ExternalDataOptions,
): { initializers: Initializer[]; data: Uint8Array | undefined } {
  // int64 initializers (shapes, axes) stay inline: onnxruntime's shape inference reads them before external data.
  const moved = initializers.filter((t) => t.dataType !== INT64);
  if (moved.length === 0) return { initializers, data: undefined };
  const data = new Uint8Array(moved.reduce((sum, t) => sum + t.rawData.byteLength, 0));
  let offset = 0;
  const rewritten = initializers.map((t) => {
    if (!moved.includes(t)) return t;
    const length = t.rawData.byteLength;
    data.set(t.rawData, offset);
    const copy = onnx.TensorProto.create({
      name: t.name,
      dims: t.dims,
      dataType: t.dataType,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ],
    });
    offset += length;
    return copy;
  });
  return { initializers: rewritten, data };
}

/** A graph input or output of `build`: float NCHW, `channels` fixed, spatial dims symbolic unless given. */
export interface TensorSpec {
  name: string;
  channels: number;
  spatial?: [number, number];
}

function nchwSpec(spec: TensorSpec, prefix: string): ValueSpec {
  const spatial = spec.spatial ?? [`${prefix}_height`, `${prefix}_width`];
  return { name: spec.name, dims: ['batch', spec.channels, ...spatial] };
}

function valueInfo(spec: ValueSpec) {
  const dim = spec.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return onnx.ValueInfoProto.create({
    name: spec.name,
    type: { tensorType: { elemType: DATA_TYPES[spec.type ?? 'float32'], shape: { dim } } },
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
