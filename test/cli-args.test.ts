/** Command-line flags: split by node:util parseArgs, values checked by each command's zod schemas (no process). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { checkFlags, numberFlag, parseCommandLine, positiveInteger, switchFlag, UsageError } from '../src/cli/args.ts';

const FLAGS = {
  model: z.string(),
  op: z.enum(['encode', 'decode']),
  width: positiveInteger(),
  batch: positiveInteger().default(1),
  json: switchFlag(),
};

test('values, --flag=value, switches, defaults and positionals', () => {
  const line = parseCommandLine(['in.png', '--model', 'taef2', '--op=decode', '--width', '64', '--json'], FLAGS);
  assert.deepEqual(line, {
    positional: ['in.png'],
    flags: { model: 'taef2', op: 'decode', width: 64, batch: 1, json: true },
  });
  assert.equal(parseCommandLine(['--model', 'm', '--op', 'encode', '--width', '8'], FLAGS).flags.json, false);
});

test('every bad flag is named at once, with what is allowed', () => {
  assert.throws(
    () => parseCommandLine(['--op', 'both', '--width', '0', '--batch', 'two'], FLAGS),
    (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.equal(
        error.message,
        '--model is required. --op is "both"; allowed: encode, decode. ' +
          '--width is "0"; it must be an integer of at least 1. ' +
          '--batch is "two"; it must be an integer of at least 1',
      );
      return true;
    },
  );
});

test('unknown flags and missing values are refused', () => {
  assert.throws(() => parseCommandLine(['--model', 'm', '--colour', 'red'], FLAGS), /Unknown option '--colour'/);
  assert.throws(() => parseCommandLine(['--model'], FLAGS), /--model <value>' argument missing/);
});

test('a list flag is shown once, as written, whichever items failed', () => {
  const sizes = z
    .string()
    .transform((text) => text.split(','))
    .pipe(z.array(positiveInteger().multipleOf(8, { error: 'they must be multiples of 8' })));
  assert.deepEqual(checkFlags({ sizes }, { sizes: '256,512' }), { sizes: [256, 512] });
  assert.throws(() => checkFlags({ sizes }, { sizes: '250,500' }), {
    name: 'Error',
    message: '--sizes is "250,500"; they must be multiples of 8',
  });
});

test('a number flag takes decimals as written and refuses anything else by name', () => {
  const shape = { strength: numberFlag() };
  for (const [text, value] of [
    ['0.8', 0.8],
    ['.5', 0.5],
    ['1', 1],
    ['-2.5', -2.5],
    ['1e-2', 0.01],
  ] as const)
    assert.equal(checkFlags(shape, { strength: text }).strength, value, text);
  for (const text of ['lots', '', '0x10', '1,5', '1e999'])
    assert.throws(
      () => checkFlags(shape, { strength: text }),
      (error: unknown) =>
        error instanceof UsageError && error.message === `--strength is "${text}"; it must be a number`,
      text,
    );
});
