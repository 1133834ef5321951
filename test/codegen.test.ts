/** The committed schema.graphql and src/client/generated/ are what `npm run codegen` writes now. */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { printSchema } from 'graphql';
import { schema } from '../src/schema/index.ts';
import { PROJECT_DIR } from './support/paths.ts';

const GENERATED = ['schema.graphql', ...['gql.ts', 'graphql.ts', 'index.ts'].map((f) => `src/client/generated/${f}`)];

test('generated files are fresh (run `npm run codegen` and commit them when this fails)', async () => {
  const out = mkdtempSync(join(tmpdir(), 'latentgate-codegen-'));
  try {
    await promisify(execFile)(
      process.execPath,
      [join(PROJECT_DIR, 'node_modules/@graphql-codegen/cli/cjs/bin.js'), '--config', 'codegen.ts'],
      {
        cwd: PROJECT_DIR,
        env: { ...process.env, CODEGEN_OUT_DIR: out },
      },
    );
    assert.deepEqual(
      readdirSync(join(out, 'src/client/generated')).sort(),
      readdirSync(join(PROJECT_DIR, 'src/client/generated')).sort(),
    );
    for (const path of GENERATED) {
      assert.ok(existsSync(join(PROJECT_DIR, path)), `${path} is missing: run npm run codegen`);
      const fresh = readFileSync(join(out, path), 'utf8');
      const committed = readFileSync(join(PROJECT_DIR, path), 'utf8');
      assert.ok(fresh === committed, `${path} is stale: run npm run codegen (it differs from what codegen writes now)`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('schema.graphql is the printed, lexicographically sorted schema', () => {
  const committed = readFileSync(join(PROJECT_DIR, 'schema.graphql'), 'utf8');
  assert.equal(committed.trim(), printSchema(schema).trim());
});
