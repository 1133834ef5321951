/**
 * Loopback servers that speak the img2img APIs latentgate sends whole requests to, as documented,
 * checking each request body as the real server would (required fields, types, known names) and
 * answering in the documented shape:
 *
 * - A1111 `POST /sdapi/v1/img2img` (StableDiffusionImg2ImgProcessingAPI -> ImageToImageResponse:
 *   `{images: [base64 PNG], parameters, info: <JSON string>}`; 422 for a body of wrong types, 404
 *   for a missing init image or an unknown sampler, 500 for an undecodable image).
 * - The Hugging Face image-to-image task (`{inputs: base64, parameters}` -> raw image bytes with an
 *   image content type; 400 `{"error": ...}` for a bad payload or a parameter the pipeline lacks).
 * - latentgate's GraphQL `img2img` mutation (`{data: {img2img: {...}}}`, or `{errors: [...]}`).
 *
 * Each answers a PNG of the asked size whose every pixel is (seed mod 256, steps, round(strength
 * x 100)), so a test can read back what the endpoint was given. `behaviour` makes it fail (an HTTP
 * status), hang (`delayMs`) or answer a malformed body; `requests` records what came in.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import sharp from 'sharp';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The body as text (big integers as written) and as parsed JSON (null when not JSON). */
  text: string;
  json: any;
}

export interface FakeBehaviour {
  /** Answer every request with this status (and a short error body) instead of working. */
  status: number | null;
  /** Wait this long before answering. */
  delayMs: number;
  /** Answer in a shape the API does not document. */
  malformed: boolean;
}

export interface Img2ImgFake {
  url: string;
  requests: RecordedRequest[];
  behaviour: FakeBehaviour;
  /** Requests whose client went away before the answer. */
  abandoned: number;
  close(): Promise<void>;
}

type Handler = (request: RecordedRequest, res: ServerResponse, fake: Img2ImgFake) => Promise<void>;

async function startFake(path: string, handler: Handler): Promise<Img2ImgFake> {
  const fake: Img2ImgFake = {
    url: '',
    requests: [],
    behaviour: { status: null, delayMs: 0, malformed: false },
    abandoned: 0,
    close: async () => {},
  };
  const server = createServer((req, res) => {
    void receive(req).then(async (text) => {
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        text,
        json: parseJson(text),
      };
      fake.requests.push(recorded);
      let gone = false;
      res.on('close', () => {
        if (!res.writableFinished) gone = true;
      });
      if (fake.behaviour.delayMs > 0) await new Promise((r) => setTimeout(r, fake.behaviour.delayMs));
      if (gone) {
        fake.abandoned++;
        return;
      }
      if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== path)
        return send(res, 404, { error: `${req.method} ${req.url}: not found` });
      if (fake.behaviour.status !== null)
        return send(res, fake.behaviour.status, { error: `scripted failure ${fake.behaviour.status}` });
      await handler(recorded, res, fake).catch((error: Error) => send(res, 500, { error: error.message }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  fake.url = `http://127.0.0.1:${port}${path}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fake;
}

function receive(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': bytes.length });
  res.end(bytes);
}

/** An integer field's digits as written (JSON.parse rounds beyond 2^53); null when absent or not an integer. */
export function integerDigits(text: string, key: string): string | null {
  return new RegExp(`"${key}"\\s*:\\s*(-?\\d+)\\s*[,}]`).exec(text)?.[1] ?? null;
}

/** The answer every fake gives: a PNG whose pixels say (seed mod 256, steps, strength x 100). */
export async function answerPng(width: number, height: number, seed: bigint, steps: number, strength: number) {
  const pixel = [Number(seed % 256n), steps % 256, Math.round(strength * 100)];
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) pixels.set(pixel, i * 3);
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/** Image bytes from base64 as Python's b64decode + PIL open would take them; null when they are no image. */
async function openImage(base64: unknown): Promise<{ width: number; height: number } | null> {
  if (typeof base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) return null;
  try {
    const meta = await sharp(Buffer.from(base64, 'base64')).metadata();
    return meta.width && meta.height ? { width: meta.width, height: meta.height } : null;
  } catch {
    return null;
  }
}

const floor8 = (n: number) => n - (n % 8);
const randomSeed = () => BigInt(Math.floor(Math.random() * 4294967294));

// ---- AUTOMATIC1111 -------------------------------------------------------------------------------

export const A1111_SAMPLER_NAMES = ['Euler', 'Euler a', 'DDIM', 'LCM', 'PLMS', 'DPM++ 2M', 'UniPC', 'Heun', 'LMS'];

type FieldType = 'str' | 'int' | 'float' | 'list' | 'dict';
/** The fields of StableDiffusionImg2ImgProcessingAPI this fake reads, with pydantic's types. */
const A1111_FIELDS: Record<string, FieldType> = {
  prompt: 'str',
  negative_prompt: 'str',
  init_images: 'list',
  denoising_strength: 'float',
  steps: 'int',
  cfg_scale: 'float',
  seed: 'int',
  sampler_name: 'str',
  width: 'int',
  height: 'int',
  batch_size: 'int',
  n_iter: 'int',
  override_settings: 'dict',
};

function pydanticType(value: unknown, type: FieldType): boolean {
  switch (type) {
    case 'str':
      return typeof value === 'string';
    case 'int':
      return typeof value === 'number' && Number.isInteger(value);
    case 'float':
      return typeof value === 'number';
    case 'list':
      return Array.isArray(value);
    case 'dict':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
  }
}

export function startA1111Fake(): Promise<Img2ImgFake> {
  return startFake('/sdapi/v1/img2img', async (request, res, fake) => {
    const body = request.json;
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      return send(res, 422, {
        detail: [{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be an object' }],
      });
    // Every field is Optional[...]: null is allowed, a wrong type is not.
    const wrong = Object.entries(A1111_FIELDS)
      .filter(([key, type]) => body[key] !== undefined && body[key] !== null && !pydanticType(body[key], type))
      .map(([key, type]) => ({ type: `${type}_type`, loc: ['body', key], msg: `Input should be a valid ${type}` }));
    if (wrong.length > 0) return send(res, 422, { detail: wrong });
    if (!body.init_images) return send(res, 404, { detail: 'Init image not found' });
    const sampler = body.sampler_name ?? 'Euler';
    if (!A1111_SAMPLER_NAMES.includes(sampler)) return send(res, 404, { detail: 'Sampler not found' });
    const init = await openImage(body.init_images[0]);
    if (!init) return send(res, 500, { error: 'HTTPException', detail: 'Invalid encoded image' });
    const digits = integerDigits(request.text, 'seed');
    const seed = digits === null || digits === '-1' ? randomSeed() : BigInt(digits);
    const [width, height] = [body.width ?? 512, body.height ?? 512];
    const steps = body.steps ?? 50;
    const strength = body.denoising_strength ?? 0.75;
    const png = await answerPng(width, height, seed, steps, strength);
    const info =
      `{"prompt": ${JSON.stringify(body.prompt ?? '')}, "all_seeds": [${seed}], "seed": ${seed}, ` +
      `"subseed": 1, "width": ${width}, "height": ${height}, "sampler_name": ${JSON.stringify(sampler)}, ` +
      `"cfg_scale": ${body.cfg_scale ?? 7}, "steps": ${steps}, "denoising_strength": ${strength}}`;
    if (fake.behaviour.malformed)
      return send(res, 200, {
        images: [png.toString('base64')],
        parameters: body,
        info: info.replace(/"seed"/, '"sed"'),
      });
    send(res, 200, { images: [png.toString('base64')], parameters: body, info });
  });
}

// ---- Hugging Face image-to-image ---------------------------------------------------------------

/** The task's documented parameters, plus the extra `strength` and `seed` the diffusers pipeline takes. */
const HF_PARAMETERS: Record<string, (value: any) => boolean> = {
  prompt: (v) => typeof v === 'string',
  negative_prompt: (v) => typeof v === 'string',
  num_inference_steps: (v) => Number.isInteger(v) && v > 0,
  guidance_scale: (v) => typeof v === 'number',
  target_size: (v) => typeof v === 'object' && v !== null && Number.isInteger(v.width) && Number.isInteger(v.height),
  strength: (v) => typeof v === 'number' && v >= 0 && v <= 1,
  seed: (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0,
};

export function startHfImageToImageFake(): Promise<Img2ImgFake> {
  return startFake('/', async (request, res, fake) => {
    const body = request.json;
    if (!String(request.headers['content-type']).startsWith('application/json') || body === null)
      return send(res, 400, { error: 'expected a JSON payload {"inputs": <base64 image>, "parameters": {...}}' });
    const init = await openImage(body.inputs);
    if (!init) return send(res, 400, { error: 'inputs must be a base64-encoded image' });
    const parameters = body.parameters ?? {};
    for (const [key, value] of Object.entries(parameters)) {
      const check = HF_PARAMETERS[key];
      if (!check) return send(res, 400, { error: `__call__() got an unexpected keyword argument '${key}'` });
      if (!check(value))
        return send(res, 400, { error: `invalid value for parameter ${key}: ${JSON.stringify(value)}` });
    }
    const digits = integerDigits(request.text, 'seed');
    const seed = digits === null ? randomSeed() : BigInt(digits);
    const size = parameters.target_size ?? { width: floor8(init.width), height: floor8(init.height) };
    const png = await answerPng(
      size.width,
      size.height,
      seed,
      parameters.num_inference_steps ?? 25,
      parameters.strength ?? 0.8,
    );
    if (fake.behaviour.malformed) return send(res, 200, JSON.stringify({ image: png.toString('base64') }));
    send(res, 200, png, 'image/png');
  });
}

// ---- latentgate GraphQL ------------------------------------------------------------------------

const SCHEDULERS = ['EULER', 'EULER_ANCESTRAL', 'DDIM', 'LCM', 'PNDM', 'FLOW_MATCH_EULER'];
const INPUT_FIELDS: Record<string, (value: any) => boolean> = {
  model: (v) => typeof v === 'string',
  image: (v) => typeof v === 'object' && v !== null && Object.keys(v).length === 1 && typeof v.base64 === 'string',
  prompt: (v) => typeof v === 'string',
  negativePrompt: (v) => v === null || typeof v === 'string',
  strength: (v) => typeof v === 'number',
  steps: (v) => Number.isInteger(v),
  guidanceScale: (v) => typeof v === 'number',
  seed: (v) => v === null || (typeof v === 'string' && /^\d+$/.test(v) && BigInt(v) < 2n ** 64n) || Number.isInteger(v),
  scheduler: (v) => v === null || SCHEDULERS.includes(v),
  format: (v) => ['PNG', 'JPEG', 'WEBP'].includes(v),
  delivery: (v) => ['BASE64', 'URL'].includes(v),
};

export function startLatentgateFake(models: string[] = ['sd15']): Promise<Img2ImgFake> {
  return startFake('/graphql', async (request, res, fake) => {
    const body = request.json;
    const input = body?.variables?.input;
    if (typeof body?.query !== 'string' || !/img2img\(input: \$input\)/.test(body.query) || !input)
      return send(res, 400, { errors: [{ message: 'expected the img2img mutation with $input' }] });
    const invalid = [
      ...Object.keys(input).filter((key) => !INPUT_FIELDS[key]),
      ...['model', 'image', 'prompt'].filter((key) => input[key] === undefined),
      ...Object.entries(input)
        .filter(([key, value]) => INPUT_FIELDS[key] && !INPUT_FIELDS[key](value))
        .map(([key]) => key),
    ];
    if (invalid.length > 0)
      return send(res, 200, {
        errors: [
          {
            message: `Variable "$input" got invalid value at ${invalid.join(', ')}`,
            extensions: { code: 'BAD_USER_INPUT' },
          },
        ],
      });
    if (!models.includes(input.model))
      return send(res, 200, {
        data: null,
        errors: [{ message: `unknown model "${input.model}"`, extensions: { code: 'UNKNOWN_MODEL' } }],
      });
    const init = await openImage(input.image.base64);
    if (!init) return send(res, 200, { errors: [{ message: 'not an image', extensions: { code: 'INVALID_IMAGE' } }] });
    const seed = input.seed === null || input.seed === undefined ? randomSeed() : BigInt(input.seed);
    const [width, height] = [floor8(init.width), floor8(init.height)];
    const png = await answerPng(width, height, seed, input.steps ?? 50, input.strength ?? 0.8);
    const image = { mimeType: 'image/png', width, height, data: png.toString('base64') };
    if (fake.behaviour.malformed) image.data = '%% not base64 %%';
    send(res, 200, { data: { img2img: { seed: seed.toString(), width, height, images: [image] } } });
  });
}
