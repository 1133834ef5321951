import type { GraphQLContext } from '../schema/builder.js';

/** The services as the pipelines see them for this caller: the results they keep belong to its key. */
export function ownedServices({ services, auth }: GraphQLContext): GraphQLContext['services'] & { owner?: string } {
  return auth ? { ...services, owner: auth.keyName } : services;
}
