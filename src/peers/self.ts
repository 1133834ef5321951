/** What this instance advertises to its peers, read fresh from its registry, ledger and run stats. */
import { type ModelDefinition, operationsOf } from '../models/model.js';
import type { ModelRegistry } from '../models/registry.js';
import type { CapacityLedger } from '../routing/ledger.js';
import type { RunStats } from '../routing/run-stats.js';
import type { SelfDescription } from './directory.js';

export function describeSelf(registry: ModelRegistry, ledger: CapacityLedger, stats: RunStats): SelfDescription {
  const device = ledger.snapshot();
  // Only what runs here: a model this instance itself sends upstream is not offered on.
  const local = registry.list().filter((m) => m.format !== 'upstream');
  return {
    models: local.map((m) => ({ id: m.id, operations: operationsOf(m) })),
    device: device.name,
    budgetBytes: device.budgetBytes,
    freeBytes: device.freeBytes,
    queued: device.queued,
    running: device.running,
    maxQueueLength: ledger.maxQueueLength,
    // JSON has no Infinity; the largest number says as much to a peer.
    drainSeconds: Math.min(ledger.estimatedWaitSeconds(device.budgetBytes), Number.MAX_VALUE),
    speed: local.flatMap((m) => measured(m, stats)),
  };
}

function measured(model: ModelDefinition, stats: RunStats) {
  return operationsOf(model)
    .filter((op) => op !== 'img2img')
    .flatMap((operation) => {
      const { seconds, measured } = stats.expectedSeconds(model.id, operation, 'LOCAL', 1e6);
      return measured ? [{ model: model.id, operation, secondsPerMegapixel: seconds }] : [];
    });
}
