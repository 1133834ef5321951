/** Scans MODELS_DIR (one folder per model; the folder name is the id) and holds what it found. */
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError } from '../errors.js';
import { looksLikeOnnxVae, loadOnnxVae } from './onnx-loader.js';
import { looksLikeTae, loadTae } from './tae-loader.js';
import { operationsOf, type ModelDefinition, type Operation } from './model.js';

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

  static async load(modelsDir: string): Promise<ModelRegistry> {
    const models = new Map<string, ModelDefinition>();
    const problems: ModelLoadProblem[] = [];
    const entries = existsSync(modelsDir) ? readdirSync(modelsDir).sort() : [];
    for (const id of entries) {
      const dir = join(modelsDir, id);
      if (!statSync(dir).isDirectory()) continue;
      try {
        if (looksLikeOnnxVae(dir)) models.set(id, loadOnnxVae(id, dir));
        else if (looksLikeTae(dir)) models.set(id, await loadTae(id, dir));
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

  /** The model, or a typed error naming the models that exist and what they support. */
  require(id: string, operation: Operation): ModelDefinition {
    const model = this.models.get(id);
    if (!model) {
      throw new GatewayError('UNKNOWN_MODEL', `unknown model "${id}"; available: ${[...this.models.keys()].join(', ') || 'none'}`, {
        model: id,
        available: [...this.models.keys()],
      });
    }
    if (!operationsOf(model).includes(operation)) {
      throw new GatewayError('UNSUPPORTED_OPERATION', `model "${id}" does not support ${operation}; it supports: ${operationsOf(model).join(', ')}`, {
        model: id,
        operation,
        supported: operationsOf(model),
      });
    }
    return model;
  }
}
