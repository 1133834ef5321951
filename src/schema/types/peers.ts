import type { PeerSnapshot } from '../../peers/directory.js';
import type { PeerSpeed } from '../../peers/registry.js';
import { builder } from '../builder.js';
import { OperationEnum } from './enums.js';

const PeerModelType = builder.objectRef<PeerSnapshot['models'][number]>('PeerModel').implement({
  fields: (t) => ({
    id: t.exposeString('id'),
    operations: t.field({ type: [OperationEnum], resolve: (m) => m.operations }),
  }),
});

const PeerSpeedType = builder.objectRef<PeerSpeed>('PeerSpeed').implement({
  description: 'A run time the peer measured on itself (whole runs).',
  fields: (t) => ({
    model: t.exposeString('model'),
    operation: t.field({ type: OperationEnum, resolve: (s) => s.operation as 'encode' | 'decode' }),
    secondsPerMegapixel: t.exposeFloat('secondsPerMegapixel'),
  }),
});

export const PeerType = builder.objectRef<PeerSnapshot>('Peer').implement({
  description:
    'Another instance on the same Redis (PEERS=true), as its last heartbeat described it. Requests that do not ' +
    'fit here, or would wait longer here, go to a peer with room as an UPSTREAM route whose target is `peer:<name>`.',
  fields: (t) => ({
    name: t.exposeString('name'),
    target: t.exposeString('target', { description: 'The route target of requests sent there.' }),
    url: t.exposeString('url'),
    models: t.field({ type: [PeerModelType], resolve: (p) => p.models }),
    device: t.exposeString('device'),
    budgetBytes: t.float({ resolve: (p) => p.budgetBytes }),
    freeBytes: t.float({ resolve: (p) => p.freeBytes }),
    queued: t.exposeInt('queued', { description: 'Requests waiting for its device.' }),
    running: t.exposeInt('running'),
    maxQueueLength: t.exposeInt('maxQueueLength'),
    drainSeconds: t.float({
      description: 'Seconds until what runs and waits there now is done (its estimate).',
      resolve: (p) => p.drainSeconds,
    }),
    speed: t.field({ type: [PeerSpeedType], resolve: (p) => p.speed }),
    lastSeen: t.field({ type: 'DateTime', resolve: (p) => new Date(p.lastSeen) }),
  }),
});
