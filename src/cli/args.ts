/**
 * Command-line flags: Node's `util.parseArgs` splits them (`--flag value`, `--flag=value`, `--switch`;
 * an unknown flag is refused), and each command's zod schemas check their values, every bad flag
 * named at once (`--width is "0"; it must be an integer of at least 1`).
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { describeProblem, integerText, validate } from '../validation/problems.js';

export class UsageError extends Error {}

/** A command's flags by name (without `--`): a boolean schema is a switch, any other takes a value. */
export type FlagShape = Record<string, z.ZodType>;

export const positiveInteger = () => integerText(1);
export const switchFlag = () => z.boolean().default(false);
/** A finite decimal number written as text (`0.8`, `7.5`); ranges are the gateway's to check and explain. */
export const numberFlag = () => {
  const error = (issue: { input?: unknown }) => (issue.input === undefined ? undefined : 'it must be a number');
  return z
    .string()
    .regex(/^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i, { error })
    .transform(Number)
    .pipe(z.number({ error })); // zod 4's number refuses Infinity (`1e999`)
};

export interface CommandLine<S extends FlagShape> {
  positional: string[];
  flags: z.output<z.ZodObject<S>>;
}

export function parseCommandLine<S extends FlagShape>(argv: string[], shape: S): CommandLine<S> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(
        Object.entries(shape).map(([name, schema]) => [name, { type: isSwitch(schema) ? 'boolean' : 'string' }]),
      ) as Record<string, { type: 'boolean' | 'string' }>,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return { positional: parsed.positionals, flags: checkFlags(shape, parsed.values) };
}

/** Checks flag values (text as given) against `shape`; a flag checked later (once a model is known) uses this too. */
export function checkFlags<S extends FlagShape>(shape: S, values: Record<string, unknown>): z.output<z.ZodObject<S>> {
  const result = validate(z.object(shape), values, (path) => `--${String(path[0])}`);
  if (result.ok) return result.value;
  // A list flag (`--sizes 250,500`) is shown as written, once, whichever of its items failed.
  const lines = result.problems.map((problem) =>
    describeProblem({ ...problem, given: values[String(problem.path[0])] ?? problem.given }),
  );
  throw new UsageError([...new Set(lines)].join('. '));
}

function isSwitch(schema: z.ZodType): boolean {
  let inner: z.ZodType = schema;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodOptional) inner = inner.unwrap() as z.ZodType;
  return inner instanceof z.ZodBoolean;
}
