/**
 * CLIP prompt tokenization on a tiny vocab whose ids are worked out by hand from the BPE rules (and T5's, from
 * its tokenizer.json, for Flux's tokenizer_2).
 * (On openai/clip-vit-large-patch14's real files the same code must give "a photo of a cat" ->
 * [49406, 320, 1125, 539, 320, 2368, 49407]; those files are not in the repo, so the tests stay offline.)
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildClipTokenizerJson, loadPromptTokenizer } from '../src/diffusion/text/tokenizer.js';

// Byte-level symbols (ASCII bytes stand for themselves) and their word-final `</w>` forms, then merge results.
const VOCAB: Record<string, number> = {
  '!': 0,
  a: 1,
  c: 2,
  t: 3,
  o: 4,
  h: 5,
  p: 6,
  f: 7,
  '!</w>': 8,
  'a</w>': 9,
  'c</w>': 10,
  't</w>': 11,
  'o</w>': 12,
  'h</w>': 13,
  'p</w>': 14,
  'f</w>': 15,
  ca: 16,
  'cat</w>': 17,
  ph: 18,
  ot: 19,
  phot: 20,
  'photo</w>': 21,
  'of</w>': 22,
  '<|startoftext|>': 23,
  '<|endoftext|>': 24,
  'at</w>': 25,
};
const BOS = 23;
const EOS = 24;
// Rank order matters: in "cat", `c a` (rank 0) beats `a t</w>` (rank 7), so it becomes cat</w>, not c + at</w>.
const MERGES = ['c a', 'ca t</w>', 'p h', 'o t', 'ph ot', 'phot o</w>', 'o f</w>', 'a t</w>'];
const MERGES_TXT = `#version: 0.2\n${MERGES.join('\n')}\n`;

// SD 1.x (openai/clip-vit-large-patch14) pads with <|endoftext|>; SD 2.x and SDXL's tokenizer_2 with `!`.
const SD1_SPECIALS = {
  bos_token: { content: '<|startoftext|>', lstrip: false, normalized: true, rstrip: false, single_word: false },
  eos_token: { content: '<|endoftext|>', lstrip: false, normalized: true, rstrip: false, single_word: false },
  pad_token: '<|endoftext|>',
  unk_token: { content: '<|endoftext|>', lstrip: false, normalized: true, rstrip: false, single_word: false },
};
const SD2_SPECIALS = { ...SD1_SPECIALS, pad_token: '!' };

const root = mkdtempSync(join(tmpdir(), 'latentgate-tokenizer-'));
after(() => rmSync(root, { recursive: true, force: true }));

let folders = 0;
/** A tokenizer/ folder with these files (objects written as JSON). */
function folder(files: Record<string, unknown>): string {
  const dir = join(root, String(folders++));
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files))
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

function slowFolder(specials: object, maxLength = 77): string {
  return folder({
    'vocab.json': VOCAB,
    'merges.txt': MERGES_TXT,
    'special_tokens_map.json': specials,
    'tokenizer_config.json': { model_max_length: maxLength, tokenizer_class: 'CLIPTokenizer' },
  });
}

/** The first `n` ids. */
function head(ids: Int32Array, n: number): number[] {
  return [...ids.subarray(0, n)];
}

describe('CLIP tokenizer from vocab.json + merges.txt', () => {
  const sd1 = loadPromptTokenizer(slowFolder(SD1_SPECIALS));

  test('a prompt gets bos, its BPE ids, eos, then pad ids up to model_max_length', () => {
    assert.equal(sd1.maxLength, 77);
    assert.deepEqual([sd1.bosId, sd1.eosId, sd1.padId], [BOS, EOS, EOS]);
    const { ids, tokens, truncated } = sd1.encode('a photo of a cat');
    // p h o t o</w> -> ph o t o</w> -> ph ot o</w> -> phot o</w> -> photo</w>.
    assert.deepEqual(head(ids, 7), [BOS, 9, 21, 22, 9, 17, EOS]);
    assert.equal(ids.length, 77);
    assert.ok(ids.subarray(7).every((id) => id === EOS));
    assert.equal(tokens, 7);
    assert.equal(truncated, false);
  });

  test('merges apply by rank, a word can end as several tokens, unknown symbols are unk each', () => {
    // "tat": t a t</w>; only `a t</w>` applies -> t + at</w>. "zz": z, z</w> are not in the vocab.
    assert.deepEqual(head(sd1.encode('tat zz').ids, 6), [BOS, 3, 25, EOS, EOS, EOS]);
    assert.equal(sd1.encode('tat zz').tokens, 6);
    // "!!" is one piece of CLIP's split: ! !</w>, no merge joins them.
    assert.deepEqual(head(sd1.encode('cat!!').ids, 5), [BOS, 17, 0, 8, EOS]);
  });

  test('case and whitespace runs do not change the ids; punctuation is split from words', () => {
    const plain = [...sd1.encode('a photo of a cat!').ids];
    assert.deepEqual(plain.slice(0, 8), [BOS, 9, 21, 22, 9, 17, 8, EOS]);
    assert.deepEqual([...sd1.encode('  A   PHOTO\tof\n a CaT! ').ids], plain);
  });

  test('the empty prompt is bos, eos and padding', () => {
    const { ids, tokens } = sd1.encode('');
    assert.deepEqual(head(ids, 3), [BOS, EOS, EOS]);
    assert.equal(tokens, 2);
  });

  test('SD 2.x pads with `!`, which like every special token is cut out of a prompt as itself', () => {
    const sd2 = loadPromptTokenizer(slowFolder(SD2_SPECIALS));
    assert.equal(sd2.padId, 0);
    const { ids } = sd2.encode('a cat!');
    assert.deepEqual(head(ids, 5), [BOS, 9, 17, 0, EOS]);
    assert.ok(ids.subarray(5).every((id) => id === 0));
    assert.equal(ids.length, 77);
  });

  test('a prompt longer than model_max_length is cut to its first tokens, eos kept last, and says so', () => {
    const short = loadPromptTokenizer(slowFolder(SD1_SPECIALS, 5));
    const cut = short.encode('a photo of a cat');
    assert.deepEqual([...cut.ids], [BOS, 9, 21, 22, EOS]);
    assert.equal(cut.tokens, 7);
    assert.equal(cut.truncated, true);
    const exact = loadPromptTokenizer(slowFolder(SD1_SPECIALS, 7)).encode('a photo of a cat');
    assert.deepEqual([...exact.ids], [BOS, 9, 21, 22, 9, 17, EOS]);
    assert.equal(exact.truncated, false);
  });

  test('missing special tokens fall back to CLIPTokenizer defaults, tokenizer_config.json under the map', () => {
    const dir = folder({
      'vocab.json': VOCAB,
      'merges.txt': MERGES_TXT,
      'special_tokens_map.json': { pad_token: '!' },
      'tokenizer_config.json': { model_max_length: 77, pad_token: '<|endoftext|>', bos_token: '<|startoftext|>' },
    });
    const tokenizer = loadPromptTokenizer(dir);
    assert.deepEqual([tokenizer.bosId, tokenizer.eosId, tokenizer.padId], [BOS, EOS, 0]);
  });
});

test('tokens tokenizer_config.json adds (added_tokens_decoder) are cut out of a prompt, in both layouts', () => {
  const config = {
    model_max_length: 77,
    added_tokens_decoder: {
      '26': {
        content: '<cat-toy>',
        lstrip: false,
        normalized: false,
        rstrip: false,
        single_word: false,
        special: false,
      },
    },
  };
  const slow = folder({
    'vocab.json': VOCAB,
    'merges.txt': MERGES_TXT,
    'special_tokens_map.json': SD1_SPECIALS,
    'tokenizer_config.json': config,
  });
  const json = buildClipTokenizerJson(
    VOCAB,
    MERGES.map((merge) => merge.split(' ') as [string, string]),
    SD1_SPECIALS,
  );
  const fast = folder({
    'tokenizer.json': json,
    'special_tokens_map.json': SD1_SPECIALS,
    'tokenizer_config.json': config,
  });
  for (const dir of [slow, fast])
    assert.deepEqual(head(loadPromptTokenizer(dir).encode('a <cat-toy>cat').ids, 5), [BOS, 9, 26, 17, EOS], dir);
});

describe('CLIP tokenizer from tokenizer.json', () => {
  const built = buildClipTokenizerJson(
    VOCAB,
    MERGES.map((merge) => merge.split(' ') as [string, string]),
    SD2_SPECIALS,
  );

  test('the built JSON has the structure of CLIPTokenizerFast (openai/clip-vit-large-patch14 tokenizer.json)', () => {
    assert.deepEqual(built.normalizer, {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
        { type: 'Lowercase' },
      ],
    });
    assert.deepEqual(built.post_processor, {
      type: 'RobertaProcessing',
      sep: ['<|endoftext|>', EOS],
      cls: ['<|startoftext|>', BOS],
      trim_offsets: false,
      add_prefix_space: false,
    });
    const model = built.model as Record<string, unknown>;
    assert.equal(model.end_of_word_suffix, '</w>');
    assert.equal(model.continuing_subword_prefix, '');
    assert.equal(model.unk_token, '<|endoftext|>');
    assert.deepEqual(
      (built.added_tokens as { id: number; content: string }[]).map(({ id, content }) => [id, content]),
      [
        [0, '!'],
        [BOS, '<|startoftext|>'],
        [EOS, '<|endoftext|>'],
      ],
    );
  });

  test('gives the same ids as vocab.json + merges.txt', () => {
    const config = { model_max_length: 77 };
    const fromJson = loadPromptTokenizer(
      folder({ 'tokenizer.json': built, 'special_tokens_map.json': SD2_SPECIALS, 'tokenizer_config.json': config }),
    );
    const fromSlow = loadPromptTokenizer(slowFolder(SD2_SPECIALS));
    for (const prompt of ['a photo of a cat', 'A  Cat!!', 'tat zz', '', 'of of of'])
      assert.deepEqual(fromJson.encode(prompt), fromSlow.encode(prompt), prompt);
    assert.deepEqual([fromJson.bosId, fromJson.eosId, fromJson.padId], [BOS, EOS, 0]);
  });

  test('special tokens the map names but tokenizer.json lacks are added, as transformers does', () => {
    const sd1Json = buildClipTokenizerJson(
      VOCAB,
      MERGES.map((merge) => merge.split(' ') as [string, string]),
      SD1_SPECIALS,
    );
    const tokenizer = loadPromptTokenizer(
      folder({
        'tokenizer.json': sd1Json,
        'special_tokens_map.json': SD2_SPECIALS,
        'tokenizer_config.json': { model_max_length: 77 },
      }),
    );
    assert.deepEqual(head(tokenizer.encode('a cat!').ids, 6), [BOS, 9, 17, 0, EOS, 0]);
  });
});

describe('folder problems name the file', () => {
  const files = {
    'vocab.json': VOCAB,
    'merges.txt': MERGES_TXT,
    'special_tokens_map.json': SD1_SPECIALS,
    'tokenizer_config.json': { model_max_length: 77 },
  };
  const without = (name: string) => Object.fromEntries(Object.entries(files).filter(([key]) => key !== name));

  test('missing files', () => {
    assert.throws(() => loadPromptTokenizer(folder(without('merges.txt'))), /merges\.txt is missing/);
    assert.throws(() => loadPromptTokenizer(folder(without('vocab.json'))), /vocab\.json is missing/);
    assert.throws(() => loadPromptTokenizer(folder(without('tokenizer_config.json'))), /tokenizer_config\.json/);
  });

  test('bad JSON and bad contents', () => {
    assert.throws(() => loadPromptTokenizer(folder({ ...files, 'vocab.json': '{"a": 1,' })), /vocab\.json is not JSON/);
    assert.throws(
      () => loadPromptTokenizer(folder({ ...files, 'tokenizer_config.json': {} })),
      /tokenizer_config\.json: model_max_length is required/,
    );
    assert.throws(
      () => loadPromptTokenizer(folder({ ...files, 'tokenizer.json': '[' })),
      /tokenizer\.json is not JSON/,
    );
    assert.throws(
      () => loadPromptTokenizer(folder({ ...files, 'merges.txt': '#version: 0.2\nc a b\n' })),
      /merges\.txt line 2/,
    );
  });

  test('a special token outside the vocab', () => {
    assert.throws(
      () => loadPromptTokenizer(folder({ ...files, 'special_tokens_map.json': { pad_token: '<pad>' } })),
      /vocab\.json: pad_token "<pad>" is not in the vocab/,
    );
  });
});

describe("T5 tokenizer from tokenizer.json (Flux's tokenizer_2)", () => {
  // FLUX.1's tokenizer_2 layout over a tiny Unigram vocabulary: Metaspace pieces, `$A </s>`, pad 0, no bos.
  const pieces: [string, number][] = [
    ['<pad>', 0],
    ['</s>', 0],
    ['<unk>', 0],
    ['\u2581', -2],
    ['\u2581a', -1],
    ['\u2581photo', -1],
    ['\u2581of', -1],
    ['\u2581cat', -1],
    ['c', -5],
    ['a', -5],
    ['t', -5],
  ];
  const added = (id: number, content: string) => ({ id, content, normalized: false, special: true });
  const tokenizerJson = {
    version: '1.0',
    added_tokens: [added(0, '<pad>'), added(1, '</s>'), added(2, '<unk>')],
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'WhitespaceSplit' },
        { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: null,
    model: { type: 'Unigram', unk_id: 2, vocab: pieces, byte_fallback: false },
  };
  const files = (config: object = {}) => ({
    'tokenizer.json': tokenizerJson,
    'special_tokens_map.json': { eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>' },
    'tokenizer_config.json': { tokenizer_class: 'T5Tokenizer', model_max_length: 512, ...config },
  });

  test('a prompt is its pieces, </s>, then <pad> up to the length (512, or the pipeline max_sequence_length)', () => {
    const t5 = loadPromptTokenizer(folder(files()));
    assert.deepEqual([t5.bosId, t5.eosId, t5.padId, t5.maxLength], [null, 1, 0, 512]);
    const { ids, tokens, truncated } = t5.encode('a photo of  a cat');
    assert.equal(ids.length, 512);
    assert.deepEqual(head(ids, 8), [4, 5, 6, 4, 7, 1, 0, 0]);
    assert.deepEqual([tokens, truncated], [6, false]);
    assert.deepEqual(head(t5.encode('').ids, 2), [1, 0]);
    // Other words: Unigram's most likely pieces (▁a -1, c -5, t -5 beats ▁ -2, a, c, t), <unk> for the rest.
    assert.deepEqual(head(t5.encode('act').ids, 5), [4, 8, 10, 1, 0]);
    assert.deepEqual(head(t5.encode('cx').ids, 4), [3, 8, 2, 1]);
    assert.equal(loadPromptTokenizer(folder(files()), { maxLength: 256 }).encode('a cat').ids.length, 256);
  });

  test('too long: the first pieces that fit with </s>, marked truncated; padding_side left pads in front', () => {
    const short = loadPromptTokenizer(folder(files()), { maxLength: 4 });
    assert.deepEqual(short.encode('a photo of a cat'), { ids: Int32Array.of(4, 5, 6, 1), tokens: 6, truncated: true });
    const left = loadPromptTokenizer(folder(files({ padding_side: 'left' })), { maxLength: 5 });
    assert.deepEqual(Array.from(left.encode('a cat').ids), [0, 0, 4, 7, 1]);
  });

  test('it needs its tokenizer.json and a pad token', () => {
    const { 'tokenizer.json': _, ...slow } = files();
    assert.throws(() => loadPromptTokenizer(folder(slow)), /tokenizer\.json is missing; a T5Tokenizer tokenizer/);
    assert.throws(
      () => loadPromptTokenizer(folder({ ...files(), 'special_tokens_map.json': { eos_token: '</s>' } })),
      /needs a pad_token and an eos_token/,
    );
  });
});
