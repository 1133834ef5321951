/**
 * Models `latentgate models pull NAME` (and `MODELS=NAME`) knows by name.
 *
 * Pins: a preset names the commit and the sha256 of each large (LFS) file it was checked against, so a
 * pull gets those bytes or refuses. Small files kept in git (config.json) are pinned by the commit
 * itself: the Hub lists them by git sha1, which the download verifies. This project cannot reach the
 * Hub, so the pins below were taken from published manifests that record them (each sha256 is found
 * in at least two independent projects, one of them with the commit), not from a pull here. taef2 and
 * sd-turbo-onnx have `commit: null`: no trustworthy record of their commit and sha256 was found, so such
 * a pull takes `main` and verifies every large file against the sha256 the Hub lists for it. Fill them
 * in from `models list` after a pull you trust; never guess one.
 */

export interface Preset {
  name: string;
  repo: string;
  /** Pinned commit (40 hex digits), or null: not recorded yet (see above). */
  commit: string | null;
  /**
   * The files pulled, each with its pinned sha256 (null: a small git file pinned by the commit, or not
   * recorded yet); null = the repository's servable files.
   */
  files: Record<string, string | null> | null;
  description: string;
}

/** diffusers' AutoencoderTiny layout: the weights in one safetensors file beside its config. */
function autoencoderTiny(
  name: string,
  repo: string,
  description: string,
  pin: { commit: string; weightsSha256: string } | null = null,
): Preset {
  return {
    name,
    repo,
    commit: pin?.commit ?? null,
    files: { 'config.json': null, 'diffusion_pytorch_model.safetensors': pin?.weightsSha256 ?? null },
    description,
  };
}

export const PRESETS: readonly Preset[] = [
  autoencoderTiny('taesd', 'madebyollin/taesd', 'tiny autoencoder, SD 1.x / 2.x latents (4 channels)', {
    commit: '614f76814bbe30edbe2e627ace1c2234c81a2c0e',
    weightsSha256: 'db169d69145ec4ff064e49d99c95fa05d3eb04ee453de35824a6d0f325513549', // 9,793,292 bytes
  }),
  autoencoderTiny('taesdxl', 'madebyollin/taesdxl', 'tiny autoencoder, SDXL latents (4 channels)', {
    commit: 'b20258aaef75ef61e659c1e0f14f251cf0ad153e',
    weightsSha256: 'ff4824aca94dd6111e0340fa749347fb74101060d9712cb5ef1ca8f1cf17502f', // 9,793,292 bytes
  }),
  autoencoderTiny('taesd3', 'madebyollin/taesd3', 'tiny autoencoder, SD3 latents (16 channels)', {
    commit: 'd58dcaccd2b36fcb7a6b9e93c1cc507acab5a778',
    weightsSha256: '6f79c1397cb9ce1dac363722dbe70147aee0ccca75e28338f8482fe515891399', // 9,848,636 bytes
  }),
  autoencoderTiny('taef1', 'madebyollin/taef1', 'tiny autoencoder, FLUX.1 latents (16 channels)', {
    commit: 'b1b2d00e9e440cfbf3dedb34266864da86016ceb',
    weightsSha256: '47a6c2bff850da04b267cab70fe3553fef57255eb9a8e76852baa0a87850e54d', // 9,848,636 bytes
  }),
  {
    // Not in diffusers' AutoencoderTiny layout (diffusers does not load TAEF2 yet): one `taef2.safetensors`
    // with diffusers' tensor names, as its model card says; src/models/tae-loader.ts reads it.
    name: 'taef2',
    repo: 'madebyollin/taef2',
    commit: null,
    files: { 'taef2.safetensors': null },
    description: 'tiny autoencoder, FLUX.2 latents (32 channels)',
  },
  {
    // An img2img pipeline in optimum's ONNX layout (model_index.json, text_encoder/, unet/, vae_encoder/,
    // vae_decoder/, scheduler/, tokenizer/): ONNX Runtime's export of SD-Turbo. Its file list is the
    // repository's servable files (src/hub/files.ts), since none was recorded from here.
    name: 'sd-turbo-onnx',
    repo: 'onnxruntime/sd-turbo',
    commit: null,
    files: null,
    description: 'SD-Turbo img2img pipeline, optimum ONNX layout',
  },
];

export function findPreset(name: string): Preset | undefined {
  return PRESETS.find((p) => p.name === name);
}
