/**
 * SIGTERM on a real gateway process: runs in flight finish and are answered while new work is refused
 * (SERVICE_UNAVAILABLE, /healthz "draining" with 503), then the process exits 0; a job the grace
 * deadline cuts short ends FAILED with the reason, seen by its subscriber.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';
import { type RunningGateway, startGateway } from './support/server.ts';
import { until } from './support/until.ts';

const ENCODE = 'mutation($i: EncodeInput!) { encode(input: $i) { latent { data } } }';
const SUBMIT = 'mutation($i: EncodeInput!) { submitEncode(input: $i) { id } }';
const JOB = 'query($id: ID!) { job(id: $id) { status error { code message } } }';
const SMALL = readFileSync(join(IMAGES_DIR, 'coffee.png')).toString('base64');
// About 3 s on one thread: long enough to be in flight when the signal comes.
const BIG = readFileSync(join(IMAGES_DIR, 'astronaut-1024.png')).toString('base64');

const input = (base64: string) => ({ i: { model: 'taef2', image: { base64 } } });
const exitOf = (gateway: RunningGateway) =>
  new Promise<number | null>((resolve) => gateway.process.once('exit', (code) => resolve(code)));

/** The body as far as it came: the gateway may close the connection after the last event. */
async function readAll(response: Response): Promise<string> {
  let text = '';
  const decoder = new TextDecoder();
  const reader = response.body!.getReader();
  try {
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      text += decoder.decode(chunk.value, { stream: true });
  } catch {
    // The gateway closed the connection: what came before it is the answer.
  }
  return text;
}

const jobStatus = async (gateway: RunningGateway, id: string) =>
  (await gateway.graphql(JOB, { id })).data?.job?.status as string | undefined;

test('SIGTERM drains: the runs in flight finish and are answered, new work is refused, exit 0', async () => {
  const gateway = await startGateway({ MODELS_DIR, INTRA_OP_THREADS: '1', SHUTDOWN_GRACE_SECONDS: '60' });
  try {
    const submitted = await gateway.graphql(SUBMIT, input(SMALL));
    const jobId = submitted.data.submitEncode.id as string;
    const slow = gateway.graphql(ENCODE, input(BIG));
    await until('both runs started', 10_000, async () => {
      const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
      const running = Number(/^latentgate_running\{[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? 0);
      return running >= 2 || (running >= 1 && (await jobStatus(gateway, jobId)) === 'DONE') ? true : null;
    });
    const exited = exitOf(gateway);
    gateway.process.kill('SIGTERM');

    const health = await until('/healthz saying draining', 5000, async () => {
      const response = await fetch(`${gateway.url}/healthz`);
      return response.status === 503 ? response : null;
    });
    assert.equal(((await health.json()) as { status: string }).status, 'draining');

    // New compute is refused at once, with the status and Retry-After a client or balancer acts on.
    const refused = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: ENCODE, variables: input(SMALL) }),
    });
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
    const { errors } = (await refused.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
    assert.equal(errors[0].extensions.code, 'SERVICE_UNAVAILABLE');
    assert.match(errors[0].message, /shutting down/);

    // The job can still be read, and finishes.
    assert.equal(
      await until('the job DONE', 20_000, async () => ((await jobStatus(gateway, jobId)) === 'DONE' ? true : null)),
      true,
    );
    const answer = await slow;
    assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
    assert.ok(answer.data.encode.latent.data.length > 0, 'the slow run was answered in full');
    assert.equal(await exited, 0);
    assert.match(gateway.output(), /drained; exiting/);
  } finally {
    await gateway.stop();
  }
});

test('jobs the grace deadline cuts short (running and queued) end FAILED with the reason, seen by subscribers', async () => {
  // Tiled (512 px tiles), so the interrupted run stops at a tile boundary instead of finishing its one
  // long native call (which the process could not exit during); the second job waits for memory.
  const gateway = await startGateway({
    MODELS_DIR,
    INTRA_OP_THREADS: '1',
    DEVICE_MEMORY: '800MiB',
    DEVICE_HEADROOM: '16MiB',
    SHUTDOWN_GRACE_SECONDS: '1',
  });
  try {
    const ids = await Promise.all(
      [BIG, BIG].map(async (image) => (await gateway.graphql(SUBMIT, input(image))).data.submitEncode.id as string),
    );
    const subscriptions = ids.map((id) =>
      fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({
          query:
            'subscription($id: ID!) { jobProgress(id: $id) { __typename status ... on JobFailedEvent { error { code message } } } }',
          variables: { id },
        }),
      }),
    );
    // One runs, the other waits for memory.
    const statuses = await until('one job running, the other queued', 10_000, async () => {
      const now = await Promise.all(ids.map((id) => jobStatus(gateway, id)));
      return now.includes('RUNNING') && now.includes('QUEUED') ? now : null;
    });
    assert.deepEqual([...statuses].sort(), ['QUEUED', 'RUNNING']);
    const exited = exitOf(gateway);
    const signalled = Date.now();
    gateway.process.kill('SIGTERM');

    for (const subscription of subscriptions) {
      const stream = await readAll(await subscription);
      const last = [...stream.matchAll(/event: next\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1])).at(-1);
      assert.deepEqual(last?.data?.jobProgress, {
        __typename: 'JobFailedEvent',
        status: 'FAILED',
        error: { code: 'SERVICE_UNAVAILABLE', message: 'the gateway shut down before the job finished' },
      });
    }
    assert.equal(await exited, 0);
    assert.ok(Date.now() - signalled < 10_000, 'exited soon after the 1 s grace');
    assert.match(gateway.output(), /2 job\(s\) still queued or running end FAILED/);
  } finally {
    await gateway.stop();
  }
});
