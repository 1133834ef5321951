// @ts-check
/**
 * The playground: pick a model, upload an image, and watch it go through the gateway as two jobs —
 * submitEncode, then submitDecode of the latent URL — with progress from the jobProgress
 * subscription (GraphQL over SSE). Shows the original, a latent preview and the decoded image side
 * by side, offers the latent as safetensors, and shows every error with its code.
 *
 * The img2img panel runs submitImg2img the same way: live stage and denoising-step progress (with
 * each step's timestep), cancel, the result image, and the seed the gateway used, to run it again.
 *
 * The GraphQL documents come from /web/operations.js: the ones graphql-codegen generated from
 * src/client/operations.ts for the typed client.
 */

import { decodeLatent, latentToRgba } from './latent-preview.js';
import {
  CancelJobDocument,
  JobProgressDocument,
  ModelsDocument,
  SubmitDecodeDocument,
  SubmitEncodeDocument,
  SubmitImg2imgDocument,
} from './operations.js';

const ENDPOINT = '/graphql';
/** Where the API key is kept: this tab only, gone when it closes. */
const KEY_STORAGE = 'latentgate.apiKey';

/** `Authorization: Bearer KEY` when the user gave a key (a gateway with API keys needs one). */
function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** @param {string} id */
function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing`);
  return /** @type {any} */ (element);
}

class GatewayError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** @param {{ message: string, extensions?: { code?: string } }[]} errors */
function errorFrom(errors) {
  return new GatewayError(errors[0]?.extensions?.code ?? 'ERROR', errors.map((e) => e.message).join('; '));
}

/**
 * A query or mutation; with `file`, a GraphQL multipart request with the file at `variables.input.image.upload`.
 * @param {string} query @param {object} variables @param {File} [file]
 */
async function request(query, variables, file) {
  /** @type {RequestInit} */
  let init;
  if (file) {
    const form = new FormData();
    form.set('operations', JSON.stringify({ query, variables }));
    form.set('map', JSON.stringify({ 0: ['variables.input.image.upload'] }));
    form.set('0', file, file.name);
    // The gateway refuses a multipart request without it (a form on another site cannot add it).
    init = { method: 'POST', headers: { 'x-graphql-yoga-csrf': '1', ...authHeaders() }, body: form };
  } else {
    init = {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...authHeaders(),
      },
      body: JSON.stringify({ query, variables }),
    };
  }
  let response;
  try {
    response = await fetch(ENDPOINT, init);
  } catch (error) {
    throw new GatewayError('NETWORK', `cannot reach the gateway: ${/** @type {Error} */ (error).message}`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GatewayError('NETWORK', `the gateway answered ${response.status} without a GraphQL response`);
  }
  if (body.errors?.length) throw errorFrom(body.errors);
  return body.data;
}

/**
 * A subscription over SSE (fetch streaming): yields each result's data until `complete`.
 * @param {string} query @param {object} variables @param {AbortSignal} signal
 */
async function* subscribe(query, variables, signal) {
  const response = await fetch(ENDPOINT, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...authHeaders() },
    body: JSON.stringify({ query, variables }),
    signal,
  });
  if (!response.ok || !response.body || !response.headers.get('content-type')?.startsWith('text/event-stream')) {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      if (body.errors?.length) throw errorFrom(body.errors);
    } catch (error) {
      if (error instanceof GatewayError) throw error;
    }
    throw new GatewayError('NETWORK', `the gateway answered ${response.status} instead of an event stream`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new GatewayError('NETWORK', 'the progress stream ended early');
    buffer += value;
    for (let end = /\r?\n\r?\n/.exec(buffer); end; end = /\r?\n\r?\n/.exec(buffer)) {
      const block = buffer.slice(0, end.index);
      buffer = buffer.slice(end.index + end[0].length);
      let event = 'message';
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (event === 'complete') return;
      if (event !== 'next' || data.length === 0) continue;
      const result = JSON.parse(data.join('\n'));
      if (result.errors?.length) throw errorFrom(result.errors);
      yield result.data;
    }
  }
}

// ---- state -----------------------------------------------------------------------------------

/** @type {any[]} models that encode (the encode/decode panel) */
let models = [];
/** @type {any[]} models that serve img2img */
let img2imgModels = [];
/** @type {string | null} */
let currentJob = null;
/** @type {{ values: Float32Array, shape: number[], meta: string } | null} */
let latent = null;
let run = 0;

/** @param {string} state */
function setState(state) {
  document.body.dataset.state = state;
  const busy = state === 'encoding' || state === 'decoding';
  $('run').disabled = busy || !$('image').files?.length || !$('model').value;
  $('cancel').disabled = !busy;
  $('model').disabled = busy || models.length === 0;
  $('image').disabled = busy;
}

/** @param {unknown} error @param {string} [prefix] `i2i-` for the img2img panel */
function showError(error, prefix = '') {
  const box = $(`${prefix}error`);
  const code = error instanceof GatewayError ? error.code : 'ERROR';
  const message = error instanceof Error ? error.message : String(error);
  box.replaceChildren();
  const strong = document.createElement('code');
  strong.textContent = code;
  box.append(strong, `: ${message}`);
  box.dataset.code = code;
  box.hidden = false;
  console.error(`[playground] ${code}: ${message}`);
}

/** @param {string | null} text @param {string} [prefix] */
function showNotice(text, prefix = '') {
  $(`${prefix}notice`).textContent = text ?? '';
  $(`${prefix}notice`).hidden = !text;
}

/** @param {'encode' | 'decode'} step @param {number} value @param {number} max @param {string} text */
function setProgress(step, value, max, text) {
  const bar = $(`${step}-progress`);
  bar.max = Math.max(1, max);
  bar.value = value;
  $(`${step}-text`).textContent = text;
}

/** @param {HTMLElement} list @param {any} event */
function logEvent(list, event) {
  const item = document.createElement('li');
  // img2img events name their stage; DENOISE ones their timestep.
  const stage = event.stage ? `${event.stage} ` : '';
  const detail =
    event.__typename === 'JobQueuedEvent'
      ? `position ${event.position ?? '–'}`
      : event.__typename === 'JobRoutedEvent'
        ? `${stage}${event.route.route} on ${event.route.target}: ${event.route.reason}`
        : event.__typename === 'JobRunningEvent'
          ? `${stage}${event.done}/${event.total}${event.timestep === null ? '' : ` t=${event.timestep}`}`
          : event.__typename === 'JobFailedEvent'
            ? `${event.error.code}: ${event.error.message}`
            : event.__typename === 'JobCancelledEvent'
              ? event.reason
              : '';
  item.textContent = `${event.jobId.slice(0, 8)} #${event.seq} ${event.type} ${detail}`;
  list.append(item);
}

/** A URL of this gateway → its path, so it is fetched from the origin the page came from. @param {string} url */
function localPath(url) {
  const parsed = new URL(url, location.href);
  return parsed.pathname + parsed.search;
}

/** @param {number} bytes */
function formatBytes(bytes) {
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

// ---- jobs ------------------------------------------------------------------------------------

/**
 * Reads a job's events to its terminal one (the stream completes right after it), each logged in
 * `list` and given to `onEvent`; returns the terminal event.
 * @param {string} jobId @param {HTMLElement} list @param {(event: any) => void} onEvent
 */
async function followJob(jobId, list, onEvent) {
  const abort = new AbortController();
  /** @type {any} */
  let terminal = null;
  try {
    for await (const data of subscribe(JobProgressDocument, { id: jobId }, abort.signal)) {
      const event = data.jobProgress;
      logEvent(list, event);
      onEvent(event);
      if (['JobDoneEvent', 'JobFailedEvent', 'JobCancelledEvent'].includes(event.__typename)) terminal = event;
    }
  } catch (error) {
    abort.abort();
    throw error;
  }
  return terminal;
}

/**
 * Follows a job to its terminal event, driving the step's progress bar.
 * @param {'encode' | 'decode'} step @param {string} jobId
 */
async function follow(step, jobId) {
  currentJob = jobId;
  /** @type {any} */
  let terminal = null;
  let progress = { done: 0, total: 1 };
  try {
    terminal = await followJob(jobId, $('events'), (event) => {
      switch (event.__typename) {
        case 'JobQueuedEvent':
          setProgress(
            step,
            0,
            1,
            event.position === null ? 'queued' : `waiting for device memory (#${event.position})`,
          );
          break;
        case 'JobRoutedEvent':
          setProgress(
            step,
            0,
            1,
            `routed ${event.route.route}` +
              `${event.route.tile ? ` (${event.route.tile} px tiles)` : ''} on ${event.route.target}`,
          );
          break;
        case 'JobRunningEvent':
          progress = event;
          setProgress(
            step,
            event.done,
            event.total,
            `running ${event.done}/${event.total}${event.total > 1 ? ' tiles' : ''}`,
          );
          break;
      }
    });
  } finally {
    currentJob = null;
  }
  switch (terminal?.__typename) {
    case 'JobDoneEvent':
      setProgress(step, 1, 1, `done in ${terminal.result.seconds.toFixed(2)} s (${terminal.result.route.route})`);
      return terminal;
    case 'JobFailedEvent':
      setProgress(step, 0, 1, `failed: ${terminal.error.code}`);
      throw new GatewayError(terminal.error.code, terminal.error.message);
    case 'JobCancelledEvent':
      setProgress(step, progress.done, progress.total, `cancelled after ${progress.done}/${progress.total}`);
      throw new GatewayError('CANCELLED', terminal.reason);
    default:
      throw new GatewayError('NETWORK', 'the progress stream ended without a result');
  }
}

function drawLatent() {
  if (!latent) return;
  const { width, height, rgba, description } = latentToRgba(latent.values, latent.shape, $('mapping').value);
  const canvas = $('latent');
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(new ImageData(/** @type {any} */ (rgba), width, height), 0, 0);
  canvas.hidden = false;
  canvas.dataset.description = description;
  $('latent-meta').textContent = `${latent.meta} · ${description}`;
}

async function encodeAndDecode() {
  const file = $('image').files?.[0];
  const model = models.find((m) => m.id === $('model').value);
  if (!file || !model) return;
  const mine = ++run;
  $('error').hidden = true;
  showNotice(null);
  $('events').replaceChildren();
  $('latent').hidden = true;
  $('decoded').hidden = true;
  $('decoded').removeAttribute('src');
  $('download').hidden = true;
  $('latent-meta').textContent = '';
  $('decoded-meta').textContent = '';
  setProgress('encode', 0, 1, 'submitting');
  setProgress('decode', 0, 1, '–');
  latent = null;
  try {
    setState('encoding');
    const submitted = await request(
      SubmitEncodeDocument,
      { input: { model: model.id, image: { upload: null }, dtype: $('dtype').value, delivery: 'URL' } },
      file,
    );
    const encoded = (await follow('encode', submitted.submitEncode.id)).result;
    const path = localPath(encoded.latent.url);
    const response = await fetch(path, { headers: authHeaders() });
    if (!response.ok)
      throw new GatewayError(`HTTP ${response.status}`, `fetching the latent ${path} failed: ${await response.text()}`);
    const shape = JSON.parse(response.headers.get('shape') ?? '[]');
    const dtype = response.headers.get('dtype') ?? 'float32';
    const meta =
      `[${shape.join(', ')}] ${dtype}, ${formatBytes(encoded.latent.byteLength)}` +
      (encoded.resized ? `, image resized to ${encoded.width}x${encoded.height}` : '');
    latent = { values: decodeLatent(await response.arrayBuffer(), dtype), shape, meta };
    drawLatent();
    const download = $('download');
    download.href = `${path}?format=safetensors`;
    download.download = `${file.name.replace(/\.[^.]+$/, '')}-${model.id}.safetensors`;
    download.hidden = false;

    if (!model.operations.includes('DECODE')) {
      showNotice(
        `Model "${model.id}" has no decoder (it supports ${model.operations.join(', ').toLowerCase()}), ` +
          `so there is no decoded image.`,
      );
      setProgress('decode', 0, 1, 'not available for this model');
      setState('done');
      return;
    }
    setState('decoding');
    setProgress('decode', 0, 1, 'submitting');
    const decodeJob = await request(SubmitDecodeDocument, {
      input: { model: model.id, latent: { url: encoded.latent.url }, format: 'PNG', delivery: 'URL' },
    });
    const decoded = (await follow('decode', decodeJob.submitDecode.id)).result;
    const image = decoded.images[0];
    const img = $('decoded');
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new GatewayError('IMAGE', `the decoded image ${image.url} did not load`));
      img.src = localPath(image.url);
    });
    img.hidden = false;
    $('decoded-meta').textContent =
      `${image.width}x${image.height} ${image.format}, ${formatBytes(image.byteLength)} · ` +
      `decode ${decoded.seconds.toFixed(2)} s`;
    if (mine === run) setState('done');
  } catch (error) {
    if (mine !== run) return;
    if (error instanceof GatewayError && error.code === 'CANCELLED') {
      showNotice(`Cancelled: ${error.message}`);
      setState('cancelled');
      return;
    }
    showError(error);
    setState('error');
  }
}

function describeModel() {
  const model = models.find((m) => m.id === $('model').value);
  $('model-info').textContent = model
    ? `${model.id}: ${model.family}, ${model.latentChannels} latent channels, ${model.downscaleFactor}x, ` +
      `${model.operations.join(' + ').toLowerCase()}, runs on ${model.runsOn}`
    : '';
}

async function loadModels() {
  /** @type {any[]} */
  let all;
  try {
    all = (await request(ModelsDocument, {})).models;
  } catch (error) {
    showError(error);
    showError(error, 'i2i-');
    setState('error');
    setImg2imgState('error');
    return;
  }
  loadImg2imgModels(all);
  try {
    models = all.filter((/** @type {any} */ m) => m.operations.includes('ENCODE'));
    const select = $('model');
    select.replaceChildren(
      ...models.map((m) => {
        const option = document.createElement('option');
        option.value = m.id;
        option.textContent = `${m.id} (${m.operations.join(', ').toLowerCase()})`;
        return option;
      }),
    );
    if (models.length === 0)
      throw new GatewayError('NO_MODELS', 'the gateway has no model that can encode (see MODELS_DIR)');
    const preferred = models.find((m) => m.operations.includes('DECODE'));
    if (preferred) select.value = preferred.id;
    describeModel();
    setState('ready');
  } catch (error) {
    showError(error);
    setState('error');
  }
}

// ---- img2img ---------------------------------------------------------------------------------

/** @type {string | null} */
let img2imgJob = null;
let img2imgRun = 0;
const STAGES = ['TEXT_ENCODE', 'ENCODE', 'DENOISE', 'DECODE'];

/** @param {string} state loading | ready | running | done | error | cancelled | unavailable */
function setImg2imgState(state) {
  $('img2img').dataset.state = state;
  const busy = state === 'running';
  $('i2i-run').disabled = busy || !$('i2i-image').files?.length || !$('i2i-model').value;
  $('i2i-cancel').disabled = !busy;
  for (const id of ['i2i-model', 'i2i-image', 'i2i-scheduler']) $(id).disabled = busy || img2imgModels.length === 0;
}

/**
 * Marks the stages before `stage` done and `stage` active (all done with null, at the end).
 * @param {string | null} stage
 */
function markStage(stage) {
  const current = stage === null ? STAGES.length : STAGES.indexOf(stage);
  for (const item of $('i2i-stages').children) {
    const index = STAGES.indexOf(item.dataset.stage);
    item.dataset.status = index < current ? 'done' : index === current ? 'active' : 'pending';
  }
}

/** @param {number} value @param {number} max @param {string} text */
function setImg2imgProgress(value, max, text) {
  $('i2i-progress').max = Math.max(1, max);
  $('i2i-progress').value = value;
  $('i2i-text').textContent = text;
}

function describeImg2imgModel() {
  const model = img2imgModels.find((m) => m.id === $('i2i-model').value);
  // The first option runs the folder's own scheduler (the request leaves `scheduler` out).
  $('i2i-scheduler').options[0].textContent = model?.scheduler
    ? `the model's (${model.scheduler})`
    : `the model's (${model?.schedulerClass ?? 'none'})`;
  $('i2i-model-info').textContent = model
    ? `${model.id}: ${model.family}, scheduler ${model.schedulerClass ?? '–'}, runs on ${model.runsOn}`
    : '';
}

/** @param {any[]} all */
function loadImg2imgModels(all) {
  img2imgModels = all.filter((m) => m.operations.includes('IMG2IMG'));
  $('i2i-model').replaceChildren(
    ...img2imgModels.map((m) => {
      const option = document.createElement('option');
      option.value = m.id;
      option.textContent = m.id;
      return option;
    }),
  );
  if (img2imgModels.length === 0) {
    showNotice('No model on this gateway serves img2img (a diffusers pipeline folder in MODELS_DIR).', 'i2i-');
    setImg2imgState('unavailable');
    return;
  }
  describeImg2imgModel();
  setImg2imgState('ready');
}

/** The Img2ImgInput from the form; fields left empty are left out, so the gateway's defaults apply. */
function img2imgInput() {
  /** @type {Record<string, unknown>} */
  const input = {
    model: $('i2i-model').value,
    image: { upload: null },
    prompt: $('i2i-prompt').value,
    format: 'PNG',
    delivery: 'URL',
  };
  const negative = $('i2i-negative').value;
  if (negative) input.negativePrompt = negative;
  for (const [field, id] of [
    ['strength', 'i2i-strength'],
    ['steps', 'i2i-steps'],
    ['guidanceScale', 'i2i-guidance'],
  ]) {
    const text = $(id).value.trim();
    if (text !== '') input[field] = Number(text);
  }
  // A decimal string: seeds go up to 2^64 - 1, past what a JSON number holds exactly.
  const seed = $('i2i-seed').value.trim();
  if (seed !== '') input.seed = seed;
  if ($('i2i-scheduler').value) input.scheduler = $('i2i-scheduler').value;
  return input;
}

/** @param {any} event */
function showImg2imgEvent(event) {
  switch (event.__typename) {
    case 'JobQueuedEvent':
      setImg2imgProgress(0, 1, event.position === null ? 'queued' : `waiting for device memory (#${event.position})`);
      break;
    case 'JobRoutedEvent':
      if (event.stage) markStage(event.stage);
      setImg2imgProgress(
        0,
        1,
        `${(event.stage ?? '').toLowerCase().replace('_', ' ')} routed ${event.route.route} on ${event.route.target}`,
      );
      break;
    case 'JobRunningEvent':
      if (event.stage) markStage(event.stage);
      if (event.stage === 'DENOISE' && event.step !== null)
        setImg2imgProgress(
          event.step,
          event.total,
          `denoise step ${event.step}/${event.total} · timestep ${event.timestep}`,
        );
      else
        setImg2imgProgress(
          event.done,
          event.total,
          `${(event.stage ?? 'running').toLowerCase().replace('_', ' ')} ${event.done}/${event.total}`,
        );
      break;
  }
}

async function runImg2img() {
  const file = $('i2i-image').files?.[0];
  if (!file || !$('i2i-model').value) return;
  const mine = ++img2imgRun;
  $('i2i-error').hidden = true;
  showNotice(null, 'i2i-');
  $('i2i-events').replaceChildren();
  $('i2i-result').hidden = true;
  $('i2i-result').removeAttribute('src');
  $('i2i-result-meta').textContent = '';
  $('i2i-reuse-seed').hidden = true;
  markStage('TEXT_ENCODE');
  setImg2imgProgress(0, 1, 'submitting');
  setImg2imgState('running');
  try {
    const submitted = await request(SubmitImg2imgDocument, { input: img2imgInput() }, file);
    img2imgJob = submitted.submitImg2img.id;
    let terminal;
    try {
      terminal = await followJob(submitted.submitImg2img.id, $('i2i-events'), showImg2imgEvent);
    } finally {
      img2imgJob = null;
    }
    if (terminal?.__typename === 'JobFailedEvent') throw new GatewayError(terminal.error.code, terminal.error.message);
    if (terminal?.__typename === 'JobCancelledEvent') throw new GatewayError('CANCELLED', terminal.reason);
    if (terminal?.__typename !== 'JobDoneEvent')
      throw new GatewayError('NETWORK', 'the progress stream ended without a result');
    const result = terminal.result;
    const image = result.images[0];
    const img = $('i2i-result');
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new GatewayError('IMAGE', `the result image ${image.url} did not load`));
      img.src = localPath(image.url);
    });
    img.hidden = false;
    markStage(null);
    setImg2imgProgress(1, 1, `done in ${result.seconds.toFixed(2)} s`);
    const stages = result.stages.map((/** @type {any} */ s) => `${s.stage} ${s.route.route}`).join(', ');
    $('i2i-result-meta').textContent =
      `${image.width}x${image.height} ${image.format} · seed ${result.seed} · ${result.scheduler ?? 'upstream default scheduler'}, ` +
      `${result.timesteps.length} step(s) · ${stages}`;
    $('img2img').dataset.seed = String(result.seed);
    $('i2i-reuse-seed').hidden = false;
    if (mine === img2imgRun) setImg2imgState('done');
  } catch (error) {
    if (mine !== img2imgRun) return;
    if (error instanceof GatewayError && error.code === 'CANCELLED') {
      showNotice(`Cancelled: ${error.message}`, 'i2i-');
      setImg2imgProgress($('i2i-progress').value, $('i2i-progress').max, `cancelled at ${$('i2i-text').textContent}`);
      setImg2imgState('cancelled');
      return;
    }
    showError(error, 'i2i-');
    setImg2imgState('error');
  }
}

$('i2i-model').addEventListener('change', describeImg2imgModel);
$('i2i-image').addEventListener('change', () => {
  const file = $('i2i-image').files?.[0];
  const img = $('i2i-original');
  if (!file) return;
  img.onload = () =>
    ($('i2i-original-meta').textContent =
      `${file.name}: ${img.naturalWidth}x${img.naturalHeight}, ${formatBytes(file.size)}`);
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  const state = $('img2img').dataset.state;
  setImg2imgState(state === 'loading' || state === 'unavailable' ? state : 'ready');
});
$('i2i-controls').addEventListener('submit', (/** @type {Event} */ event) => {
  event.preventDefault();
  void runImg2img();
});
$('i2i-cancel').addEventListener('click', async () => {
  if (!img2imgJob) return;
  $('i2i-cancel').disabled = true;
  try {
    await request(CancelJobDocument, { id: img2imgJob });
  } catch (error) {
    showError(error, 'i2i-');
  }
});
$('i2i-reuse-seed').addEventListener('click', () => {
  $('i2i-seed').value = $('img2img').dataset.seed ?? '';
});

$('model').addEventListener('change', describeModel);
$('mapping').addEventListener('change', drawLatent);
$('image').addEventListener('change', () => {
  const file = $('image').files?.[0];
  const img = $('original');
  if (!file) return;
  img.onload = () =>
    ($('original-meta').textContent =
      `${file.name}: ${img.naturalWidth}x${img.naturalHeight}, ${formatBytes(file.size)}`);
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  setState(document.body.dataset.state === 'loading' ? 'loading' : 'ready');
});
$('controls').addEventListener('submit', (/** @type {Event} */ event) => {
  event.preventDefault();
  void encodeAndDecode();
});
$('cancel').addEventListener('click', async () => {
  if (!currentJob) return;
  $('cancel').disabled = true;
  try {
    await request(CancelJobDocument, { id: currentJob });
  } catch (error) {
    showError(error);
  }
});
$('api-key').value = sessionStorage.getItem(KEY_STORAGE) ?? '';
$('api-key').addEventListener('change', () => {
  const key = $('api-key').value.trim();
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  void loadModels();
});

void loadModels();
