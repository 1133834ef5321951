/**
 * GroupNorm statistics gathered tile by tile, exactly. Each tile reports, per batch item and
 * channel, its pixel count, mean and sum of squared deviations (M2); tiles and then the channels
 * of a group are merged with Chan et al.'s pairwise update in float64, which never subtracts two
 * large sums (E[h²] − E[h]² would lose digits where the mean is large next to the spread). The
 * result is folded into per-channel inputs of the block's graph: GroupNorm + affine =
 * (h − center) * scale + beta, with center the group's mean and scale gamma / std (centring before
 * scaling, so float32 stays exact where a mean is large next to its spread).
 */

/** Per (batch item, channel) moments over `count` pixels each. */
export interface Moments {
  count: number;
  mean: Float64Array;
  m2: Float64Array;
}

export function emptyMoments(size: number): Moments {
  return { count: 0, mean: new Float64Array(size), m2: new Float64Array(size) };
}

/** Merges a tile's moments (float32 from the runtime) into `into`, in place; returns it. */
export function mergeMoments(
  into: Moments,
  tile: { count: number; mean: ArrayLike<number>; m2: ArrayLike<number> },
): Moments {
  if (tile.mean.length !== into.mean.length || tile.m2.length !== into.m2.length)
    throw new Error(`moments of ${tile.mean.length} values, expected ${into.mean.length}`);
  const total = into.count + tile.count;
  if (tile.count === 0) return into;
  for (let i = 0; i < into.mean.length; i++) {
    const delta = tile.mean[i] - into.mean[i];
    into.mean[i] += (delta * tile.count) / total;
    into.m2[i] += tile.m2[i] + (delta * delta * into.count * tile.count) / total;
  }
  into.count = total;
  return into;
}

export interface GroupNormParameters {
  groups: number;
  epsilon: number;
  /** Affine weight, one per channel (the bias is applied in the graph). */
  gamma: Float32Array;
}

/**
 * Folds GroupNorm (biased variance over each group's channels and pixels, as PyTorch's) and its
 * affine weight into `center` (the group's mean, repeated per channel) and `scale`
 * (gamma_c / sqrt(var_g + eps)), each [batch * channels]; the affine bias stays in the graph.
 */
export function foldGroupNorm(
  moments: Moments,
  batch: number,
  norm: GroupNormParameters,
): { center: Float32Array; scale: Float32Array } {
  const channels = norm.gamma.length;
  if (moments.mean.length !== batch * channels)
    throw new Error(`moments of ${moments.mean.length} values for ${batch} x ${channels} channels`);
  if (channels % norm.groups !== 0) throw new Error(`${channels} channels do not split into ${norm.groups} groups`);
  const perGroup = channels / norm.groups;
  const center = new Float32Array(batch * channels);
  const scale = new Float32Array(batch * channels);
  for (let b = 0; b < batch; b++) {
    for (let group = 0; group < norm.groups; group++) {
      const first = b * channels + group * perGroup;
      const merged = emptyMoments(1);
      for (let c = first; c < first + perGroup; c++)
        mergeMoments(merged, { count: moments.count, mean: [moments.mean[c]], m2: [moments.m2[c]] });
      const inverseStd = 1 / Math.sqrt(merged.m2[0] / merged.count + norm.epsilon);
      for (let c = first; c < first + perGroup; c++) {
        center[c] = merged.mean[0];
        scale[c] = norm.gamma[c - b * channels] * inverseStd;
      }
    }
  }
  return { center, scale };
}
