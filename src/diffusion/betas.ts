/**
 * The training noise schedule of the DDPM family (betas → alphas_cumprod), in float32 as diffusers
 * holds it, from a scheduler config's beta_start / beta_end / beta_schedule / trained_betas.
 */
import { f32, torchLinspaceF32 } from './numeric.js';

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';

export interface BetaConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas?: number[] | null;
}

export function makeBetas(config: BetaConfig): Float32Array {
  const T = config.num_train_timesteps;
  if (config.trained_betas) return Float32Array.from(config.trained_betas);
  switch (config.beta_schedule) {
    case 'linear':
      return torchLinspaceF32(config.beta_start, config.beta_end, T);
    case 'scaled_linear': {
      // torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=float32) ** 2
      const roots = torchLinspaceF32(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), T);
      return roots.map((r) => f32(r * r));
    }
    case 'squaredcos_cap_v2': {
      // betas_for_alpha_bar with the cosine alpha_bar, computed in Python floats, max_beta 0.999.
      const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
      return Float32Array.from({ length: T }, (_, i) => Math.min(1 - alphaBar((i + 1) / T) / alphaBar(i / T), 0.999));
    }
  }
}

/** torch.cumprod(1 - betas) of a float32 tensor: the running product is kept in double (CPU acc_type). */
export function alphasCumprod(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let product = 1;
  for (let i = 0; i < betas.length; i++) {
    product *= f32(1 - betas[i]);
    out[i] = product;
  }
  return out;
}

/** The Euler family's training sigmas, ascending in t: sqrt((1 - acp) / acp) in float32. */
export function trainingSigmas(alphas: Float32Array): Float32Array {
  return alphas.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}
