/**
 * Models `latentgate models pull NAME` (and `MODELS=NAME`) knows by name.
 *
 * Pins: a preset names the commit and each file's sha256 it was checked against, so a pull gets those
 * bytes or refuses. This project cannot reach the Hub, and no commit hash or Hub-side sha256 of these
 * repositories is recorded anywhere it can read (../shared holds taef2 and taesana converted from the
 * original .pth files, whose hashes are not those of the Hub's diffusers files). So every `commit` and
 * `sha256` below is null, meaning not pinned yet: such a pull takes `main` and still verifies every
 * large file against the sha256 the Hub lists for it. Fill them in from `models list` after a pull
 * you trust; never guess one.
 */

export interface Preset {
  name: string;
  repo: string;
  /** Pinned commit (40 hex digits), or null: not recorded yet (see above). */
  commit: string | null;
  /** The files pulled, each with its pinned sha256 (null: not recorded yet); null = the repo's servable files. */
  files: Record<string, string | null> | null;
  description: string;
}

/** diffusers' AutoencoderTiny layout: the weights in one safetensors file beside its config. */
function autoencoderTiny(name: string, repo: string, description: string): Preset {
  return {
    name,
    repo,
    commit: null,
    files: { 'config.json': null, 'diffusion_pytorch_model.safetensors': null },
    description,
  };
}

export const PRESETS: readonly Preset[] = [
  autoencoderTiny('taesd', 'madebyollin/taesd', 'tiny autoencoder, SD 1.x / 2.x latents (4 channels)'),
  autoencoderTiny('taesdxl', 'madebyollin/taesdxl', 'tiny autoencoder, SDXL latents (4 channels)'),
  autoencoderTiny('taesd3', 'madebyollin/taesd3', 'tiny autoencoder, SD3 latents (16 channels)'),
  autoencoderTiny('taef1', 'madebyollin/taef1', 'tiny autoencoder, FLUX.1 latents (16 channels)'),
  // The Hub repository of the FLUX.2 tiny autoencoder is assumed to follow the others' naming; unverified here.
  autoencoderTiny('taef2', 'madebyollin/taef2', 'tiny autoencoder, FLUX.2 latents (32 channels)'),
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
