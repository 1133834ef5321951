/**
 * The one place a zod failure becomes words: every edge (configuration, upstream list, Hybrid
 * Inference query, command-line flags, model.json) validates with a zod schema through `validate`,
 * and reports each bad field as `FIELD is GIVEN; WHAT IS ALLOWED` (or `FIELD is required`), all at once.
 */
import { z } from 'zod';
import { type ErrorCode, GatewayError } from '../errors.js';

export interface Problem {
  /** The field as the user wrote it: `PORT (port)`, `upstreams[0].url`, `output_type`, `--width`. */
  field: string;
  /** The path inside the validated input. */
  path: PropertyKey[];
  /** The value given, as it was given; undefined when it was missing. */
  given: unknown;
  /** What is allowed ("it must be ...", "allowed: a, b"), or what is wrong with a missing field ("is required"). */
  message: string;
  /** The allowed values, when the field takes a fixed set. */
  allowed?: readonly unknown[];
  /** The error code a check chose (`params: { code }` on a custom issue), where it differs from the field's. */
  code?: ErrorCode;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; problems: Problem[] };

/** `upstreams[0].url` for a path. */
export function dottedPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`))
    .join('');
}

/** Messages for zod's built-in checks, phrased as what is allowed; a schema's own message wins over these. */
const describeIssue: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `it must be ${KINDS[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      return `allowed: ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      return `it must be ${issue.inclusive ? 'at least' : 'more than'} ${bound(issue.origin, issue.minimum)}`;
    case 'too_big':
      return `it must be ${issue.inclusive ? 'at most' : 'less than'} ${bound(issue.origin, issue.maximum)}`;
    case 'invalid_format':
      return issue.format === 'url' ? 'it must be an absolute URL' : `it must be a ${issue.format}`;
    case 'unrecognized_keys':
      return 'is not a setting';
    default:
      return undefined;
  }
};

const KINDS: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'a boolean',
  array: 'a list',
  object: 'an object',
};

function bound(origin: string, value: number | bigint): string {
  if (origin === 'array' || origin === 'set') return `${value} item(s) long`;
  if (origin === 'string') return `${value} character(s) long`;
  return String(value);
}

/** Runs `schema` on `input`; on failure, one Problem per bad field, named by `field` (a dotted path by default). */
export function validate<S extends z.ZodType>(
  schema: S,
  input: unknown,
  field: (path: PropertyKey[]) => string = dottedPath,
): Validated<z.output<S>> {
  const result = schema.safeParse(input, { error: describeIssue, reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: problemsOf(result.error, input, field) };
}

function problemsOf(error: z.ZodError, input: unknown, field: (path: PropertyKey[]) => string = dottedPath): Problem[] {
  return error.issues.flatMap((issue): Problem[] => {
    // An unknown key is a problem of that key, not of the object holding it.
    const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((key) => [...issue.path, key]) : [issue.path];
    return paths.map((path) => ({
      field: field(path),
      path,
      given: issue.code === 'unrecognized_keys' ? undefined : givenAt(input, path, issue.input),
      message: issue.message,
      ...(issue.code === 'invalid_value' ? { allowed: issue.values } : {}),
      ...(issue.code === 'custom' && issue.params?.code ? { code: issue.params.code as ErrorCode } : {}),
    }));
  });
}

/** The value as the user wrote it where the path reaches it; else as zod saw it (inside JSON text, say). */
function givenAt(input: unknown, path: readonly PropertyKey[], seen: unknown): unknown {
  const { reached, value } = valueAt(input, path);
  return reached ? value : seen;
}

/** The value at `path` in what the user wrote; `reached` is false where the path goes through text (JSON, say). */
function valueAt(input: unknown, path: readonly PropertyKey[]): { reached: boolean; value: unknown } {
  let value = input;
  for (const key of path) {
    if (value === undefined) return { reached: true, value };
    if (value === null || typeof value !== 'object') return { reached: false, value: undefined };
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return { reached: true, value };
}

/** `PORT (port) is "70000"; it must be an integer from 0 to 65535`, or `upstreams[0].model is required`. */
export function describeProblem(problem: Problem): string {
  if (problem.given === undefined) return `${problem.field} ${problem.message}`;
  return `${problem.field} is ${JSON.stringify(problem.given)}; ${problem.message}`;
}

/** The problems as one GatewayError, with the first problem's code (`codeOf`; its own or BAD_REQUEST by default). */
export function problemsError(
  problems: Problem[],
  codeOf: (problem: Problem) => ErrorCode = (problem) => problem.code ?? 'BAD_REQUEST',
): GatewayError {
  const [first] = problems;
  return new GatewayError(codeOf(first), problems.map(describeProblem).join('. '), {
    field: first.field,
    ...(first.allowed ? { allowed: first.allowed } : {}),
    problems: problems.map(({ field, given, message }) => ({ field, given, message })),
  });
}

/** A whole number in [min, max], with the range in its one message. */
export function integerIn(min: number, max = Number.MAX_SAFE_INTEGER) {
  const error = rangeError(min, max);
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** The same, written as text (an environment variable, a query parameter, a flag): `Number(text)`. */
export function integerText(min: number, max = Number.MAX_SAFE_INTEGER) {
  const error = rangeError(min, max);
  return z.coerce.number<string>({ error }).int({ error }).min(min, { error }).max(max, { error });
}

function rangeError(min: number, max: number) {
  const text =
    max === Number.MAX_SAFE_INTEGER
      ? `it must be an integer of at least ${min}`
      : `it must be an integer from ${min} to ${max}`;
  // A missing value keeps the shared "is required".
  return (issue: { input?: unknown }) => (issue.input === undefined ? undefined : text);
}

/** An object that names each unknown key and the keys it takes. */
export function settingsObject<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? `is not a setting; allowed: ${allowed}` : undefined),
  });
}
