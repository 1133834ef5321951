import type { Plan } from '../../routing/router.js';
import type { AnyPlan, StageDetails } from '../../routing/stage-planner.js';
import { builder } from '../builder.js';
import { OperationEnum, RouteEnum } from './enums.js';
import { PeerType } from './peers.js';

const WholeEstimate = builder.objectRef<Plan['estimates']['whole']>('WholeEstimate').implement({
  description: 'Estimated peak device memory of running the request in one piece.',
  fields: (t) => ({
    bytes: t.float({ resolve: (e) => e.bytes }),
    calibrated: t.exposeBoolean('calibrated', {
      description: 'True when the profile was measured on this machine or fitted to measurements.',
    }),
  }),
});

const TiledEstimate = builder.objectRef<NonNullable<Plan['estimates']['tiled']>>('TiledEstimate').implement({
  fields: (t) => ({
    bytes: t.float({ resolve: (e) => e.bytes }),
    tile: t.exposeInt('tile', { description: 'Tile side in pixels.' }),
    overlap: t.exposeInt('overlap', { description: 'Overlap between tiles in pixels.' }),
    calibrated: t.exposeBoolean('calibrated'),
  }),
});

const Estimates = builder.objectRef<Plan['estimates']>('Estimates').implement({
  fields: (t) => ({
    whole: t.field({ type: WholeEstimate, resolve: (e) => e.whole }),
    tiled: t.field({ type: TiledEstimate, nullable: true, resolve: (e) => e.tiled }),
  }),
});

const StageDetailsType = builder.objectRef<StageDetails>('StageDetails').implement({
  description: 'What a TEXT_ENCODE or DENOISE plan is for: the latent the network sees and its calls.',
  fields: (t) => ({
    steps: t.exposeInt('steps', {
      description: 'Network calls: the denoising steps that will run (1 for TEXT_ENCODE).',
    }),
    guidance: t.exposeBoolean('guidance', { description: 'Classifier-free guidance: the network batch is doubled.' }),
    latentWidth: t.exposeInt('latentWidth'),
    latentHeight: t.exposeInt('latentHeight'),
    networkBatch: t.exposeInt('networkBatch', { description: 'The batch the network sees.' }),
    secondsPerStep: t.float({
      description: 'Expected seconds of one local network call.',
      resolve: (s) => s.secondsPerStep,
    }),
    measured: t.exposeBoolean('measured', {
      description: 'False while secondsPerStep is a guess (no run of this stage measured on this machine yet).',
    }),
  }),
});

export const PlanType = builder.objectRef<AnyPlan>('Plan').implement({
  description: 'How the router would run (or ran) a request, and why.',
  fields: (t) => ({
    model: t.exposeString('model'),
    operation: t.field({ type: OperationEnum, resolve: (p) => p.operation }),
    width: t.exposeInt('width'),
    height: t.exposeInt('height'),
    batch: t.exposeInt('batch'),
    dtype: t.exposeString('dtype', { description: 'Compute dtype the estimate is for.' }),
    route: t.field({ type: RouteEnum, resolve: (p) => p.route }),
    target: t.exposeString('target', { description: 'The device or upstream that runs it.' }),
    reason: t.exposeString('reason'),
    bytes: t.float({ description: 'Bytes the chosen route reserves.', resolve: (p) => p.bytes }),
    tile: t.int({ nullable: true, resolve: (p) => ('tiles' in p ? (p.tiles?.tile ?? null) : null) }),
    expectedSeconds: t.float({ resolve: (p) => p.expectedSeconds }),
    budgetBytes: t.float({ resolve: (p) => p.budgetBytes }),
    freeBytes: t.float({ resolve: (p) => p.freeBytes }),
    estimates: t.field({ type: Estimates, resolve: (p) => p.estimates }),
    peers: t.field({
      type: [PeerType],
      description: 'The peers the router weighed (PEERS=true): the instances alive on the same Redis now.',
      resolve: (_plan, _args, ctx) => ctx.services.peers?.snapshot() ?? [],
    }),
    stage: t.field({
      type: StageDetailsType,
      nullable: true,
      description: 'Set for TEXT_ENCODE and DENOISE plans.',
      resolve: (p) => ('stage' in p ? p.stage : null),
    }),
  }),
});
