/**
 * Where a model's memory profiles come from, best first: a calibration measured on this machine
 * (`latentgate calibrate`, stored as JSON), the shipped profile for the model id, the shipped
 * profile for its family, or one derived from a tiny autoencoder's shape.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FAMILIES, type FamilyConventions } from '../models/families.js';
import type { ModelMemoryProfiles } from './memory-profile.js';
import { parseModelMemoryProfiles } from './profile-schema.js';
import { shippedProfiles, taeProfiles } from './profiles.js';

export class ProfileSource {
  constructor(private readonly calibrationDir: string | null) {}

  private file(model: string): string | null {
    return this.calibrationDir ? join(this.calibrationDir, `${model}.json`) : null;
  }

  forModel(
    model: string,
    family: FamilyConventions = FAMILIES[model as keyof typeof FAMILIES],
  ): ModelMemoryProfiles | undefined {
    const file = this.file(model);
    if (file && existsSync(file)) return parseModelMemoryProfiles(JSON.parse(readFileSync(file, 'utf8')));
    const shipped = shippedProfiles(model) ?? (family && family.id !== 'tae' ? shippedProfiles(family.id) : undefined);
    if (shipped) return shipped;
    if (family?.id === 'tae' && family.latentChannels) {
      return taeProfiles({ model, latentChannels: family.latentChannels, downscaleFactor: family.downscaleFactor });
    }
    return undefined;
  }

  save(profiles: ModelMemoryProfiles): string {
    const file = this.file(profiles.model);
    if (!file || !this.calibrationDir) throw new Error('no calibration directory is configured (DATA_DIR)');
    mkdirSync(this.calibrationDir, { recursive: true });
    writeFileSync(file, `${JSON.stringify(profiles, null, 2)}\n`);
    return file;
  }
}
