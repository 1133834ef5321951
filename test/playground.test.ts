/**
 * The web playground in a real browser: Debian's headless Chromium driven by playwright-core (the
 * system binary; nothing is downloaded). CHROMIUM_PATH overrides /usr/bin/chromium. Without the
 * binary this test fails and says how to install it (`.ci/run` installs it).
 */

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { parseSafetensors } from '../src/tensors/safetensors.ts';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';
import { type RunningGateway, startGateway } from './support/server.ts';
import { writeTinyPipeline } from './support/tiny-pipeline.ts';

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
  // The shared VAEs, and a tiny pipeline folder (SD 1.5 layout, PNDM) for the img2img panel.
  const models = join(dir, 'models');
  mkdirSync(models);
  for (const id of ['taef2', 'taesana']) symlinkSync(join(MODELS_DIR, id), join(models, id));
  writeTinyPipeline(join(models, 'tiny-sd'));
  [gateway, browser] = await Promise.all([
    startGateway({ MODELS_DIR: models, DATA_DIR: join(dir, 'data'), DEVICE_MEMORY: '4GiB' }),
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
    assert.deepEqual(options.sort(), ['taef2', 'taesana', 'tiny-sd']);
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
      await page.$$eval('#encode-progress, #decode-progress', (bars) =>
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

  test('img2img panel: live stage and step progress, the result image, the seed used', async () => {
    const { page, problems } = await openPlayground();
    await page.waitForSelector('#img2img[data-state=ready]');
    assert.deepEqual(
      await page.$$eval('#i2i-model option', (list) => list.map((o) => (o as HTMLOptionElement).value)),
      ['tiny-sd'],
    );
    assert.equal(await page.textContent('#i2i-scheduler option[value=""]'), "the model's (PNDM)");
    await page.setInputFiles('#i2i-image', join(IMAGES_DIR, 'chelsea.png'));
    await page.fill('#i2i-prompt', 'a photo of a cat');
    await page.fill('#i2i-strength', '0.5');
    await page.fill('#i2i-steps', '4');
    await page.fill('#i2i-seed', '');
    // Every text the progress line shows while the job runs.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { progressSeen: string[] }).progressSeen = seen;
      const text = document.getElementById('i2i-text')!;
      new MutationObserver(() => seen.push(text.textContent ?? '')).observe(text, { childList: true });
    });
    await page.click('#i2i-run');
    await page.waitForSelector('#img2img:is([data-state=done], [data-state=error], [data-state=cancelled])', {
      timeout: 60_000,
    });
    assert.equal(await page.getAttribute('#img2img', 'data-state'), 'done', (await page.textContent('#i2i-error'))!);

    const seen = await page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen);
    assert.deepEqual(
      seen.filter((text) => text.startsWith('denoise step')),
      ['denoise step 1/3 · timestep 501', 'denoise step 2/3 · timestep 251', 'denoise step 3/3 · timestep 1'],
    );
    assert.ok(
      ['text encode', 'encode', 'decode'].every((stage) => seen.some((text) => text.startsWith(`${stage} routed`))),
      seen.join('\n'),
    );
    assert.deepEqual(
      await page.$$eval('#i2i-stages li', (items) => items.map((li) => (li as HTMLElement).dataset.status)),
      ['done', 'done', 'done', 'done'],
    );
    const events = await page.$$eval('#i2i-events li', (items) => items.map((li) => li.textContent ?? ''));
    assert.equal(events.filter((e) => / RUNNING DENOISE \d\/3 t=/.test(e)).length, 3, events.join('\n'));

    // The result: chelsea.png (451x300) resized to multiples of 8, as diffusers does, and the seed drawn.
    const result = await page.$eval('#i2i-result', (img) => ({
      w: (img as HTMLImageElement).naturalWidth,
      h: (img as HTMLImageElement).naturalHeight,
      hidden: (img as HTMLImageElement).hidden,
    }));
    assert.deepEqual(result, { w: 448, h: 296, hidden: false });
    const seed = await page.getAttribute('#img2img', 'data-seed');
    assert.match(seed!, /^\d+$/);
    assert.match(
      (await page.textContent('#i2i-result-meta'))!,
      new RegExp(`448x296 PNG · seed ${seed} · PNDM, 3 step`),
    );
    await page.click('#i2i-reuse-seed');
    assert.equal(await page.inputValue('#i2i-seed'), seed);
    await page.screenshot({ path: join(dir, 'img2img.png'), fullPage: true });
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('img2img panel: a refused request shows its code; cancel stops a long run', async () => {
    const { page } = await openPlayground();
    await page.waitForSelector('#img2img[data-state=ready]');
    await page.setInputFiles('#i2i-image', join(IMAGES_DIR, 'chelsea.png'));
    await page.fill('#i2i-prompt', 'a cat');
    await page.fill('#i2i-strength', '0.1');
    await page.fill('#i2i-steps', '4');
    await page.selectOption('#i2i-scheduler', 'EULER');
    await page.click('#i2i-run');
    await page.waitForSelector('#img2img:is([data-state=error], [data-state=done])', { timeout: 30_000 });
    assert.equal(await page.getAttribute('#i2i-error', 'data-code'), 'NO_DENOISING_STEPS');
    assert.match((await page.textContent('#i2i-error'))!, /^NO_DENOISING_STEPS: strength 0\.1 with 4 steps gives/);

    // 1000 steps run for seconds: cancel after the first one.
    await page.fill('#i2i-strength', '1');
    await page.fill('#i2i-steps', '1000');
    await page.click('#i2i-run');
    await page.waitForFunction(() => /^denoise step/.test(document.getElementById('i2i-text')!.textContent ?? ''), {
      timeout: 30_000,
    });
    assert.equal(await page.isVisible('#i2i-error'), false, 'the earlier error is cleared');
    await page.click('#i2i-cancel');
    await page.waitForSelector('#img2img:is([data-state=cancelled], [data-state=done], [data-state=error])', {
      timeout: 30_000,
    });
    assert.equal(await page.getAttribute('#img2img', 'data-state'), 'cancelled');
    assert.match((await page.textContent('#i2i-notice'))!, /^Cancelled: /);
    const steps = await page.$$eval('#i2i-events li', (items) =>
      items.filter((li) => / RUNNING DENOISE /.test(li.textContent ?? '')),
    );
    assert.ok(steps.length >= 1 && steps.length < 1000, `${steps.length} steps ran before the cancel`);
    assert.equal(await page.isHidden('#i2i-result'), true);
    await page.close();
  });

  test('the page and its modules are served; GraphiQL is off by default and says how to enable it', async () => {
    const html = await fetch(`${gateway.url}/`);
    assert.match(html.headers.get('content-type')!, /^text\/html/);
    const operations = await (await fetch(`${gateway.url}/web/operations.js`)).text();
    for (const name of [
      'ModelsDocument',
      'SubmitEncodeDocument',
      'SubmitDecodeDocument',
      'CancelJobDocument',
      'JobProgressDocument',
      'SubmitImg2imgDocument',
    ]) {
      assert.match(operations, new RegExp(`export const ${name} = "`));
    }
    // The gateway runs with the default settings: the playground needs neither GraphiQL nor introspection.
    const graphiql = await fetch(`${gateway.url}/graphql`, { headers: { accept: 'text/html' } });
    assert.equal(graphiql.status, 404);
    assert.match((await graphiql.json()).error, /GRAPHIQL=true/);
    assert.ok(readFileSync(join(dir, 'playground.png')).length > 10_000, 'a screenshot was taken');
    assert.ok(readFileSync(join(dir, 'img2img.png')).length > 10_000, 'a screenshot of img2img was taken');
  });
});
