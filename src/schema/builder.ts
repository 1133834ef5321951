import SchemaBuilder from '@pothos/core';
import type { GraphQLContext } from '../server/context.js';

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  Scalars: {
    File: { Input: File; Output: never };
    DateTime: { Input: Date; Output: Date };
  };
  DefaultFieldNullability: false;
}>({ defaultFieldNullability: false });

builder.scalarType('File', {
  description: 'A file sent as part of a GraphQL multipart request.',
  serialize: () => {
    throw new Error('File is an input-only scalar');
  },
});

builder.scalarType('DateTime', {
  description: 'An ISO-8601 timestamp.',
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    const date = new Date(String(value));
    if (Number.isNaN(date.getTime())) throw new TypeError(`"${String(value)}" is not an ISO-8601 timestamp`);
    return date;
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
