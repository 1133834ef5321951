import { GatewayError } from '../errors.js';
import { FAMILIES, isFamilyId } from '../models/families.js';
import { stageModelOf } from '../pipeline/img2img.js';
import { isStageOperation, type PlanOperation } from '../routing/memory-profile.js';
import type { AnyPlan } from '../routing/stage-planner.js';
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
  operation: PlanOperation | 'img2img';
  width: number;
  height: number;
  batch?: number | null;
  /** Stages only: denoising steps (default 1) and classifier-free guidance (default true). */
  steps?: number | null;
  guidance?: boolean | null;
}

/** Plans for a local model, or for a known family without weights (planning only). */
export function planResolver({ services }: GraphQLContext, args: PlanArgs): AnyPlan {
  const batch = args.batch ?? 1;
  const steps = args.steps ?? 1;
  for (const [name, value] of [
    ['width', args.width],
    ['height', args.height],
    ['batch', batch],
    ['steps', steps],
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
  const { operation, width, height } = args;
  if (operation === 'img2img')
    throw new GatewayError(
      'BAD_REQUEST',
      'plan takes ENCODE, DECODE, TEXT_ENCODE or DENOISE; an img2img request is planned stage by stage',
      { field: 'operation' },
    );
  if (isStageOperation(operation))
    return services.router.planStage('diffusion' in model ? stageModelOf(model) : model, operation, {
      width,
      height,
      batch,
      steps,
      guidance: args.guidance ?? true,
    });
  return services.router.plan(model, operation, width, height, batch);
}
