import { type ModelDefinition, servedOperationsOf } from '../../models/model.js';
import { SCHEDULER_CLASS_OF, type SchedulerName } from '../../pipeline/img2img-types.js';
import { builder } from '../builder.js';
import { OperationEnum } from './enums.js';
import { SchedulerEnum } from './img2img.js';

const SCHEDULER_NAME_OF = new Map(
  Object.entries(SCHEDULER_CLASS_OF).map(([name, className]) => [className as string, name as SchedulerName]),
);

export const ModelType = builder
  .objectRef<ModelDefinition & { runsOn: string; upstreams: string[] }>('Model')
  .implement({
    description: 'A model this gateway can encode or decode with.',
    fields: (t) => ({
      id: t.exposeString('id'),
      family: t.string({ description: 'sd15, sdxl, flux1 or tae.', resolve: (m) => m.family.id }),
      format: t.exposeString('format', {
        description:
          'How its weights are stored: tae-safetensors or onnx; ' +
          'upstream when it has none here and runs only on upstream endpoints.',
      }),
      latentChannels: t.exposeInt('latentChannels'),
      downscaleFactor: t.exposeInt('downscaleFactor'),
      inputRange: t.string({
        description: 'Pixel range the encoder takes: zero-one or minus-one-one.',
        resolve: (m) => m.family.inputRange,
      }),
      operations: t.field({
        type: [OperationEnum],
        description: 'What the gateway serves: local networks and upstream endpoints together.',
        resolve: (m) => servedOperationsOf(m),
      }),
      scalingFactor: t.float({
        description: 'Default scaling, applied as (z - shift) * scale on encode.',
        resolve: (m) => m.family.scalingFactor,
      }),
      shiftFactor: t.float({ resolve: (m) => m.family.shiftFactor }),
      scheduler: t.field({
        type: SchedulerEnum,
        nullable: true,
        description:
          "img2img's default scheduler: the class the folder's scheduler_config.json names. Null for a model " +
          'without img2img, or one whose folder names a class the gateway lacks (see schedulerClass).',
        resolve: (m) => (m.diffusion ? (SCHEDULER_NAME_OF.get(m.diffusion.schedulerClass) ?? null) : null),
      }),
      schedulerClass: t.string({
        nullable: true,
        description: "The diffusers scheduler class the folder's scheduler_config.json names, as written.",
        resolve: (m) => m.diffusion?.schedulerClass ?? null,
      }),
      runsOn: t.exposeString('runsOn', {
        description:
          'Where it runs, e.g. local:cpu or local:cuda; for a model without local weights, its upstream endpoints.',
      }),
      upstreams: t.exposeStringList('upstreams', {
        description: 'Upstream endpoints configured for it (route targets such as upstream:10.0.0.2:4000).',
      }),
    }),
  });
