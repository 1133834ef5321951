/**
 * CLIP prompt tokenization as diffusers runs it:
 * `tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True)`,
 * from the `tokenizer/` (or `tokenizer_2/`) folder of an optimum diffusers ONNX export, with
 * @huggingface/tokenizers doing the normalizing, splitting and BPE.
 *
 * A folder with `tokenizer.json` is used as it is. A folder with only `vocab.json` + `merges.txt` gets the
 * tokenizer.json that transformers' CLIPConverter builds for CLIPTokenizerFast (convert_slow_tokenizer.py):
 * NFC, whitespace runs to one space, lowercase; CLIP's split regex then ByteLevel; BPE with `</w>` ending a
 * word and `<|endoftext|>` for unknown symbols; RobertaProcessing wrapping the ids in bos ... eos.
 * For openai/clip-vit-large-patch14 that gives "a photo of a cat" -> [49406, 320, 1125, 539, 320, 2368, 49407]
 * and "Hello, world!" -> [49406, 3306, 267, 1002, 256, 49407].
 *
 * Special tokens are read as transformers reads them: `tokenizer_config.json`, overridden by
 * `special_tokens_map.json`, else CLIPTokenizer's defaults. Like transformers, every special token
 * (SD 2.x's pad token `!` too) is an added token: found in a prompt, it is cut out and gets its own id;
 * so are the tokens tokenizer_config.json's `added_tokens_decoder` lists.
 *
 * Other tokenizers (Flux's T5 `tokenizer_2/`: tokenizer_config.json's `tokenizer_class` T5TokenizerFast, a
 * Unigram tokenizer.json) are read from their tokenizer.json as they are, post-processor included (T5 appends
 * `</s>`, no bos), and padded to the maximum length with the pad token, as
 * `tokenizer(prompt, padding="max_length", max_length=L, truncation=True)` does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { z } from 'zod';
import { describeProblem, validate } from '../../validation/problems.js';

export interface PromptEncoding {
  /** The prompt's ids: bos, the prompt's tokens, eos, then pad ids up to `maxLength`. */
  ids: Int32Array;
  /** Tokens the prompt takes with bos and eos, before truncation or padding. */
  tokens: number;
  /** True when `tokens` > `maxLength`: the ids hold as many prompt tokens as fit with the special tokens. */
  truncated: boolean;
}

export interface PromptTokenizer {
  /** tokenizer_config.json's `model_max_length` (77 for CLIP), or the length the pipeline asks for. */
  readonly maxLength: number;
  /** null for tokenizers that add no bos (T5). */
  readonly bosId: number | null;
  readonly eosId: number;
  readonly padId: number;
  /** diffusers: `tokenizer(prompt, padding="max_length", max_length=model_max_length, truncation=True)`. */
  encode(prompt: string): PromptEncoding;
}

/** A special token as transformers writes it: its text, or an AddedToken's fields. */
const tokenSpec = z.union([
  z.string(),
  z.looseObject({
    content: z.string(),
    lstrip: z.boolean().optional(),
    rstrip: z.boolean().optional(),
    normalized: z.boolean().optional(),
    single_word: z.boolean().optional(),
  }),
]);
type TokenSpec = z.output<typeof tokenSpec>;

const SPECIAL_NAMES = ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const;
type SpecialName = (typeof SPECIAL_NAMES)[number];

/** CLIPTokenizer's defaults, for a special token neither file names. */
const CLIP_DEFAULTS: Record<SpecialName, string> = {
  bos_token: '<|startoftext|>',
  eos_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
};

const specialsSchema = z.looseObject({
  bos_token: tokenSpec.optional(),
  eos_token: tokenSpec.optional(),
  unk_token: tokenSpec.optional(),
  pad_token: tokenSpec.optional(),
});
const declaredTokenSchema = z.looseObject({
  content: z.string(),
  lstrip: z.boolean().optional(),
  rstrip: z.boolean().optional(),
  normalized: z.boolean().optional(),
  single_word: z.boolean().optional(),
  special: z.boolean().optional(),
});
const configSchema = specialsSchema.extend({
  model_max_length: z.number().int().min(2),
  tokenizer_class: z.string().optional(),
  padding_side: z.enum(['left', 'right']).optional(),
  added_tokens_decoder: z.record(z.string().regex(/^\d+$/, 'it must be a token id'), declaredTokenSchema).optional(),
});
const vocabSchema = z.record(z.string(), z.number().int().nonnegative());
const addedTokenSchema = z.looseObject({ id: z.number().int().nonnegative(), content: z.string() });
const tokenizerJsonSchema = z.looseObject({
  added_tokens: z.array(addedTokenSchema),
  model: z.looseObject({ type: z.literal('BPE'), vocab: vocabSchema }),
});

/** transformers' CLIPTokenizer reads merges.txt lines 1 .. 49152 - 256 - 2 (line 0 is the `#version` header). */
const MAX_MERGES = 49152 - 256 - 2;

/** The special tokens of a CLIP tokenizer, as special_tokens_map.json / tokenizer_config.json give them. */
export type ClipSpecialTokens = Record<SpecialName, TokenSpec>;

/** An entry of tokenizer.json's `added_tokens`. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/**
 * The tokenizer.json object CLIPTokenizerFast has for this vocab and merges (transformers' CLIPConverter,
 * serialised by the `tokenizers` crate). Its added tokens: `declared` (tokenizer_config.json's
 * `added_tokens_decoder`), then the special tokens not among them. Throws when a special token has no id.
 */
export function buildClipTokenizerJson(
  vocab: Record<string, number>,
  merges: [string, string][],
  specials: ClipSpecialTokens,
  declared: readonly AddedTokenJson[] = [],
): Record<string, unknown> {
  const idOf = (name: SpecialName): number => {
    const content = contentOf(specials[name]);
    const id =
      declared.find((token) => token.content === content)?.id ??
      (Object.hasOwn(vocab, content) ? vocab[content] : undefined);
    if (id === undefined) throw new Error(`${name} ${JSON.stringify(content)} is not in the vocab`);
    return id;
  };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...declared, ...addedTokens(specials, declared, idOf)].sort((a, b) => a.id - b.id),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
        { type: 'Lowercase' },
      ],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" },
          behavior: 'Removed',
          invert: true,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [contentOf(specials.eos_token), idOf('eos_token')],
      cls: [contentOf(specials.bos_token), idOf('bos_token')],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: contentOf(specials.unk_token),
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

export interface LoadTokenizerOptions {
  /** Pad and truncate to this length instead of `model_max_length` (diffusers' `max_sequence_length` for T5). */
  maxLength?: number;
}

/**
 * Loads the tokenizer of `dir` (an export's `tokenizer/` or `tokenizer_2/`). Throws an Error naming the
 * file that is missing or wrong.
 */
export function loadPromptTokenizer(dir: string, options: LoadTokenizerOptions = {}): PromptTokenizer {
  const configPath = join(dir, 'tokenizer_config.json');
  const config = parsed(configPath, configSchema, readJson(configPath));
  const mapPath = join(dir, 'special_tokens_map.json');
  const map = readOptional(mapPath);
  const specialsMap = map === undefined ? {} : parsed(mapPath, specialsSchema, map);
  if (config.tokenizer_class !== undefined && !config.tokenizer_class.startsWith('CLIP'))
    return loadTokenizerJson(dir, config, specialsMap, options.maxLength ?? config.model_max_length);
  // transformers: tokenizer_config.json's values, special_tokens_map.json's over them.
  const specials = Object.fromEntries(
    SPECIAL_NAMES.map((name) => [name, specialsMap[name] ?? config[name] ?? CLIP_DEFAULTS[name]]),
  ) as ClipSpecialTokens;
  // Tokens a textual inversion (say) added, kept by transformers in tokenizer_config.json.
  const declared = Object.entries(config.added_tokens_decoder ?? {}).map(
    ([id, token]): AddedTokenJson => ({
      id: Number(id),
      content: token.content,
      single_word: token.single_word ?? false,
      lstrip: token.lstrip ?? false,
      rstrip: token.rstrip ?? false,
      normalized: token.normalized ?? false,
      special: token.special ?? false,
    }),
  );

  const jsonPath = join(dir, 'tokenizer.json');
  const json = readOptional(jsonPath);
  let source: string;
  let tokenizerJson: Record<string, unknown>;
  if (json !== undefined) {
    source = jsonPath;
    const checked = parsed(jsonPath, tokenizerJsonSchema, json);
    const listed = new Set(checked.added_tokens.map((token) => token.content));
    const known = [...checked.added_tokens, ...declared.filter((token) => !listed.has(token.content))];
    const ids = new Map<string, number>([
      ...Object.entries(checked.model.vocab),
      ...known.map((token): [string, number] => [token.content, token.id]),
    ]);
    const more = addedTokens(specials, known, (name) => {
      const id = ids.get(contentOf(specials[name]));
      if (id === undefined) throw new Error(`${jsonPath} has no ${name} ${JSON.stringify(contentOf(specials[name]))}`);
      return id;
    });
    tokenizerJson = { ...(json as Record<string, unknown>), added_tokens: [...known, ...more] };
  } else {
    const vocabPath = join(dir, 'vocab.json');
    const vocab = parsed(vocabPath, vocabSchema, readJson(vocabPath));
    const merges = readMerges(join(dir, 'merges.txt'));
    source = `${vocabPath} (with merges.txt)`;
    try {
      tokenizerJson = buildClipTokenizerJson(vocab, merges, specials, declared);
    } catch (error) {
      throw new Error(`${vocabPath}: ${(error as Error).message} (special tokens: ${mapPath}, ${configPath})`);
    }
  }

  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, {});
  } catch (error) {
    throw new Error(`${source} is not a tokenizer @huggingface/tokenizers can load: ${(error as Error).message}`);
  }
  const idOf = (name: SpecialName): number => {
    const id = tokenizer.token_to_id(contentOf(specials[name]));
    if (id === undefined) throw new Error(`${source} has no ${name} ${JSON.stringify(contentOf(specials[name]))}`);
    return id;
  };
  const bosId = idOf('bos_token');
  const eosId = idOf('eos_token');
  const padId = idOf('pad_token');
  // Truncation below keeps room for exactly one bos and one eos, as CLIPTokenizerFast's post-processor adds.
  const wrapped = tokenizer.encode('', { add_special_tokens: true }).ids;
  if (wrapped.length !== 2 || wrapped[0] !== bosId || wrapped[1] !== eosId)
    throw new Error(`${source}: its post-processor gives [${wrapped}] for "", not [bos ${bosId}, eos ${eosId}]`);

  const maxLength = options.maxLength ?? config.model_max_length;
  return {
    maxLength,
    bosId,
    eosId,
    padId,
    encode(prompt) {
      const content: number[] = tokenizer.encode(prompt, { add_special_tokens: false }).ids;
      const kept = Math.min(content.length, maxLength - 2);
      const ids = new Int32Array(maxLength).fill(padId);
      ids[0] = bosId;
      ids.set(content.slice(0, kept), 1);
      ids[kept + 1] = eosId;
      const tokens = content.length + 2;
      return { ids, tokens, truncated: tokens > maxLength };
    },
  };
}

/**
 * A non-CLIP tokenizer (T5) from its tokenizer.json: the library's normalizer, pre-tokenizer, model and
 * post-processor; truncation keeps room for the special tokens the post-processor adds (transformers'
 * `num_special_tokens_to_add`), then pad ids fill up to `maxLength` on tokenizer_config.json's padding side.
 */
function loadTokenizerJson(
  dir: string,
  config: z.output<typeof configSchema>,
  specialsMap: z.output<typeof specialsSchema>,
  maxLength: number,
): PromptTokenizer {
  const jsonPath = join(dir, 'tokenizer.json');
  const json = readOptional(jsonPath);
  if (json === undefined)
    throw new Error(`${jsonPath} is missing; a ${config.tokenizer_class} tokenizer is read from its tokenizer.json`);
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json as object, {});
  } catch (error) {
    throw new Error(`${jsonPath} is not a tokenizer @huggingface/tokenizers can load: ${(error as Error).message}`);
  }
  const idOf = (name: SpecialName): number | null => {
    const spec = specialsMap[name] ?? config[name];
    if (spec === undefined) return null;
    const id = tokenizer.token_to_id(contentOf(spec));
    if (id === undefined) throw new Error(`${jsonPath} has no ${name} ${JSON.stringify(contentOf(spec))}`);
    return id;
  };
  const padId = idOf('pad_token');
  const eosId = idOf('eos_token');
  if (padId === null || eosId === null)
    throw new Error(`${dir}: padding to ${maxLength} tokens needs a pad_token and an eos_token; one is not named`);
  const specials = tokenizer.encode('', { add_special_tokens: true }).ids.length;
  if (specials >= maxLength)
    throw new Error(`${jsonPath}: its post-processor adds ${specials} tokens; the maximum length is ${maxLength}`);
  const padLeft = config.padding_side === 'left';
  return {
    maxLength,
    bosId: idOf('bos_token'),
    eosId,
    padId,
    encode(prompt) {
      const content: number[] = tokenizer.encode(prompt, { add_special_tokens: false }).ids;
      const full: number[] = tokenizer.encode(prompt, { add_special_tokens: true }).ids;
      const truncated = full.length > maxLength;
      let kept = full;
      if (truncated) {
        // The post-processor's tokens around the content, kept around its first maxLength - specials tokens.
        const at = full.findIndex((_, k) => content.every((id, i) => full[k + i] === id));
        kept = [...full.slice(0, at), ...content.slice(0, maxLength - specials), ...full.slice(at + content.length)];
      }
      const ids = new Int32Array(maxLength).fill(padId);
      ids.set(kept, padLeft ? maxLength - kept.length : 0);
      return { ids, tokens: full.length, truncated };
    },
  };
}

function contentOf(spec: TokenSpec): string {
  return typeof spec === 'string' ? spec : spec.content;
}

/** The special tokens not yet among `existing`, as transformers adds them (bos, eos, unk, pad; each text once). */
function addedTokens(
  specials: ClipSpecialTokens,
  existing: readonly { content: string }[],
  idOf: (name: SpecialName) => number,
): AddedTokenJson[] {
  const seen = new Set(existing.map((token) => token.content));
  const added: AddedTokenJson[] = [];
  for (const name of SPECIAL_NAMES) {
    const spec = specials[name];
    const content = contentOf(spec);
    if (seen.has(content)) continue;
    seen.add(content);
    const flags: Partial<AddedTokenJson> = typeof spec === 'string' ? {} : spec;
    added.push({
      id: idOf(name),
      content,
      single_word: flags.single_word ?? false,
      lstrip: flags.lstrip ?? false,
      rstrip: flags.rstrip ?? false,
      normalized: flags.normalized ?? false,
      special: true,
    });
  }
  return added;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${path} is missing` : `${path} cannot be read: ${(error as Error).message}`);
  }
}

function readJson(path: string): unknown {
  const text = readText(path);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${path} is not JSON: ${(error as Error).message}`);
  }
}

/** The file's JSON, or undefined when there is no such file. */
function readOptional(path: string): unknown {
  return existsSync(path) ? readJson(path) : undefined;
}

function parsed<S extends z.ZodType>(path: string, schema: S, input: unknown): z.output<S> {
  const result = validate(schema, input);
  if (!result.ok) throw new Error(`${path}: ${result.problems.map(describeProblem).join('. ')}`);
  return result.value;
}

/** merges.txt as CLIPTokenizer reads it: the header line skipped, one `left right` pair a line. */
function readMerges(path: string): [string, string][] {
  const lines = readText(path)
    .trim()
    .split('\n')
    .slice(1, MAX_MERGES + 1);
  return lines.map((line, i) => {
    const pair = line.trim().split(/\s+/);
    if (pair.length !== 2)
      throw new Error(`${path} line ${i + 2} is ${JSON.stringify(line)}; it must be two tokens with a space between`);
    return [pair[0], pair[1]];
  });
}
