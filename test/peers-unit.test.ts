/**
 * Peer settings, and how the planner weighs a peer (a real PeerEndpoint over an advertised record) against the local
 * device: a peer with room wins over waiting here; a peer whose budget is too small for the run, or
 * whose queue is full, is no candidate; without a wait here, the expected times alone decide.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { type PeerEndpoint, peerEndpoints } from '../src/peers/peer-endpoint.ts';
import type { PeerRecord } from '../src/peers/registry.ts';
import { type DeviceView, planRoute } from '../src/routing/planner.ts';
import { shippedProfiles } from '../src/routing/profiles.ts';
import { RunStats } from '../src/routing/run-stats.ts';

const GIB = 2 ** 30;
const REQUEST = { operation: 'encode' as const, width: 512, height: 512, batch: 1, dtype: 'float32' as const };

function peer(overrides: Partial<PeerRecord> = {}): PeerEndpoint {
  const record: PeerRecord = {
    id: 'b',
    name: 'bee',
    url: 'http://10.0.0.2:4000',
    models: [{ id: 'sd15', operations: ['encode', 'decode'] }],
    device: 'local:cuda',
    budgetBytes: 8 * GIB,
    freeBytes: 8 * GIB,
    queued: 0,
    running: 0,
    maxQueueLength: 4,
    drainSeconds: 0,
    speed: [{ model: 'sd15', operation: 'encode', secondsPerMegapixel: 1 }],
    lastSeen: Date.now(),
    ...overrides,
  };
  const [vae] = peerEndpoints({ record }, 'ant', 'token');
  return vae;
}

function plan(device: DeviceView, endpoint: PeerEndpoint) {
  return planRoute('sd15', shippedProfiles('sd15')!, REQUEST, device, new RunStats(), {
    upstreams: [endpoint.view('encode')],
  });
}

const busyHere: DeviceView = { name: 'local:cpu', budgetBytes: 4 * GIB, freeBytes: 0, waitSeconds: () => 30 };
const idleHere: DeviceView = { name: 'local:cpu', budgetBytes: 4 * GIB, freeBytes: 4 * GIB, waitSeconds: () => 0 };

test('a peer with room is chosen over waiting here, and is named after the peer', () => {
  const chosen = plan(busyHere, peer());
  assert.equal(chosen.route, 'UPSTREAM');
  assert.equal(chosen.target, 'peer:bee');
  assert.match(chosen.reason, /expected sooner than local on local:cpu/);
  // The request carries the mark that stops the peer from forwarding it again, and the peer token.
  assert.deepEqual(peer().requestHeaders(), { Authorization: 'Bearer token', 'x-latentgate-forwarded-by': 'ant' });
});

test('a peer without room (budget, full queue) is no candidate; one that waits longer than here loses', () => {
  assert.equal(plan(busyHere, peer({ budgetBytes: 2 ** 20, freeBytes: 2 ** 20 })).route, 'LOCAL');
  assert.equal(plan(busyHere, peer({ queued: 4, freeBytes: 0, drainSeconds: 5 })).route, 'LOCAL');
  assert.equal(plan(busyHere, peer({ queued: 2, freeBytes: 0, drainSeconds: 60 })).route, 'LOCAL');
  assert.equal(plan(busyHere, peer({ queued: 2, freeBytes: 0, drainSeconds: 5 })).target, 'peer:bee');
  // Idle here: the local run unless the peer is that much faster (2 s per megapixel here, unmeasured).
  const slower = { speed: [{ model: 'sd15', operation: 'encode', secondsPerMegapixel: 3 }] };
  assert.equal(plan(idleHere, peer(slower)).route, 'LOCAL');
  assert.equal(plan(idleHere, peer()).target, 'peer:bee');
});

test('peer settings: off by default, need Redis, name and URL from PUBLIC_URL, the token a secret', () => {
  assert.equal(loadConfig({}).peers, null);
  assert.throws(() => loadConfig({ PEERS: 'true' }), /PEERS \(peers\) .*set REDIS_URL/);
  assert.throws(
    () =>
      loadConfig({
        PEERS: 'true',
        REDIS_URL: 'redis://127.0.0.1:6379',
        PEER_HEARTBEAT_MS: '2000',
        PEER_TTL_MS: '3000',
      }),
    /PEER_TTL_MS .* at least twice PEER_HEARTBEAT_MS/,
  );
  const peers = loadConfig({
    PEERS: 'true',
    REDIS_URL: 'redis://127.0.0.1:6379',
    PUBLIC_URL: 'http://10.0.0.5:4000/',
    PEER_TOKEN: 'lg_secret',
  }).peers!;
  assert.equal(peers.url, 'http://10.0.0.5:4000');
  assert.equal(peers.name, '10.0.0.5:4000');
  assert.equal(peers.ttlMs, 10_000);
  assert.equal(peers.token?.reveal(), 'lg_secret');
  assert.equal(JSON.stringify(peers.token), '"[secret]"');
});
