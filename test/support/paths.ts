/** Where the read-only shared models and fixtures are (CI sets LATENTGATE_SHARED_DIR). */
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const SHARED_DIR = resolve(process.env.LATENTGATE_SHARED_DIR ?? '../shared');
export const MODELS_DIR = resolve(SHARED_DIR, 'models');
export const IMAGES_DIR = resolve(SHARED_DIR, 'fixtures/images');
export const REFERENCE_DIR = resolve(SHARED_DIR, 'fixtures/reference');
export const PROJECT_DIR = resolve(import.meta.dirname, '../..');

/**
 * Gateways under test see no Hugging Face cache (a folder that does not exist) and make no Hub
 * requests, whatever the developer's machine holds; tests of the cache set their own.
 */
export const NO_HUB_CACHE = {
  HF_HUB_CACHE: join(tmpdir(), 'latentgate-tests-no-hub-cache'),
  HF_HUB_OFFLINE: '1',
} as const;
