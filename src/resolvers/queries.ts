import { GatewayError } from '../errors.js';
import { FAMILIES, isFamilyId } from '../models/families.js';
import type { ServedOperation } from '../models/model.js';
import type { Plan } from '../routing/router.js';
import type { GraphQLContext } from '../schema/builder.js';

export function modelsResolver({ services }: GraphQLContext) {
  const device = services.router.local.device().name;
  const upstream = services.router.upstream;
  return services.registry.list().map((model) => {
    const upstreams = [
      ...new Set(
        upstream
          ? (['encode', 'decode'] as const).flatMap((op) => upstream.views(model.id, op).map((v) => v.name))
          : [],
      ),
    ];
    // A model with no local weights runs only on its upstream endpoints.
    const runsOn = model.format === 'upstream' ? upstreams.join(', ') || 'nowhere' : device;
    return { ...model, runsOn, upstreams };
  });
}

export interface PlanArgs {
  model: string;
  operation: ServedOperation;
  width: number;
  height: number;
  batch?: number | null;
}

/** Plans for a local model, or for a known family without weights (planning only). */
export function planResolver({ services }: GraphQLContext, args: PlanArgs): Plan {
  const batch = args.batch ?? 1;
  for (const [name, value] of [
    ['width', args.width],
    ['height', args.height],
    ['batch', batch],
  ] as const) {
    if (!Number.isInteger(value) || value <= 0)
      throw new GatewayError('BAD_REQUEST', `${name} must be a positive integer; got ${value}`, { field: name });
  }
  const model =
    services.registry.find(args.model) ??
    (isFamilyId(args.model) ? { id: args.model, family: FAMILIES[args.model] } : undefined);
  if (!model) {
    const known = [...services.registry.list().map((m) => m.id), ...Object.keys(FAMILIES)];
    throw new GatewayError('UNKNOWN_MODEL', `unknown model "${args.model}"; known: ${known.join(', ')}`, {
      model: args.model,
      available: known,
    });
  }
  if (args.operation === 'img2img')
    throw new GatewayError('BAD_REQUEST', 'plan takes ENCODE or DECODE; an img2img request reports its stage plans', {
      field: 'operation',
    });
  return services.router.plan(model, args.operation, args.width, args.height, batch);
}
