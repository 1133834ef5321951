import { ANONYMOUS } from '../auth/limit-specs.js';
import type { Usage } from '../auth/limiter.js';
import type { GraphQLContext } from '../schema/builder.js';

/** The calling key's own consumption; a caller without a key sees 'anonymous'. */
export function usageResolver({ services, auth }: GraphQLContext): Promise<Usage> {
  return services.limiter.usage(auth?.keyName ?? ANONYMOUS);
}
