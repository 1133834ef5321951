/** Where the read-only shared models and fixtures are (CI sets LATENTGATE_SHARED_DIR). */
import { resolve } from 'node:path';

export const SHARED_DIR = resolve(process.env.LATENTGATE_SHARED_DIR ?? '../shared');
export const MODELS_DIR = resolve(SHARED_DIR, 'models');
export const IMAGES_DIR = resolve(SHARED_DIR, 'fixtures/images');
export const REFERENCE_DIR = resolve(SHARED_DIR, 'fixtures/reference');
export const PROJECT_DIR = resolve(import.meta.dirname, '../..');
