/**
 * Model families latentgate knows, with the conventions of their latent space. These hold even
 * without local weights, so planning works for models that only an upstream can run.
 */
export type FamilyId = 'sd15' | 'sdxl' | 'flux1' | 'tae';

export interface FamilyConventions {
  id: FamilyId;
  /** AutoencoderKL (full VAE) or tiny autoencoder. */
  architecture: 'autoencoder-kl' | 'tiny-autoencoder';
  /** Latent channels; for `tae` it varies per model and comes from the weights. */
  latentChannels: number | null;
  downscaleFactor: number;
  /** Pixel range the encoder expects and the decoder returns. */
  inputRange: 'zero-one' | 'minus-one-one';
  scalingFactor: number;
  shiftFactor: number;
}

export const FAMILIES: Record<FamilyId, FamilyConventions> = {
  sd15: {
    id: 'sd15',
    architecture: 'autoencoder-kl',
    latentChannels: 4,
    downscaleFactor: 8,
    inputRange: 'minus-one-one',
    scalingFactor: 0.18215,
    shiftFactor: 0,
  },
  sdxl: {
    id: 'sdxl',
    architecture: 'autoencoder-kl',
    latentChannels: 4,
    downscaleFactor: 8,
    inputRange: 'minus-one-one',
    scalingFactor: 0.13025,
    shiftFactor: 0,
  },
  flux1: {
    id: 'flux1',
    architecture: 'autoencoder-kl',
    latentChannels: 16,
    downscaleFactor: 8,
    inputRange: 'minus-one-one',
    scalingFactor: 0.3611,
    shiftFactor: 0.1159,
  },
  tae: {
    id: 'tae',
    architecture: 'tiny-autoencoder',
    latentChannels: null,
    downscaleFactor: 8,
    inputRange: 'zero-one',
    scalingFactor: 1,
    shiftFactor: 0,
  },
};

export function isFamilyId(value: string): value is FamilyId {
  return value in FAMILIES;
}
