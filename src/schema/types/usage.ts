/** `usage`: what the calling key has consumed against its rate limit and daily compute quota. */
import type { Usage } from '../../auth/limiter.js';
import { usageResolver } from '../../resolvers/usage.js';
import { builder } from '../builder.js';

const RequestUsageType = builder.objectRef<Usage['requests']>('RequestUsage').implement({
  description: 'Requests counted in the current rate-limit window (windows are aligned to the clock).',
  fields: (t) => ({
    used: t.exposeInt('used', { description: 'Requests admitted in this window.' }),
    limit: t.exposeInt('limit', { nullable: true, description: 'Requests allowed per window; null = no limit.' }),
    windowSeconds: t.exposeInt('windowSeconds'),
    resetsAt: t.field({ type: 'DateTime', description: 'When this window ends.', resolve: (u) => u.resetsAt }),
  }),
});

const ComputeUsageType = builder.objectRef<Usage['pixelSeconds']>('ComputeUsage').implement({
  description:
    'Compute counted today (UTC) in pixel-seconds: image pixels x run seconds; a request in flight ' +
    'counts its estimate until it finishes.',
  fields: (t) => ({
    used: t.exposeFloat('used'),
    limit: t.exposeFloat('limit', { nullable: true, description: 'Pixel-seconds allowed per day; null = no quota.' }),
    resetsAt: t.field({ type: 'DateTime', description: 'The next midnight, UTC.', resolve: (u) => u.resetsAt }),
  }),
});

const UsageType = builder.objectRef<Usage>('Usage').implement({
  fields: (t) => ({
    key: t.exposeString('keyName', { description: "The calling key's name ('anonymous' without keys)." }),
    requests: t.field({ type: RequestUsageType, resolve: (u) => u.requests }),
    pixelSeconds: t.field({ type: ComputeUsageType, resolve: (u) => u.pixelSeconds }),
  }),
});

builder.queryField('usage', (t) =>
  t.field({
    type: UsageType,
    description: "The calling key's own consumption, limits and reset times.",
    resolve: (_root, _args, ctx) => usageResolver(ctx),
  }),
);
