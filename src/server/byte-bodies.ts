/**
 * Yoga's answers with their text as bytes. Yoga builds each JSON answer as a string; node:http then
 * measures it and transcodes it to UTF-8 while writing (~1.2 ms for a 512² encode's 700 KB base64
 * answer), while a Buffer body is written as it is (one UTF-8 copy, ~0.5 ms). Same headers, same bytes.
 */
import type { FetchAPI } from 'graphql-yoga';

export function withByteBodies(fetchAPI: FetchAPI): FetchAPI {
  const Base = fetchAPI.Response;
  class ByteBodyResponse extends Base {
    constructor(body?: BodyInit | null, init?: ResponseInit) {
      if (typeof body !== 'string') {
        super(body, init);
        return;
      }
      const headers = new fetchAPI.Headers(init?.headers);
      // What a string body would have been labelled with.
      if (!headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
      super(Buffer.from(body, 'utf8'), { ...init, headers });
    }
  }
  return { ...fetchAPI, Response: ByteBodyResponse as typeof Response };
}
