/** Yoga's string answers become byte bodies with the same bytes and headers (src/server/byte-bodies.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createFetch } from '@whatwg-node/fetch';
import { withByteBodies } from '../src/server/byte-bodies.ts';

const fetchAPI = createFetch();
const { Response } = withByteBodies(fetchAPI);

test('a string body is sent as its UTF-8 bytes, with its content type and length', async () => {
  const text = JSON.stringify({ data: { message: 'grüße ✓', latent: 'QUJD'.repeat(1000) } });
  const response = new Response(text, { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' } });
  const reference = new fetchAPI.Response(text, {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
  assert.ok(Buffer.isBuffer((response as unknown as { _buffer?: unknown })._buffer), 'held as bytes');
  assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(response.headers.get('content-length'), reference.headers.get('content-length'));
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), new Uint8Array(await reference.arrayBuffer()));
});

test('a string body without a content type is labelled as a string body would be; status kept', async () => {
  const response = new Response('not acceptable', { status: 406 });
  assert.equal(response.status, 406);
  assert.equal(response.headers.get('content-type'), new fetchAPI.Response('x').headers.get('content-type'));
  assert.equal(await response.text(), 'not acceptable');
});

test('other bodies pass through unchanged', async () => {
  assert.equal(new Response(null, { status: 204 }).body, null);
  const bytes = new Uint8Array([1, 2, 3]);
  assert.deepEqual(new Uint8Array(await new Response(bytes).arrayBuffer()), bytes);
});
