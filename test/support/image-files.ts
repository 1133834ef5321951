/**
 * Small image files with known samples, written chunk by chunk from the format specifications
 * (PNG: ISO/IEC 15948; TIFF 6.0; JPEG markers: ITU T.81), so tests know every stored value.
 */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export const PNG_COLOR = { gray: 0, rgb: 2, palette: 3, grayAlpha: 4, rgba: 6 } as const;
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

export interface PngSpec {
  width: number;
  height: number;
  colorType: (typeof PNG_COLOR)[keyof typeof PNG_COLOR];
  bitDepth: 1 | 2 | 4 | 8 | 16;
  /** Samples row-major, channels interleaved; 16-bit samples as numbers 0..65535; sub-byte as 0..2^depth-1. */
  samples: ArrayLike<number>;
  /** PLTE entries as [r, g, b]. */
  palette?: [number, number, number][];
  /** tRNS chunk payload as written (alpha per palette index, or the key colour's 16-bit samples). */
  transparency?: number[];
  /** tRNS for gray/RGB is 16-bit samples; for palette bytes. */
  exifOrientation?: number;
}

/** Rows packed at the bit depth, each with filter type 0 (None). */
function packRows(spec: PngSpec): Buffer {
  const channels = CHANNELS[spec.colorType];
  const perRow = spec.width * channels;
  const rowBytes = Math.ceil((perRow * spec.bitDepth) / 8);
  const out = Buffer.alloc((rowBytes + 1) * spec.height);
  for (let y = 0; y < spec.height; y++) {
    const row = y * (rowBytes + 1);
    for (let i = 0; i < perRow; i++) {
      const v = spec.samples[y * perRow + i];
      if (spec.bitDepth === 16) out.writeUInt16BE(v, row + 1 + i * 2);
      else if (spec.bitDepth === 8) out[row + 1 + i] = v;
      else {
        const bit = i * spec.bitDepth;
        out[row + 1 + (bit >> 3)] |= v << (8 - spec.bitDepth - (bit & 7));
      }
    }
  }
  return out;
}

/** A TIFF-structured EXIF block (big-endian) holding only the Orientation tag. */
export function exifWithOrientation(orientation: number): Buffer {
  const exif = Buffer.alloc(26);
  exif.write('MM\0*', 0, 'latin1');
  exif.writeUInt32BE(8, 4); // IFD0 offset
  exif.writeUInt16BE(1, 8); // one entry
  exif.writeUInt16BE(0x0112, 10); // Orientation
  exif.writeUInt16BE(3, 12); // SHORT
  exif.writeUInt32BE(1, 14); // count
  exif.writeUInt16BE(orientation, 18); // value, left-justified in the 4-byte field
  exif.writeUInt32BE(0, 22); // no next IFD
  return exif;
}

export function encodePng(spec: PngSpec): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(spec.width, 0);
  ihdr.writeUInt32BE(spec.height, 4);
  ihdr[8] = spec.bitDepth;
  ihdr[9] = spec.colorType;
  const chunks = [chunk('IHDR', ihdr)];
  if (spec.palette) chunks.push(chunk('PLTE', Uint8Array.from(spec.palette.flat())));
  if (spec.transparency) {
    const bytes =
      spec.colorType === PNG_COLOR.palette
        ? Uint8Array.from(spec.transparency)
        : Buffer.concat(
            spec.transparency.map((v) => {
              const b = Buffer.alloc(2);
              b.writeUInt16BE(v);
              return b;
            }),
          );
    chunks.push(chunk('tRNS', bytes));
  }
  if (spec.exifOrientation !== undefined) chunks.push(chunk('eXIf', exifWithOrientation(spec.exifOrientation)));
  chunks.push(chunk('IDAT', deflateSync(packRows(spec))));
  chunks.push(chunk('IEND', new Uint8Array(0)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ...chunks]);
}

/** A PNG whose IHDR declares `width`x`height` but whose data is one empty row: header-only checks see the size. */
export function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = PNG_COLOR.rgb;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(1 + width * 3))),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** An uncompressed, chunky CMYK TIFF (PhotometricInterpretation 5, separated) of `samples` (4 per pixel). */
export function encodeCmykTiff(width: number, height: number, samples: Uint8Array): Buffer {
  const entries: [tag: number, type: number, count: number, value: number][] = [];
  const ifdOffset = 8;
  const entryCount = 10;
  const bitsOffset = ifdOffset + 2 + entryCount * 12 + 4;
  const dataOffset = bitsOffset + 8;
  entries.push([256, 3, 1, width]);
  entries.push([257, 3, 1, height]);
  entries.push([258, 3, 4, bitsOffset]);
  entries.push([259, 3, 1, 1]); // no compression
  entries.push([262, 3, 1, 5]); // separated (CMYK)
  entries.push([273, 4, 1, dataOffset]);
  entries.push([277, 3, 1, 4]);
  entries.push([278, 3, 1, height]);
  entries.push([279, 4, 1, samples.length]);
  entries.push([284, 3, 1, 1]); // chunky
  const out = Buffer.alloc(dataOffset + samples.length);
  out.write('II*\0', 0, 'latin1');
  out.writeUInt32LE(ifdOffset, 4);
  out.writeUInt16LE(entryCount, ifdOffset);
  entries.forEach(([tag, type, count, value], i) => {
    const at = ifdOffset + 2 + i * 12;
    out.writeUInt16LE(tag, at);
    out.writeUInt16LE(type, at + 2);
    out.writeUInt32LE(count, at + 4);
    if (type === 3 && count === 1) out.writeUInt16LE(value, at + 8);
    else out.writeUInt32LE(value, at + 8);
  });
  for (let i = 0; i < 4; i++) out.writeUInt16LE(8, bitsOffset + i * 2);
  out.set(samples, dataOffset);
  return out;
}

/** The JPEG without its APP14 "Adobe" segment (which says the CMYK samples are stored inverted). */
export function withoutAdobeSegment(jpeg: Buffer): Buffer {
  let at = 2;
  while (at + 4 <= jpeg.length && jpeg[at] === 0xff) {
    const marker = jpeg[at + 1];
    const length = jpeg.readUInt16BE(at + 2);
    if (marker === 0xee) return Buffer.concat([jpeg.subarray(0, at), jpeg.subarray(at + 2 + length)]);
    if (marker === 0xda) break;
    at += 2 + length;
  }
  throw new Error('no APP14 segment before the scan');
}

/**
 * A baseline JPEG of flat 8x8 blocks, written by hand so the stored samples are known exactly:
 * all-ones quantisation, one DC-only block per component per MCU (no subsampling), so a decoder
 * returns each block's value unchanged. `blocks[i]` holds one value per component for MCU i,
 * left to right; `adobe` adds the APP14 "Adobe" segment (transform 0: no colour transform).
 */
export function encodeFlatJpeg(blocksWide: number, blocks: number[][], adobe: boolean): Buffer {
  const components = blocks[0].length;
  const segment = (marker: number, payload: number[]) => [
    0xff,
    marker,
    (payload.length + 2) >> 8,
    (payload.length + 2) & 0xff,
    ...payload,
  ];
  const out: number[] = [0xff, 0xd8];
  if (adobe) out.push(...segment(0xee, [...Buffer.from('Adobe'), 0, 100, 0, 0, 0, 0, 0]));
  out.push(...segment(0xdb, [0, ...new Array(64).fill(1)]));
  const width = blocksWide * 8;
  const height = (blocks.length / blocksWide) * 8;
  const sof = [8, height >> 8, height & 0xff, width >> 8, width & 0xff, components];
  for (let c = 0; c < components; c++) sof.push(c + 1, 0x11, 0);
  out.push(...segment(0xc0, sof));
  // DC table 0: categories 0..11, each a 4-bit code (0000 .. 1011). AC table 0: only EOB, code "0".
  const dcCounts = [0, 0, 0, 12, ...new Array(12).fill(0)];
  out.push(...segment(0xc4, [0x00, ...dcCounts, ...Array.from({ length: 12 }, (_, i) => i)]));
  out.push(...segment(0xc4, [0x10, 1, ...new Array(15).fill(0), 0x00]));
  const sos = [components];
  for (let c = 0; c < components; c++) sos.push(c + 1, 0x00);
  out.push(...segment(0xda, [...sos, 0, 63, 0]));
  let bits = '';
  const previous = new Array(components).fill(0);
  for (const block of blocks) {
    block.forEach((value, c) => {
      const dc = 8 * (value - 128); // the DCT of a flat block, level-shifted
      const diff = dc - previous[c];
      previous[c] = dc;
      const category = diff === 0 ? 0 : Math.floor(Math.log2(Math.abs(diff))) + 1;
      bits += category.toString(2).padStart(4, '0');
      if (category > 0) bits += (diff > 0 ? diff : diff + (1 << category) - 1).toString(2).padStart(category, '0');
      bits += '0'; // EOB
    });
  }
  bits += '1'.repeat((8 - (bits.length % 8)) % 8);
  for (let i = 0; i < bits.length; i += 8) {
    const byte = Number.parseInt(bits.slice(i, i + 8), 2);
    out.push(byte);
    if (byte === 0xff) out.push(0x00);
  }
  out.push(0xff, 0xd9);
  return Buffer.from(out);
}

/** An 8-bit RGB PNG whose samples run `(i * step) % 256`: a gradient, so an encode of it is not trivial. */
export function gradientPng(width: number, height: number, step: number): Buffer {
  return encodePng({
    width,
    height,
    colorType: PNG_COLOR.rgb,
    bitDepth: 8,
    samples: Array.from({ length: width * height * 3 }, (_, i) => (i * step) % 256),
  });
}
