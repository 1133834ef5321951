import { lexicographicSortSchema } from 'graphql';
import { builder } from './builder.js';
import './types/enums.js';
import './types/model.js';
import './types/plan.js';
import './types/encode.js';
import './types/decode.js';
import './types/queries.js';
import './types/img2img.js';
import './types/jobs.js';
import './types/usage.js';

export const schema = lexicographicSortSchema(builder.toSchema());
