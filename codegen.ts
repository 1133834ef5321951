/**
 * `npm run codegen`: the printed, sorted schema (schema.graphql) and the typed client documents
 * (src/client/generated/) for the operations in src/client/operations.ts. Both are committed;
 * test/codegen.test.ts fails when they are stale. CODEGEN_OUT_DIR writes them elsewhere (the test
 * generates into a temporary folder and compares).
 */
import type { CodegenConfig } from '@graphql-codegen/cli';
import { printSchema } from 'graphql';
import { schema } from './src/schema/index.ts';

const out = (process.env.CODEGEN_OUT_DIR ?? '.').replace(/\/$/, '');

const config: CodegenConfig = {
  schema: printSchema(schema),
  documents: ['src/client/operations.ts'],
  ignoreNoDocuments: false,
  silent: true,
  generates: {
    [`${out}/schema.graphql`]: {
      plugins: ['schema-ast'],
      config: { includeDirectives: false, sort: true },
    },
    [`${out}/src/client/generated/`]: {
      preset: 'client',
      presetConfig: { gqlTagName: 'graphql', fragmentMasking: false },
      config: {
        documentMode: 'string',
        useTypeImports: true,
        enumType: 'string-literal',
        importExtension: '.js',
        strictScalars: true,
        scalars: {
          DateTime: { input: 'string', output: 'string' },
          // Int up to 2^53 - 1, a decimal string above (the gateway returns it the same way).
          Seed: { input: 'number | string', output: 'number | string' },
          File: { input: 'File', output: 'never' },
        },
      },
    },
  },
};

export default config;
