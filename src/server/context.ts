/** What every resolver and HTTP handler receives: the gateway's services (defined with the schema's context). */
export type { GraphQLContext, Services } from '../schema/builder.js';
