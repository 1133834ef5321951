/**
 * The web playground in a real browser: Debian's headless Chromium driven by playwright-core (the
 * system binary; nothing is downloaded). CHROMIUM_PATH overrides /usr/bin/chromium. Without the
 * binary this test fails and says how to install it (`.ci/run` installs it).
 */

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { parseSafetensors } from '../src/tensors/safetensors.ts';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';
import { type RunningGateway, startGateway } from './support/server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let gateway: RunningGateway;
let browser: Browser;
const dir = mkdtempSync(join(tmpdir(), 'latentgate-web-'));

before(async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `Chromium is not at ${CHROMIUM}: install it with \`apt-get install -y chromium\` ` +
      `(Debian; .ci/run does this) or set CHROMIUM_PATH`,
  );
  [gateway, browser] = await Promise.all([
    startGateway({ MODELS_DIR, DATA_DIR: join(dir, 'data'), DEVICE_MEMORY: '4GiB' }),
    chromium.launch({ executablePath: CHROMIUM, args: ARGS }),
  ]);
});
after(async () => {
  await browser?.close();
  await gateway?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function openPlayground(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
  await page.goto(`${gateway.url}/`);
  await page.waitForSelector('body[data-state=ready]', { timeout: 15_000 });
  return { page, problems };
}

async function finish(page: Page): Promise<string> {
  await page.waitForSelector('body[data-state=done], body[data-state=error], body[data-state=cancelled]', {
    timeout: 60_000,
  });
  return page.evaluate(() => document.body.dataset.state!);
}

describe('web playground', () => {
  test('upload an image: progress, latent preview, decoded image beside the original, latent download', async () => {
    const { page, problems } = await openPlayground();
    const options = await page.$$eval('#model option', (list) => list.map((o) => (o as HTMLOptionElement).value));
    assert.deepEqual(options.sort(), ['taef2', 'taesana']);
    assert.equal(await page.inputValue('#model'), 'taef2', 'a model that also decodes is preselected');
    await page.setInputFiles('#image', join(IMAGES_DIR, 'astronaut.png'));
    await page.click('#run');
    assert.equal(await finish(page), 'done', (await page.textContent('#error')) ?? '');

    const decoded = await page.$eval('#decoded', (img) => ({
      w: (img as HTMLImageElement).naturalWidth,
      h: (img as HTMLImageElement).naturalHeight,
      hidden: (img as HTMLImageElement).hidden,
    }));
    assert.deepEqual(decoded, { w: 512, h: 512, hidden: false });
    const original = await page.$eval('#original', (img) => (img as HTMLImageElement).naturalWidth);
    assert.equal(original, 512);
    // The progress bars are full and the preview has the latent's size with real structure in it.
    assert.deepEqual(
      await page.$$eval('progress', (bars) =>
        bars.map((b) => (b as HTMLProgressElement).value / (b as HTMLProgressElement).max),
      ),
      [1, 1],
    );
    const preview = await page.$eval('#latent', (canvas) => {
      const c = canvas as HTMLCanvasElement;
      const pixels = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const distinct = new Set<number>();
      for (let i = 0; i < pixels.length; i += 4) distinct.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
      return { width: c.width, height: c.height, distinct: distinct.size };
    });
    assert.equal(preview.width, 64);
    assert.equal(preview.height, 64);
    assert.ok(preview.distinct > 500, `the preview has ${preview.distinct} colours`);
    const events = await page.$$eval('#events li', (items) => items.map((li) => li.textContent ?? ''));
    assert.ok(
      events.some((e) => /ROUTED LOCAL/.test(e)) && events.filter((e) => / DONE/.test(e)).length === 2,
      events.join('\n'),
    );

    // The download link gives the latent as safetensors.
    const href = await page.getAttribute('#download', 'href');
    assert.match(href!, /^\/v1\/latents\/[0-9a-f-]{36}\?format=safetensors$/);
    const file = parseSafetensors(new Uint8Array(await (await fetch(`${gateway.url}${href}`)).arrayBuffer()));
    assert.deepEqual(file.tensors.get('latent')!.shape, [1, 32, 64, 64]);

    await page.screenshot({ path: join(dir, 'playground.png'), fullPage: true });
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('errors are shown: a file that is not an image, and a model without a decoder', async () => {
    const { page } = await openPlayground();
    const bad = join(dir, 'not-an-image.png');
    writeFileSync(bad, 'this is text');
    await page.setInputFiles('#image', bad);
    await page.click('#run');
    assert.equal(await finish(page), 'error');
    assert.equal(await page.isVisible('#error'), true);
    assert.equal(await page.getAttribute('#error', 'data-code'), 'INVALID_IMAGE');
    assert.match((await page.textContent('#error'))!, /^INVALID_IMAGE: /);

    await page.selectOption('#model', 'taesana');
    await page.setInputFiles('#image', join(IMAGES_DIR, 'chelsea.png'));
    await page.click('#run');
    assert.equal(await finish(page), 'done');
    assert.equal(await page.isVisible('#error'), false, 'the earlier error is cleared');
    assert.match((await page.textContent('#notice'))!, /has no decoder/);
    assert.equal(await page.$eval('#latent', (c) => (c as HTMLCanvasElement).width), Math.floor(451 / 32));
    await page.close();
  });

  test('the page and its modules are served, and GraphiQL stays at /graphql', async () => {
    const html = await fetch(`${gateway.url}/`);
    assert.match(html.headers.get('content-type')!, /^text\/html/);
    const operations = await (await fetch(`${gateway.url}/web/operations.js`)).text();
    for (const name of [
      'ModelsDocument',
      'SubmitEncodeDocument',
      'SubmitDecodeDocument',
      'CancelJobDocument',
      'JobProgressDocument',
    ]) {
      assert.match(operations, new RegExp(`export const ${name} = "`));
    }
    const graphiql = await fetch(`${gateway.url}/graphql`, { headers: { accept: 'text/html' } });
    assert.match(await graphiql.text(), /graphiql/i);
    assert.ok(readFileSync(join(dir, 'playground.png')).length > 10_000, 'a screenshot was taken');
  });
});
