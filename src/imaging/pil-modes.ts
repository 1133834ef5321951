/**
 * How Pillow turns decoded samples into 8-bit RGB (`Image.convert("RGB")`, Pillow 9.x
 * src/libImaging/Convert.c and the PNG/JPEG plugins' raw modes), for the layouts the decoder hands
 * us. Pure functions over typed arrays; the sharp adapter decides which one applies.
 */

/**
 * Interleaved samples with `channels` per pixel → RGB: gray is repeated, alpha (the last channel of 2 or 4) dropped.
 */
export function samplesToRgb(samples: Uint8Array, channels: number, pixelCount: number): Uint8Array {
  if (channels === 3 && samples.length === pixelCount * 3) return samples;
  const out = new Uint8Array(pixelCount * 3);
  if (channels === 1 || channels === 2) {
    for (let i = 0, s = 0, o = 0; i < pixelCount; i++, s += channels) {
      out[o++] = samples[s];
      out[o++] = samples[s];
      out[o++] = samples[s];
    }
  } else if (channels === 4) {
    for (let i = 0, s = 0, o = 0; i < pixelCount; i++, s += 4) {
      out[o++] = samples[s];
      out[o++] = samples[s + 1];
      out[o++] = samples[s + 2];
    }
  } else {
    throw new RangeError(`cannot make RGB from ${channels} channels`);
  }
  return out;
}

/**
 * 16-bit grayscale PNG (no alpha): Pillow opens it as mode "I" holding 0..65535, and `i2rgb`
 * clips each value to 0..255, so anything above 255 becomes white. (16-bit RGB, RGBA and
 * gray + alpha are opened as 8-bit modes from each sample's high byte instead.)
 */
export function gray16ToRgb(samples: Uint16Array): Uint8Array {
  const out = new Uint8Array(samples.length * 3);
  for (let i = 0, o = 0; i < samples.length; i++) {
    const v = Math.min(samples[i], 255);
    out[o++] = v;
    out[o++] = v;
    out[o++] = v;
  }
  return out;
}

/** Pillow's MULDIV255: a * b / 255, rounded, in integers. */
function mulDiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

/**
 * Pillow's `cmyk2rgb`: R = (255 - K) - C * (255 - K) / 255, likewise G from M and B from Y, with
 * no colour profile. `cmyk` holds ink amounts (0 = no ink) as Pillow reads them: Pillow opens every
 * CMYK JPEG with raw mode "CMYK;I", i.e. it assumes the Adobe convention of inverted samples, so
 * its ink amount is 255 minus the stored sample, with or without an Adobe APP14 segment.
 */
export function cmykToRgb(cmyk: Uint8Array, pixelCount: number): Uint8Array {
  const out = new Uint8Array(pixelCount * 3);
  for (let i = 0, s = 0, o = 0; i < pixelCount; i++, s += 4) {
    const notK = 255 - cmyk[s + 3];
    out[o++] = Math.max(0, notK - mulDiv255(cmyk[s], notK));
    out[o++] = Math.max(0, notK - mulDiv255(cmyk[s + 1], notK));
    out[o++] = Math.max(0, notK - mulDiv255(cmyk[s + 2], notK));
  }
  return out;
}
