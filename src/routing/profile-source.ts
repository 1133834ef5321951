/**
 * Where a model's memory profiles come from, best first: a calibration measured on this machine
 * (`latentgate calibrate`, stored as JSON), the shipped profile for the model id, the shipped
 * profile for its family, or one derived from a tiny autoencoder's shape. The same for the
 * text-encoder and UNet stages of a pipeline (`stagesForModel`): a calibration, else derived from the
 * pipeline's network files, else derived for the family.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FAMILIES, type FamilyConventions } from '../models/families.js';
import type { ModelMemoryProfiles, ModelStageProfiles, PipelineNetworks } from './memory-profile.js';
import { parseModelMemoryProfiles, parseModelStageProfiles } from './profile-schema.js';
import { shippedProfiles, taeProfiles } from './profiles.js';
import { derivedStageProfiles, shippedStageProfiles } from './stage-profiles.js';

export class ProfileSource {
  constructor(private readonly calibrationDir: string | null) {}

  private file(model: string, suffix = ''): string | null {
    return this.calibrationDir ? join(this.calibrationDir, `${model}${suffix}.json`) : null;
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

  /** Profiles of a pipeline's text-encoder and UNet stages; undefined when nothing is known of them. */
  stagesForModel(
    model: string,
    family: Pick<FamilyConventions, 'id'> | undefined = FAMILIES[model as keyof typeof FAMILIES],
    networks?: PipelineNetworks,
  ): ModelStageProfiles | undefined {
    const file = this.file(model, STAGES_SUFFIX);
    if (file && existsSync(file)) return parseModelStageProfiles(JSON.parse(readFileSync(file, 'utf8')));
    if (networks) return derivedStageProfiles(model, networks);
    return shippedStageProfiles(model) ?? (family ? shippedStageProfiles(family.id) : undefined);
  }

  saveStages(profiles: ModelStageProfiles): string {
    const file = this.file(profiles.model, STAGES_SUFFIX);
    if (!file || !this.calibrationDir) throw new Error('no calibration directory is configured (DATA_DIR)');
    mkdirSync(this.calibrationDir, { recursive: true });
    writeFileSync(file, `${JSON.stringify(profiles, null, 2)}\n`);
    return file;
  }
}

/** A pipeline's stage calibration is stored beside its VAE one: `ID.stages.json`. */
const STAGES_SUFFIX = '.stages';
