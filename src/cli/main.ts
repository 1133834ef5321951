/** `latentgate <command>`: serve the gateway, plan a request, or encode / decode / img2img on a running gateway. */
import { LatentgateError } from '../client/client.js';
import { ConfigError } from '../config/config.js';
import { GatewayError } from '../errors.js';
import { UsageError } from './args.js';

// Commands load their modules when run, so a client command does not load the gateway (onnxruntime, sharp).

const USAGE = `usage: latentgate <command>
  serve                         run the gateway (configured by environment; see README)
  plan --model M --op encode|decode|textEncode|denoise --width W --height H [--batch B]
       [--dtype float16|bfloat16|float32] [--device-memory 10GiB] [--json]
       [--steps N] [--no-guidance] [--pipeline DIR]   (textEncode, denoise)
                                how the router would run a request (works without weights for sd15, sdxl, flux1)
  calibrate --model M [--sizes 256,512,768] [--stage-sizes 1024,2048,4096] [--operation encode|decode|both] [--json]
  calibrate --model M --operation denoise --pipeline DIR [--latent-sizes 32,64,96] [--batches 1,2] [--json]
                                measure M's peak memory on this machine and store its profile in DATA_DIR
  encode IMAGE --model M --out FILE.safetensors [--dtype float32|float16|bfloat16] [--colour-management none|srgb]
  decode FILE.safetensors --model M --out IMAGE.png|.jpg|.webp [--tensor NAME]
  img2img IMAGE --model M --prompt "..." --out OUT.png|.jpg|.webp [--negative-prompt "..."] [--strength 0.8]
       [--steps 50] [--guidance-scale 7.5] [--seed S] [--scheduler euler|euler_ancestral|ddim|lcm|pndm|...]
       [--latent-out FINAL.safetensors]   (defaults: diffusers'; the folder's own scheduler; a drawn seed)
       [--url http://127.0.0.1:4000 (or LATENTGATE_URL)] [--transport sse|ws]  (API key: LATENTGATE_API_KEY)
                                encode, decode or img2img as a job on a running gateway, with progress on stderr
  keys create --name NAME --scopes encode,decode,img2img,jobs,admin [--rate 60/min] [--quota PIXEL_SECONDS/day]
       [--json]                 a new API key, printed once (API_KEYS_FILE, and Redis when REDIS_URL is set)
  keys list [--json]            the keys' names, scopes and limits (never a key)
  keys revoke NAME              stop a key working on every instance (within API_KEYS_REFRESH_MS, at most 10 s)
  models pull PRESET|ORG/NAME[@REVISION] [--name ID] [--subfolder DIR]
                                download into the Hugging Face cache (HF_HUB_CACHE; HF_ENDPOINT, HF_TOKEN), verified
  models list [--json] [--presets]  what is served and where from (MODELS_DIR, the Hub cache); --presets: known names
  models rm NAME                remove a model pulled into the Hub cache (its snapshot and unshared blobs)`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return (await import('./serve.js')).serve();
    case 'plan':
      return (await import('./plan.js')).planCommand(rest);
    case 'calibrate':
      return (await import('./calibrate.js')).calibrateCommand(rest);
    case 'encode':
      return (await import('./client-commands.js')).encodeCommand(rest);
    case 'decode':
      return (await import('./client-commands.js')).decodeCommand(rest);
    case 'img2img':
      return (await import('./client-commands.js')).img2imgCommand(rest);
    case 'keys':
      return (await import('./keys.js')).keysCommand(rest);
    case 'models':
      return (await import('./models.js')).modelsCommand(rest);
    case undefined:
    case 'help':
    case '--help':
      console.log(USAGE);
      return;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).catch((error) => {
  if (error instanceof UsageError) console.error(`latentgate: ${error.message}\n${USAGE}`);
  else if (error instanceof ConfigError) console.error(`latentgate: ${error.message}`);
  else if (error instanceof LatentgateError || error instanceof GatewayError)
    console.error(`latentgate: ${error.code}: ${error.message}`);
  else console.error(error);
  process.exit(
    error instanceof UsageError
      ? 2
      : typeof process.exitCode === 'number' && process.exitCode !== 0
        ? process.exitCode
        : 1,
  );
});
