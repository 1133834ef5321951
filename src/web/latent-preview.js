// @ts-check
/**
 * Latent → RGB preview. A latent has C channels (4, 16, 32…); three of them, or the three
 * principal components over all pixels of this latent (a fixed projection per image, so structure
 * shows whatever the model's channel order), become R, G and B, each stretched between its 1st and
 * 99th percentile.
 */

/**
 * Raw little-endian bytes → float32 values.
 * @param {ArrayBuffer} buffer
 * @param {string} dtype float32 | float16 | bfloat16
 * @returns {Float32Array}
 */
export function decodeLatent(buffer, dtype) {
  if (dtype === 'float32') return new Float32Array(buffer.slice(0));
  const halves = new Uint16Array(buffer);
  const out = new Float32Array(halves.length);
  if (dtype === 'bfloat16') {
    const word = new Uint32Array(1);
    const asFloat = new Float32Array(word.buffer);
    for (let i = 0; i < halves.length; i++) {
      word[0] = halves[i] << 16;
      out[i] = asFloat[0];
    }
    return out;
  }
  if (dtype !== 'float16') throw new Error(`latent dtype ${dtype} is not previewable`);
  for (let i = 0; i < halves.length; i++) {
    const h = halves[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) out[i] = sign * 2 ** -14 * (fraction / 1024);
    else if (exponent === 31) out[i] = fraction ? NaN : sign * Infinity;
    else out[i] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return out;
}

/**
 * The top `k` eigenvectors of a symmetric C×C matrix (power iteration with deflation).
 * @param {Float64Array} matrix row-major
 * @param {number} c
 * @param {number} k
 */
function topEigenvectors(matrix, c, k) {
  const m = Float64Array.from(matrix);
  /** @type {Float64Array[]} */
  const vectors = [];
  for (let n = 0; n < k; n++) {
    let v = new Float64Array(c).map((_, i) => 1 + ((i * 7919 + n * 104729) % 13) / 13);
    let lambda = 0;
    for (let iter = 0; iter < 100; iter++) {
      const w = new Float64Array(c);
      for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) w[i] += m[i * c + j] * v[j];
      const norm = Math.hypot(...w);
      if (norm < 1e-12) break;
      lambda = norm;
      v = w.map((x) => x / norm);
    }
    // Sign: make the largest coefficient positive, so the colours do not flip between runs.
    let largest = 0;
    for (let i = 1; i < c; i++) if (Math.abs(v[i]) > Math.abs(v[largest])) largest = i;
    if (v[largest] < 0) v = v.map((x) => -x);
    vectors.push(v);
    for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) m[i * c + j] -= lambda * v[i] * v[j];
  }
  return vectors;
}

/**
 * @param {Float32Array} values
 * @returns {[number, number]}
 */
function percentiles(values) {
  const sorted = Float32Array.from(values).sort();
  const at = (/** @type {number} */ q) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
  const lo = at(0.01);
  const hi = at(0.99);
  return hi > lo ? [lo, hi] : [lo - 1e-6, lo + 1e-6];
}

/**
 * Maps the first latent of a batch to RGBA pixels.
 * @param {Float32Array} values NCHW
 * @param {number[]} shape [batch, channels, height, width]
 * @param {'pca' | 'first'} mode
 * @returns {{ width: number, height: number, rgba: Uint8ClampedArray, description: string }}
 */
export function latentToRgba(values, shape, mode) {
  const [, c, h, w] = shape;
  const n = h * w;
  /** @type {Float32Array[]} */
  let planes;
  let description;
  if (mode === 'first' || c < 3) {
    planes = [0, 1, 2].map((i) => values.subarray(Math.min(i, c - 1) * n, (Math.min(i, c - 1) + 1) * n));
    description = c < 3 ? `channels ${[0, 1, 2].map((i) => Math.min(i, c - 1)).join(', ')}` : 'channels 0, 1, 2';
  } else {
    const mean = new Float64Array(c);
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      for (let p = 0; p < n; p++) s += values[ch * n + p];
      mean[ch] = s / n;
    }
    const cov = new Float64Array(c * c);
    const step = Math.max(1, Math.floor(n / 16384)); // a subsample is plenty for the covariance
    let count = 0;
    const x = new Float64Array(c);
    for (let p = 0; p < n; p += step) {
      for (let ch = 0; ch < c; ch++) x[ch] = values[ch * n + p] - mean[ch];
      for (let i = 0; i < c; i++) for (let j = i; j < c; j++) cov[i * c + j] += x[i] * x[j];
      count++;
    }
    for (let i = 0; i < c; i++) for (let j = i; j < c; j++) cov[j * c + i] = cov[i * c + j] /= count;
    const vectors = topEigenvectors(cov, c, 3);
    planes = vectors.map((v) => {
      const plane = new Float32Array(n);
      for (let p = 0; p < n; p++) {
        let s = 0;
        for (let ch = 0; ch < c; ch++) s += (values[ch * n + p] - mean[ch]) * v[ch];
        plane[p] = s;
      }
      return plane;
    });
    description = `principal components 1–3 of ${c} channels`;
  }
  const rgba = new Uint8ClampedArray(n * 4);
  planes.forEach((plane, k) => {
    const [lo, hi] = percentiles(plane);
    for (let p = 0; p < n; p++) rgba[p * 4 + k] = ((plane[p] - lo) / (hi - lo)) * 255;
  });
  for (let p = 0; p < n; p++) rgba[p * 4 + 3] = 255;
  return { width: w, height: h, rgba, description };
}
