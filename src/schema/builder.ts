import SchemaBuilder from '@pothos/core';
import type { Scope } from '../auth/keys.js';
import type { KeyLimiter, Ticket } from '../auth/limiter.js';
import type { Config } from '../config/config.js';
import type { DurableJobs } from '../jobs/durable-jobs.js';
import type { JobManager } from '../jobs/manager.js';
import type { ModelRegistry } from '../models/registry.js';
import type { PeerDirectory } from '../peers/directory.js';
import type { NoiseSource } from '../pipeline/img2img.js';
import type { PromptEncoder } from '../pipeline/prompt-encoding.js';
import type { HostLedger } from '../routing/host-ledger.js';
import type { EncodeBatcher, Router } from '../routing/index.js';
import type { ProfileSource } from '../routing/profile-source.js';
import type { ResultStore } from '../storage/result-store.js';
import type { UpstreamImg2ImgRunner } from '../upstream/pool.js';

/** The gateway's services, as every resolver (and HTTP handler) receives them. */
export interface Services {
  config: Config;
  registry: ModelRegistry;
  router: Router;
  store: ResultStore;
  profiles: ProfileSource;
  jobs: JobManager;
  /** With REDIS_URL: jobs on the shared queue, which then take the place of `jobs` (src/resolvers/jobs.ts). */
  durableJobs?: DurableJobs | null;
  /** HOST_MEMORY: what requests hold in this process (src/routing/host-ledger.ts). */
  host: HostLedger;
  /** Dynamic batching of encodes (BATCH_WINDOW_MS); absent or null = none. */
  batcher?: EncodeBatcher | null;
  /** Configured img2img endpoints; absent or null = none. */
  img2imgUpstreams?: UpstreamImg2ImgRunner | null;
  /** img2img's TEXT_ENCODE stage (tokenizers and text encoders). */
  prompts: PromptEncoder;
  /** Random draws for a seed; absent = the torch-compatible generator. Tests inject reference noise here. */
  noiseFor?: (seed: bigint) => NoiseSource;
  /** Rate limits and quotas per key (src/auth/limiter.ts). */
  limiter: KeyLimiter;
  /** Other instances this one routes to (PEERS=true); absent or null = none. */
  peers?: PeerDirectory | null;
}

export interface GraphQLContext {
  services: Services;
  /** The caller's API key; absent = the gateway runs without keys (the caller counts as 'anonymous'). */
  auth?: { keyName: string; scopes: readonly Scope[] };
  /** Each compute field's quota ticket by its response key, admitted at the edge (src/resolvers/metering.ts). */
  tickets?: ReadonlyMap<string, Ticket>;
}

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  Scalars: {
    File: { Input: File; Output: never };
    DateTime: { Input: Date; Output: Date };
    Seed: { Input: bigint; Output: bigint };
  };
  DefaultFieldNullability: false;
}>({ defaultFieldNullability: false });

builder.scalarType('File', {
  description: 'A file sent as part of a GraphQL multipart request.',
  serialize: () => {
    throw new Error('File is an input-only scalar');
  },
});

builder.scalarType('DateTime', {
  description: 'An ISO-8601 timestamp.',
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    const date = new Date(String(value));
    if (Number.isNaN(date.getTime())) throw new TypeError(`"${String(value)}" is not an ISO-8601 timestamp`);
    return date;
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
