/**
 * `latentgate encode`, `latentgate decode` and `latentgate img2img`: command-line clients of a running
 * gateway, on the typed client. Each submits a job, draws a progress bar on stderr from the jobProgress
 * subscription, and writes the result; Ctrl-C cancels the job on the gateway.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { z } from 'zod';
import { LatentgateClient, LatentgateError, type TerminalJobEvent, type Transport } from '../client/client.js';
import type { ColourManagement, ImageFormat, LatentDType } from '../client/generated/graphql.js';
import { MAX_SEED } from '../diffusion/random.js';
import { SCHEDULER_NAMES } from '../pipeline/img2img-types.js';
import { FLOAT_DTYPES } from '../tensors/dtype.js';
import { parseSafetensors, type StoredTensor, serializeSafetensors } from '../tensors/safetensors.js';
import { checkFlags, numberFlag, parseCommandLine, positiveInteger, UsageError } from './args.js';
import { ProgressBar } from './progress.js';

const DEFAULT_URL = 'http://127.0.0.1:4000';
/** The GraphQL LatentDType for each dtype name (its name in capitals). */
const LATENT_DTYPES: Record<string, LatentDType> = Object.fromEntries(
  FLOAT_DTYPES.map((dtype) => [dtype, dtype.toUpperCase() as LatentDType]),
);
const COLOUR_MANAGEMENT: Record<'none' | 'srgb', ColourManagement> = { none: 'NONE', srgb: 'SRGB' };
const IMAGE_FORMATS: Record<string, ImageFormat> = { '.png': 'PNG', '.jpg': 'JPEG', '.jpeg': 'JPEG', '.webp': 'WEBP' };

interface Common {
  client: LatentgateClient;
  model: string;
  out: string;
  input: string;
  transport: Transport;
}

const gatewayUrl = z.url({ error: `it must be the gateway's URL, e.g. ${DEFAULT_URL} (--url, or LATENTGATE_URL)` });

const COMMON_FLAGS = {
  model: z.string(),
  out: z.string(),
  url: gatewayUrl.optional(),
  transport: z.enum(['sse', 'ws']).default('sse'),
};

function common(
  { positional, flags }: { positional: string[]; flags: z.output<z.ZodObject<typeof COMMON_FLAGS>> },
  what: string,
): Common {
  const [input, ...extra] = positional;
  if (!input) throw new UsageError(`${what}: give the input file`);
  if (extra.length > 0) throw new UsageError(`${what}: one input file only; got ${positional.length}`);
  const { model, out, transport } = flags;
  const url = flags.url ?? checkFlags({ url: gatewayUrl }, { url: process.env.LATENTGATE_URL || DEFAULT_URL }).url;
  // A gateway with API keys needs one: LATENTGATE_API_KEY, sent as a Bearer header (and WebSocket connectionParams).
  const key = process.env.LATENTGATE_API_KEY;
  const headers = key ? { authorization: `Bearer ${key}` } : undefined;
  return { client: new LatentgateClient(url, { transport, headers }), model, out, input, transport };
}

async function readInput(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Follows the job with a progress bar; Ctrl-C cancels it on the gateway and waits for CANCELLED. */
async function follow(
  client: LatentgateClient,
  jobId: string,
  label: string,
  transport: Transport,
): Promise<TerminalJobEvent> {
  const bar = new ProgressBar(process.stderr, label);
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(
      `${process.stderr.isTTY ? '\n' : ''}${label}: cancelling job ${jobId} (Ctrl-C again to quit at once)\n`,
    );
    client
      .cancelJob(jobId)
      .catch((error) => process.stderr.write(`${label}: cancel failed: ${(error as Error).message}\n`));
  };
  process.on('SIGINT', onSigint);
  try {
    return await client.follow(jobId, { transport, onEvent: (event) => bar.update(event) });
  } finally {
    process.off('SIGINT', onSigint);
  }
}

function fail(end: TerminalJobEvent): never {
  if (end.__typename === 'JobFailedEvent') throw new LatentgateError(end.error.code, end.error.message);
  if (end.__typename === 'JobCancelledEvent') {
    process.exitCode = 130;
    throw new LatentgateError('CANCELLED', end.reason);
  }
  throw new Error(`unexpected terminal event ${end.__typename}`);
}

export async function encodeCommand(argv: string[]): Promise<void> {
  const line = parseCommandLine(argv, {
    ...COMMON_FLAGS,
    dtype: z.enum(FLOAT_DTYPES).default('float32'),
    'colour-management': z.enum(['none', 'srgb']).default('none'),
  });
  const { client, model, out, input, transport } = common(line, 'encode');
  const dtypeName = line.flags.dtype;
  const dtype = LATENT_DTYPES[dtypeName];
  const colourManagement = COLOUR_MANAGEMENT[line.flags['colour-management']];
  if (extname(out).toLowerCase() !== '.safetensors')
    throw new UsageError(`--out must name a .safetensors file; got "${out}"`);
  const image = await readInput(input);
  try {
    const job = await client.submitEncode({
      model,
      image: { upload: new File([new Uint8Array(image)], basename(input)) },
      dtype,
      delivery: 'BASE64',
      colourManagement,
    });
    const end = await follow(client, job.id, `encode ${basename(input)} (${model})`, transport);
    if (end.__typename !== 'JobDoneEvent') fail(end);
    if (end.result.__typename !== 'EncodeResult') throw new Error(`job ${job.id} returned a ${end.result.__typename}`);
    const { latent } = end.result;
    const bytes = Buffer.from(latent.data!, 'base64');
    const file = serializeSafetensors(
      {
        latent: {
          dtype: dtypeName as StoredTensor['dtype'],
          shape: latent.shape,
          data: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        },
      },
      {
        model: end.result.model,
        scaling_factor: String(end.result.scalingFactor),
        shift_factor: String(end.result.shiftFactor),
        width: String(end.result.width),
        height: String(end.result.height),
        source: basename(input),
      },
    );
    await writeFile(out, file);
    const { resize } = end.result;
    const resized = resize ? ` (resized from ${resize.from.width}x${resize.from.height}, ${resize.method})` : '';
    console.log(
      `${out}: latent [${latent.shape.join(', ')}] ${dtypeName}, ${end.result.width}x${end.result.height}${resized}, ` +
        `route ${end.result.route.route}`,
    );
  } finally {
    await client.close();
  }
}

const FORMAT_FLAG = z
  .string()
  .transform((name) => name.toLowerCase())
  .pipe(z.enum(['png', 'jpeg', 'webp']))
  .transform((name) => name.toUpperCase() as ImageFormat)
  .optional();

/** --format, else the format --out's extension names. */
function outputFormat(out: string, flag: ImageFormat | undefined): ImageFormat {
  const format = flag ?? IMAGE_FORMATS[extname(out).toLowerCase()];
  if (!format)
    throw new UsageError(
      `the output format comes from --out (.png, .jpg, .webp) or --format png|jpeg|webp; got "${out}"`,
    );
  return format;
}

/** Writes each image: `out` for one, `out-0.png`, `out-1.png`, ... for several. */
async function writeImages(out: string, images: readonly { data?: string | null }[]): Promise<string[]> {
  const ext = extname(out);
  const paths: string[] = [];
  for (const [i, image] of images.entries()) {
    const path = images.length === 1 ? out : `${out.slice(0, out.length - ext.length)}-${i}${ext}`;
    await writeFile(path, Buffer.from(image.data!, 'base64'));
    paths.push(path);
  }
  return paths;
}

export async function decodeCommand(argv: string[]): Promise<void> {
  const line = parseCommandLine(argv, { ...COMMON_FLAGS, format: FORMAT_FLAG, tensor: z.string().optional() });
  const { client, model, out, input, transport } = common(line, 'decode');
  const format = outputFormat(out, line.flags.format);
  const latent = pickLatent(await readInput(input), input, line.flags.tensor);
  try {
    const job = await client.submitDecode({
      model,
      latent: {
        tensor: {
          data: Buffer.from(latent.bytes).toString('base64'),
          shape: latent.shape,
          dtype: LATENT_DTYPES[latent.dtype],
        },
      },
      format,
      delivery: 'BASE64',
    });
    const end = await follow(client, job.id, `decode ${basename(input)} (${model})`, transport);
    if (end.__typename !== 'JobDoneEvent') fail(end);
    if (end.result.__typename !== 'DecodeResult') throw new Error(`job ${job.id} returned a ${end.result.__typename}`);
    const { images } = end.result;
    const paths = await writeImages(out, images);
    for (const [i, image] of images.entries())
      console.log(`${paths[i]}: ${image.width}x${image.height} ${image.format}, route ${end.result.route.route}`);
  } finally {
    await client.close();
  }
}

const seedFlag = z
  .string()
  .trim()
  .regex(/^\d{1,20}$/, { error: `it must be an integer from 0 to ${MAX_SEED} (2^64 - 1)` })
  .refine((text) => BigInt(text) <= MAX_SEED, { error: `it must be an integer from 0 to ${MAX_SEED} (2^64 - 1)` });

export async function img2imgCommand(argv: string[]): Promise<void> {
  const line = parseCommandLine(argv, {
    ...COMMON_FLAGS,
    prompt: z.string(),
    'negative-prompt': z.string().optional(),
    strength: numberFlag().optional(),
    steps: positiveInteger().optional(),
    'guidance-scale': numberFlag().optional(),
    seed: seedFlag.optional(),
    scheduler: z
      .string()
      .transform((name) => name.toUpperCase().replaceAll('-', '_'))
      .pipe(z.enum(SCHEDULER_NAMES))
      .optional(),
    format: FORMAT_FLAG,
    'latent-out': z.string().optional(),
  });
  const { client, model, out, input, transport } = common(line, 'img2img');
  const { flags } = line;
  const format = outputFormat(out, flags.format);
  const latentOut = flags['latent-out'];
  if (latentOut !== undefined && extname(latentOut).toLowerCase() !== '.safetensors')
    throw new UsageError(`--latent-out must name a .safetensors file; got "${latentOut}"`);
  const image = await readInput(input);
  try {
    // Absent flags stay absent, so the gateway's defaults (diffusers') apply.
    const job = await client.submitImg2img({
      model,
      image: { upload: new File([new Uint8Array(image)], basename(input)) },
      prompt: flags.prompt,
      negativePrompt: flags['negative-prompt'],
      strength: flags.strength,
      steps: flags.steps,
      guidanceScale: flags['guidance-scale'],
      // A decimal string: seeds above 2^53 would lose digits as a JSON number.
      seed: flags.seed,
      scheduler: flags.scheduler,
      format,
      delivery: 'BASE64',
      returnLatent: latentOut !== undefined,
    });
    const end = await follow(client, job.id, `img2img ${basename(input)} (${model})`, transport);
    if (end.__typename !== 'JobDoneEvent') fail(end);
    if (end.result.__typename !== 'Img2ImgResult') throw new Error(`job ${job.id} returned a ${end.result.__typename}`);
    const result = end.result;
    const paths = await writeImages(out, result.images);
    for (const [i, image] of result.images.entries())
      console.log(`${paths[i]}: ${image.width}x${image.height} ${image.format}`);
    if (latentOut !== undefined) {
      const latent = result.finalLatent;
      if (!latent?.data) throw new Error(`job ${job.id} returned no latent although returnLatent was asked`);
      const bytes = Buffer.from(latent.data, 'base64');
      const file = serializeSafetensors(
        {
          latent: {
            dtype: latent.dtype.toLowerCase() as StoredTensor['dtype'],
            shape: latent.shape,
            data: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
          },
        },
        {
          model: result.model,
          seed: String(result.seed),
          scheduler: result.scheduler ?? 'the upstream default',
          timesteps: JSON.stringify(result.timesteps),
          prompt: flags.prompt,
          source: basename(input),
        },
      );
      await writeFile(latentOut, file);
      console.log(`${latentOut}: final latent [${latent.shape.join(', ')}] ${latent.dtype.toLowerCase()}`);
    }
    console.log(
      `seed ${result.seed} (repeat with --seed ${result.seed}), scheduler ${result.scheduler ?? 'the upstream default'}, ` +
        `${result.timesteps.length} denoising step(s), ${result.seconds.toFixed(2)} s; ` +
        `stages ${result.stages.map((s) => `${s.stage} ${s.route.route}`).join(', ')}`,
    );
  } finally {
    await client.close();
  }
}

/**
 * The latent in a safetensors file: the tensor named `latent` (or --tensor), or the only one; 3-D gets a batch of 1.
 */
function pickLatent(buffer: Buffer, path: string, name: string | undefined): StoredTensor {
  let file: ReturnType<typeof parseSafetensors>;
  try {
    file = parseSafetensors(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength));
  } catch (error) {
    throw new UsageError(`${path} is not a safetensors file: ${(error as Error).message}`);
  }
  const names = [...file.tensors.keys()];
  const chosen = name ?? (file.tensors.has('latent') ? 'latent' : names.length === 1 ? names[0] : undefined);
  const tensor = chosen === undefined ? undefined : file.tensors.get(chosen);
  if (!tensor)
    throw new UsageError(
      `${path}: ${name ? `no tensor "${name}"` : 'no tensor named "latent"'}; ` +
        `it holds ${names.join(', ') || 'none'} (pick one with --tensor)`,
    );
  if (!(tensor.dtype in LATENT_DTYPES))
    throw new UsageError(`${path}: tensor ${chosen} is ${tensor.dtype}; a latent is float32, float16 or bfloat16`);
  const shape = tensor.shape.length === 3 ? [1, ...tensor.shape] : tensor.shape;
  return { ...tensor, shape };
}
