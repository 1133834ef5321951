import { modelsResolver, planResolver } from '../../resolvers/queries.js';
import { builder } from '../builder.js';
import { OperationEnum } from './enums.js';
import { ModelType } from './model.js';
import { PlanType } from './plan.js';

builder.queryField('models', (t) =>
  t.field({ type: [ModelType], resolve: (_root, _args, ctx) => modelsResolver(ctx) }),
);

builder.queryField('plan', (t) =>
  t.field({
    type: PlanType,
    description: 'How the router would run a request now, without running it.',
    args: {
      model: t.arg.string({ required: true }),
      operation: t.arg({ type: OperationEnum, required: true }),
      width: t.arg.int({ required: true }),
      height: t.arg.int({ required: true }),
      batch: t.arg.int({ required: false, defaultValue: 1 }),
      steps: t.arg.int({
        required: false,
        description: 'DENOISE: the denoising steps that will run (network calls); default 1.',
      }),
      guidance: t.arg.boolean({
        required: false,
        description: 'TEXT_ENCODE / DENOISE: classifier-free guidance (doubles the network batch); default true.',
      }),
    },
    resolve: (_root, args, ctx) => planResolver(ctx, args),
  }),
);
