/**
 * A graph's declared inputs and outputs, read from an `.onnx` file without reading its weights: the
 * top-level protobuf fields are walked with positioned reads and everything but the graph's `input`
 * and `output` lists is skipped, so a 1.7 GB UNet with inline weights costs a few kilobytes of reads.
 * (onnx-proto's decoder would parse the whole file, initializers included; it still decodes each
 * ValueInfoProto found here.) The loader checks a pipeline folder with this before any session exists;
 * at run time the session's own metadata decides casts (OnnxRuntime.describe).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export interface DeclaredValue {
  name: string;
  /** ONNX element type name: 'float32', 'float16', 'int64', 'int32', ... */
  type: string;
  /** Fixed dims as numbers, symbolic ones as their names (empty for a scalar). */
  shape: (number | string)[];
}

export interface GraphInterface {
  inputs: DeclaredValue[];
  outputs: DeclaredValue[];
}

const ELEMENT_TYPES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  16: 'bfloat16',
};

/** ModelProto.graph, GraphProto.input / .output / .initializer (onnx.proto field numbers). */
const MODEL_GRAPH = 7;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const GRAPH_INITIALIZER = 5;

class FileCursor {
  private readonly fd: number;
  private readonly scratch = Buffer.alloc(10);
  readonly size: number;
  position = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
  }

  close(): void {
    closeSync(this.fd);
  }

  varint(): number {
    const read = readSync(this.fd, this.scratch, 0, 10, this.position);
    let value = 0;
    for (let i = 0; i < read; i++) {
      const byte = this.scratch[i];
      value += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) {
        this.position += i + 1;
        return value;
      }
    }
    throw new Error(`${this.path}: truncated or malformed protobuf at byte ${this.position}`);
  }

  bytes(length: number): Uint8Array {
    const buffer = Buffer.alloc(length);
    if (readSync(this.fd, buffer, 0, length, this.position) !== length)
      throw new Error(`${this.path}: ends inside a field at byte ${this.position}`);
    this.position += length;
    return buffer;
  }

  /** Skips a field's value of wire type `wire`. */
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.position += 8;
    else if (wire === 2) {
      const length = this.varint(); // read first: `position += varint()` would add to the old position
      this.position += length;
    } else if (wire === 5) this.position += 4;
    else throw new Error(`${this.path}: unsupported protobuf wire type ${wire} at byte ${this.position}`);
  }
}

function declared(bytes: Uint8Array): DeclaredValue {
  const info = onnx.ValueInfoProto.decode(bytes);
  const tensor = info.type?.tensorType;
  const type = tensor ? (ELEMENT_TYPES[tensor.elemType ?? 0] ?? `onnx-type-${tensor.elemType}`) : 'non-tensor';
  const shape = (tensor?.shape?.dim ?? []).map((d) =>
    d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? Number(d.dimValue) : '?',
  );
  return { name: info.name ?? '', type, shape };
}

/** The graph's inputs (without initializers listed as inputs, as old exporters did) and outputs. */
export function readGraphInterface(path: string): GraphInterface {
  const cursor = new FileCursor(path);
  try {
    let graphEnd = -1;
    while (graphEnd < 0 && cursor.position < cursor.size) {
      const tag = cursor.varint();
      if (tag >>> 3 === MODEL_GRAPH && (tag & 7) === 2) {
        const length = cursor.varint();
        graphEnd = cursor.position + length;
      } else cursor.skip(tag & 7);
    }
    if (graphEnd < 0) throw new Error(`${path}: no graph in this file (is it an ONNX model?)`);
    const inputs: DeclaredValue[] = [];
    const outputs: DeclaredValue[] = [];
    const initializers = new Set<string>();
    while (cursor.position < graphEnd) {
      const tag = cursor.varint();
      const field = tag >>> 3;
      if ((tag & 7) === 2 && (field === GRAPH_INPUT || field === GRAPH_OUTPUT)) {
        const value = declared(cursor.bytes(cursor.varint()));
        (field === GRAPH_INPUT ? inputs : outputs).push(value);
      } else if ((tag & 7) === 2 && field === GRAPH_INITIALIZER) {
        // Only the name (TensorProto field 8) is needed: read the start of the tensor, skip the rest.
        const length = cursor.varint();
        const end = cursor.position + length;
        const name = initializerName(cursor, end);
        if (name) initializers.add(name);
        cursor.position = end;
      } else cursor.skip(tag & 7);
    }
    return { inputs: inputs.filter((i) => !initializers.has(i.name)), outputs };
  } catch (error) {
    if (error instanceof RangeError) throw new Error(`${path}: not an ONNX model (${error.message})`);
    throw error;
  } finally {
    cursor.close();
  }
}

function initializerName(cursor: FileCursor, end: number): string | null {
  while (cursor.position < end) {
    const tag = cursor.varint();
    if (tag >>> 3 === 8 && (tag & 7) === 2) return new TextDecoder().decode(cursor.bytes(cursor.varint()));
    cursor.skip(tag & 7);
  }
  return null;
}
