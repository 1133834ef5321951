/**
 * Packed latents, as Flux pipelines hand them to the VAE: 2x2 patches of the latent map flattened
 * into tokens. diffusers' FluxPipeline `_pack_latents` does
 *   view(B, C, h/2, 2, w/2, 2).permute(0, 2, 4, 1, 3, 5).reshape(B, (h/2)*(w/2), C*4)
 * so token t = i*(w/2) + j holds feature f = c*4 + py*2 + px, and `_unpack_latents` derives the
 * latent size from the image size as h = 2 * floor(H / (factor * 2)). For FLUX.1 (16 channels,
 * factor 8) that is `[B, (H/16)*(W/16), 64]`. Pure functions over float32 data.
 */
export interface PackedSize {
  /** Latent map height and width (before packing). */
  latentHeight: number;
  latentWidth: number;
}

/** diffusers' `_unpack_latents` size rule: the latent side is even and floor(image / factor). */
export function packedLatentSize(height: number, width: number, downscaleFactor: number): PackedSize {
  return {
    latentHeight: 2 * Math.floor(height / (downscaleFactor * 2)),
    latentWidth: 2 * Math.floor(width / (downscaleFactor * 2)),
  };
}

/** NCHW [B, C, h, w] (h, w even) → packed [B, (h/2)*(w/2), C*4]. */
export function packLatents(
  data: Float32Array,
  dims: readonly [number, number, number, number],
): { data: Float32Array; shape: [number, number, number] } {
  const [b, c, h, w] = dims;
  if (h % 2 !== 0 || w % 2 !== 0) throw new RangeError(`packing needs an even latent height and width; got ${h}x${w}`);
  if (data.length !== b * c * h * w) throw new RangeError(`data length ${data.length} does not match [${dims}]`);
  const [ph, pw, features] = [h / 2, w / 2, c * 4];
  const out = new Float32Array(data.length);
  for (let n = 0; n < b; n++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        const i = y >> 1;
        const py = y & 1;
        for (let x = 0; x < w; x++) {
          const token = i * pw + (x >> 1);
          const feature = ch * 4 + py * 2 + (x & 1);
          out[(n * ph * pw + token) * features + feature] = data[((n * c + ch) * h + y) * w + x];
        }
      }
    }
  }
  return { data: out, shape: [b, ph * pw, features] };
}

/** Packed [B, tokens, C*4] → NCHW [B, C, h, w], with h and w from the image size (diffusers' rule). */
export function unpackLatents(
  data: Float32Array,
  shape: readonly [number, number, number],
  height: number,
  width: number,
  downscaleFactor: number,
): { data: Float32Array; dims: [number, number, number, number] } {
  const [b, tokens, features] = shape;
  const { latentHeight: h, latentWidth: w } = packedLatentSize(height, width, downscaleFactor);
  if (features % 4 !== 0)
    throw new RangeError(`a packed latent has 4 features per channel (2x2 patches); got ${features} features`);
  if (h === 0 || w === 0 || tokens !== (h / 2) * (w / 2)) {
    throw new RangeError(
      `a ${width}x${height} image packs into ${(h / 2) * (w / 2)} tokens of a ${h}x${w} latent; ` +
        `the latent has ${tokens} tokens`,
    );
  }
  if (data.length !== b * tokens * features)
    throw new RangeError(`data length ${data.length} does not match [${shape}]`);
  const c = features / 4;
  const pw = w / 2;
  const out = new Float32Array(data.length);
  for (let n = 0; n < b; n++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        const i = y >> 1;
        const py = y & 1;
        for (let x = 0; x < w; x++) {
          const token = i * pw + (x >> 1);
          out[((n * c + ch) * h + y) * w + x] = data[(n * tokens + token) * features + ch * 4 + py * 2 + (x & 1)];
        }
      }
    }
  }
  return { data: out, dims: [b, c, h, w] };
}
