/**
 * Scans MODELS_DIR (one folder per model; the folder name is the id), then the extra folders it is given
 * (the Hub cache's, src/hub/sources.ts), and holds what it found.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError } from '../errors.js';
import type { FamilyConventions } from './families.js';
import { type ModelDefinition, type ServedOperation, servedOperationsOf } from './model.js';
import { loadOnnxVae, looksLikeOnnxVae } from './onnx-loader.js';
import { loadPipelineFolder, looksLikePipelineFolder } from './pipeline-folder.js';
import { loadTae, looksLikeTae } from './tae-loader.js';

export interface ModelLoadProblem {
  id: string;
  path: string;
  error: string;
}

export class ModelRegistry {
  private constructor(
    private readonly models: Map<string, ModelDefinition>,
    readonly problems: ModelLoadProblem[],
  ) {}

  static async load(
    modelsDir: string,
    extra: readonly { id: string; dir: string; origin: string }[] = [],
  ): Promise<ModelRegistry> {
    const models = new Map<string, ModelDefinition>();
    const problems: ModelLoadProblem[] = [];
    const local = (existsSync(modelsDir) ? readdirSync(modelsDir).sort() : [])
      .map((id) => ({ id, dir: join(modelsDir, id), origin: 'MODELS_DIR' }))
      .filter(({ dir }) => statSync(dir).isDirectory());
    for (const { id, dir, origin } of [...local, ...extra]) {
      if (models.has(id)) {
        problems.push({ id, path: dir, error: `another model is already served as "${id}"` });
        continue;
      }
      try {
        let model: ModelDefinition | undefined;
        if (looksLikePipelineFolder(dir)) model = loadPipelineFolder(id, dir);
        else if (looksLikeOnnxVae(dir)) model = loadOnnxVae(id, dir);
        else if (looksLikeTae(dir)) model = await loadTae(id, dir);
        if (model) models.set(id, { ...model, origin });
      } catch (error) {
        problems.push({ id, path: dir, error: (error as Error).message });
      }
    }
    return new ModelRegistry(models, problems);
  }

  list(): ModelDefinition[] {
    return [...this.models.values()];
  }

  find(id: string): ModelDefinition | undefined {
    return this.models.get(id);
  }

  /**
   * Declares that upstream endpoints serve `operations` of model `id`: added to a local model's
   * operations, or registered as an upstream-only model with the given latent conventions.
   */
  addUpstream(
    id: string,
    operations: readonly ServedOperation[],
    conventions: FamilyConventions | null,
  ): ModelDefinition {
    const existing = this.models.get(id);
    if (existing) {
      existing.upstreamOperations = [...new Set([...(existing.upstreamOperations ?? []), ...operations])];
      return existing;
    }
    if (!conventions?.latentChannels) {
      throw new Error(
        `model "${id}" has no local weights, ` +
          `so its upstream entry must name a family (sd15, sdxl, flux1, or tae with latentChannels)`,
      );
    }
    const model: ModelDefinition = {
      id,
      family: conventions,
      format: 'upstream',
      latentChannels: conventions.latentChannels,
      downscaleFactor: conventions.downscaleFactor,
      path: '',
      upstreamOperations: [...new Set(operations)],
    };
    this.models.set(id, model);
    return model;
  }

  /** The model, or a typed error naming the models that exist and what they support. */
  require(id: string, operation: ServedOperation): ModelDefinition {
    const model = this.models.get(id);
    if (!model) {
      throw new GatewayError(
        'UNKNOWN_MODEL',
        `unknown model "${id}"; available: ${[...this.models.keys()].join(', ') || 'none'}`,
        {
          model: id,
          available: [...this.models.keys()],
        },
      );
    }
    const supported = servedOperationsOf(model);
    if (!supported.includes(operation)) {
      throw new GatewayError(
        'UNSUPPORTED_OPERATION',
        `model "${id}" does not support ${operation}; it supports: ${supported.join(', ')}`,
        {
          model: id,
          operation,
          supported,
        },
      );
    }
    return model;
  }
}
