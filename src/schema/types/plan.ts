import type { Plan } from '../../routing/router.js';
import { builder } from '../builder.js';
import { OperationEnum, RouteEnum } from './enums.js';

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

export const PlanType = builder.objectRef<Plan>('Plan').implement({
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
    tile: t.int({ nullable: true, resolve: (p) => p.tiles?.tile ?? null }),
    expectedSeconds: t.float({ resolve: (p) => p.expectedSeconds }),
    budgetBytes: t.float({ resolve: (p) => p.budgetBytes }),
    freeBytes: t.float({ resolve: (p) => p.freeBytes }),
    estimates: t.field({ type: Estimates, resolve: (p) => p.estimates }),
  }),
});
