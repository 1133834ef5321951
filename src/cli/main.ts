/** `latentgate <command>`: serve the gateway, or plan a request from the command line. */
import { ConfigError } from '../config/config.js';
import { parseArgs, UsageError } from './args.js';
import { planCommand } from './plan.js';
import { serve } from './serve.js';

const USAGE = `usage: latentgate <command>
  serve                         run the gateway (configured by environment; see README)
  plan --model M --op encode|decode --width W --height H [--batch B] [--dtype float16|bfloat16|float32]
       [--device-memory 10GiB] [--json]
                                how the router would run a request (works without weights for sd15, sdxl, flux1)`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const args = parseArgs(rest);
  switch (command) {
    case 'serve':
      return serve();
    case 'plan':
      return planCommand(args);
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
  else console.error(error);
  process.exit(error instanceof UsageError ? 2 : 1);
});
