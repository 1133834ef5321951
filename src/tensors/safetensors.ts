/**
 * Safetensors reader and writer: an 8-byte little-endian header length, a JSON header of
 * `{name: {dtype, shape, data_offsets}}` (plus optional `__metadata__`), then the raw data.
 */
import { readFile } from 'node:fs/promises';
import { BYTES_PER_ELEMENT, type DType, decodeTensor, elementCount, encodeTensor } from './dtype.js';

const SAFETENSORS_DTYPES: Record<string, DType> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', U8: 'uint8' };
const DTYPE_TO_SAFETENSORS: Record<DType, string> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', uint8: 'U8' };

export interface StoredTensor {
  dtype: DType;
  shape: number[];
  /** The raw little-endian bytes, as stored. */
  bytes: Uint8Array;
}

export class SafetensorsError extends Error {}

export interface SafetensorsFile {
  tensors: Map<string, StoredTensor>;
  /** I64 tensors (diffusion timesteps), kept apart: they are never latents. */
  int64: Map<string, { shape: number[]; values: BigInt64Array }>;
  metadata: Record<string, string>;
}

export function parseSafetensors(buffer: Uint8Array): SafetensorsFile {
  if (buffer.length < 8) throw new SafetensorsError('file is shorter than the 8-byte header length');
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > buffer.length - 8) throw new SafetensorsError(`header length ${headerLength} exceeds the file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(buffer.subarray(8, 8 + headerLength)).toString('utf8'));
  } catch {
    throw new SafetensorsError('header is not valid JSON');
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, StoredTensor>();
  const int64 = new Map<string, { shape: number[]; values: BigInt64Array }>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const {
      dtype,
      shape,
      data_offsets: offsets,
    } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const ours = dtype === 'I64' ? undefined : SAFETENSORS_DTYPES[dtype];
    if (!ours && dtype !== 'I64')
      throw new SafetensorsError(
        `tensor ${name} has dtype ${dtype}; supported: ${Object.keys(SAFETENSORS_DTYPES).join(', ')}, I64`,
      );
    const [begin, end] = offsets;
    const elementBytes = ours ? BYTES_PER_ELEMENT[ours] : 8;
    if (end - begin !== elementCount(shape) * elementBytes || dataStart + end > buffer.length) {
      throw new SafetensorsError(
        `tensor ${name}: data offsets [${begin}, ${end}] do not match shape [${shape}] and dtype ${dtype}`,
      );
    }
    if (!ours) {
      const values = new BigInt64Array(elementCount(shape));
      for (let i = 0; i < values.length; i++) values[i] = view.getBigInt64(dataStart + begin + i * 8, true);
      int64.set(name, { shape, values });
      continue;
    }
    tensors.set(name, { dtype: ours, shape, bytes: buffer.subarray(dataStart + begin, dataStart + end) });
  }
  return { tensors, int64, metadata };
}

export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  return parseSafetensors(await readFile(path));
}

export function tensorToFloat32(tensor: StoredTensor): Float32Array {
  return decodeTensor(tensor.bytes, tensor.dtype);
}

export interface TensorToWrite {
  dtype: DType;
  shape: number[];
  /** Either raw bytes already in `dtype`, or float values to encode into it. */
  data: Uint8Array | Float32Array;
}

export function serializeSafetensors(
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    const bytes = tensor.data instanceof Float32Array ? encodeTensor(tensor.data, tensor.dtype) : tensor.data;
    if (bytes.length !== elementCount(tensor.shape) * BYTES_PER_ELEMENT[tensor.dtype]) {
      throw new SafetensorsError(
        `tensor ${name}: ${bytes.length} bytes do not match shape [${tensor.shape}] of ${tensor.dtype}`,
      );
    }
    header[name] = {
      dtype: DTYPE_TO_SAFETENSORS[tensor.dtype],
      shape: tensor.shape,
      data_offsets: [offset, offset + bytes.length],
    };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // align the data start to 8 bytes, as the reference writer does
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  return Buffer.concat([prefix, headerBytes, ...chunks]);
}
