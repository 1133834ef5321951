/* eslint-disable */
import * as types from './graphql.js';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  fragment PlanFields on Plan {\n    route\n    target\n    reason\n    bytes\n    tile\n    expectedSeconds\n    budgetBytes\n    freeBytes\n    estimates {\n      whole { bytes calibrated }\n      tiled { bytes tile overlap calibrated }\n    }\n  }\n": typeof types.PlanFieldsFragmentDoc,
    "\n  fragment EncodeResultFields on EncodeResult {\n    model\n    width\n    height\n    originalWidth\n    originalHeight\n    resized\n    resize { method from { width height } to { width height } }\n    scalingFactor\n    shiftFactor\n    seconds\n    latent { shape dtype data url expiresAt sha256 byteLength }\n    route { ...PlanFields }\n  }\n": typeof types.EncodeResultFieldsFragmentDoc,
    "\n  fragment DecodeResultFields on DecodeResult {\n    model\n    scalingFactor\n    shiftFactor\n    seconds\n    images { format mimeType width height data url expiresAt sha256 byteLength }\n    route { ...PlanFields }\n  }\n": typeof types.DecodeResultFieldsFragmentDoc,
    "\n  fragment Img2ImgResultFields on Img2ImgResult {\n    model\n    seed\n    scheduler\n    timesteps\n    width\n    height\n    seconds\n    images { format mimeType width height data url expiresAt sha256 byteLength }\n    # Aliased: EncodeResult.latent is non-null, this one nullable, and one selection set cannot hold both.\n    finalLatent: latent { shape dtype data url expiresAt sha256 byteLength }\n    stages { stage seconds route { ...PlanFields } }\n  }\n": typeof types.Img2ImgResultFieldsFragmentDoc,
    "\n  fragment JobFields on Job {\n    id\n    operation\n    model\n    status\n    cancelRequested\n    queuePosition\n    createdAt\n    startedAt\n    finishedAt\n    expiresAt\n    progress { done total }\n    route { ...PlanFields }\n    error { code message retryAfterSeconds }\n    result {\n      __typename\n      ...EncodeResultFields\n      ...DecodeResultFields\n      ...Img2ImgResultFields\n    }\n  }\n": typeof types.JobFieldsFragmentDoc,
    "\n  fragment JobEventFields on JobEvent {\n    __typename\n    jobId\n    seq\n    type\n    status\n    at\n    ... on JobQueuedEvent { position }\n    ... on JobRoutedEvent { stage route { ...PlanFields } }\n    ... on JobRunningEvent { done total stage step timestep }\n    ... on JobDoneEvent {\n      result {\n        __typename\n        ...EncodeResultFields\n        ...DecodeResultFields\n        ...Img2ImgResultFields\n      }\n    }\n    ... on JobFailedEvent { error { code message retryAfterSeconds } }\n    ... on JobCancelledEvent { reason }\n  }\n": typeof types.JobEventFieldsFragmentDoc,
    "\n  query Models {\n    models {\n      id\n      family\n      format\n      latentChannels\n      downscaleFactor\n      operations\n      scalingFactor\n      shiftFactor\n      runsOn\n      scheduler\n      schedulerClass\n    }\n  }\n": typeof types.ModelsDocument,
    "\n  query Job($id: ID!) {\n    job(id: $id) { ...JobFields }\n  }\n": typeof types.JobDocument,
    "\n  mutation SubmitEncode($input: EncodeInput!) {\n    submitEncode(input: $input) { ...JobFields }\n  }\n": typeof types.SubmitEncodeDocument,
    "\n  mutation SubmitDecode($input: DecodeInput!) {\n    submitDecode(input: $input) { ...JobFields }\n  }\n": typeof types.SubmitDecodeDocument,
    "\n  mutation SubmitImg2img($input: Img2ImgInput!) {\n    submitImg2img(input: $input) { ...JobFields }\n  }\n": typeof types.SubmitImg2imgDocument,
    "\n  mutation CancelJob($id: ID!) {\n    cancelJob(id: $id) { ...JobFields }\n  }\n": typeof types.CancelJobDocument,
    "\n  subscription JobProgress($id: ID!) {\n    jobProgress(id: $id) { ...JobEventFields }\n  }\n": typeof types.JobProgressDocument,
};
const documents: Documents = {
    "\n  fragment PlanFields on Plan {\n    route\n    target\n    reason\n    bytes\n    tile\n    expectedSeconds\n    budgetBytes\n    freeBytes\n    estimates {\n      whole { bytes calibrated }\n      tiled { bytes tile overlap calibrated }\n    }\n  }\n": types.PlanFieldsFragmentDoc,
    "\n  fragment EncodeResultFields on EncodeResult {\n    model\n    width\n    height\n    originalWidth\n    originalHeight\n    resized\n    resize { method from { width height } to { width height } }\n    scalingFactor\n    shiftFactor\n    seconds\n    latent { shape dtype data url expiresAt sha256 byteLength }\n    route { ...PlanFields }\n  }\n": types.EncodeResultFieldsFragmentDoc,
    "\n  fragment DecodeResultFields on DecodeResult {\n    model\n    scalingFactor\n    shiftFactor\n    seconds\n    images { format mimeType width height data url expiresAt sha256 byteLength }\n    route { ...PlanFields }\n  }\n": types.DecodeResultFieldsFragmentDoc,
    "\n  fragment Img2ImgResultFields on Img2ImgResult {\n    model\n    seed\n    scheduler\n    timesteps\n    width\n    height\n    seconds\n    images { format mimeType width height data url expiresAt sha256 byteLength }\n    # Aliased: EncodeResult.latent is non-null, this one nullable, and one selection set cannot hold both.\n    finalLatent: latent { shape dtype data url expiresAt sha256 byteLength }\n    stages { stage seconds route { ...PlanFields } }\n  }\n": types.Img2ImgResultFieldsFragmentDoc,
    "\n  fragment JobFields on Job {\n    id\n    operation\n    model\n    status\n    cancelRequested\n    queuePosition\n    createdAt\n    startedAt\n    finishedAt\n    expiresAt\n    progress { done total }\n    route { ...PlanFields }\n    error { code message retryAfterSeconds }\n    result {\n      __typename\n      ...EncodeResultFields\n      ...DecodeResultFields\n      ...Img2ImgResultFields\n    }\n  }\n": types.JobFieldsFragmentDoc,
    "\n  fragment JobEventFields on JobEvent {\n    __typename\n    jobId\n    seq\n    type\n    status\n    at\n    ... on JobQueuedEvent { position }\n    ... on JobRoutedEvent { stage route { ...PlanFields } }\n    ... on JobRunningEvent { done total stage step timestep }\n    ... on JobDoneEvent {\n      result {\n        __typename\n        ...EncodeResultFields\n        ...DecodeResultFields\n        ...Img2ImgResultFields\n      }\n    }\n    ... on JobFailedEvent { error { code message retryAfterSeconds } }\n    ... on JobCancelledEvent { reason }\n  }\n": types.JobEventFieldsFragmentDoc,
    "\n  query Models {\n    models {\n      id\n      family\n      format\n      latentChannels\n      downscaleFactor\n      operations\n      scalingFactor\n      shiftFactor\n      runsOn\n      scheduler\n      schedulerClass\n    }\n  }\n": types.ModelsDocument,
    "\n  query Job($id: ID!) {\n    job(id: $id) { ...JobFields }\n  }\n": types.JobDocument,
    "\n  mutation SubmitEncode($input: EncodeInput!) {\n    submitEncode(input: $input) { ...JobFields }\n  }\n": types.SubmitEncodeDocument,
    "\n  mutation SubmitDecode($input: DecodeInput!) {\n    submitDecode(input: $input) { ...JobFields }\n  }\n": types.SubmitDecodeDocument,
    "\n  mutation SubmitImg2img($input: Img2ImgInput!) {\n    submitImg2img(input: $input) { ...JobFields }\n  }\n": types.SubmitImg2imgDocument,
    "\n  mutation CancelJob($id: ID!) {\n    cancelJob(id: $id) { ...JobFields }\n  }\n": types.CancelJobDocument,
    "\n  subscription JobProgress($id: ID!) {\n    jobProgress(id: $id) { ...JobEventFields }\n  }\n": types.JobProgressDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment PlanFields on Plan {\n    route\n    target\n    reason\n    bytes\n    tile\n    expectedSeconds\n    budgetBytes\n    freeBytes\n    estimates {\n      whole { bytes calibrated }\n      tiled { bytes tile overlap calibrated }\n    }\n  }\n"): typeof import('./graphql.js').PlanFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment EncodeResultFields on EncodeResult {\n    model\n    width\n    height\n    originalWidth\n    originalHeight\n    resized\n    resize { method from { width height } to { width height } }\n    scalingFactor\n    shiftFactor\n    seconds\n    latent { shape dtype data url expiresAt sha256 byteLength }\n    route { ...PlanFields }\n  }\n"): typeof import('./graphql.js').EncodeResultFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment DecodeResultFields on DecodeResult {\n    model\n    scalingFactor\n    shiftFactor\n    seconds\n    images { format mimeType width height data url expiresAt sha256 byteLength }\n    route { ...PlanFields }\n  }\n"): typeof import('./graphql.js').DecodeResultFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment Img2ImgResultFields on Img2ImgResult {\n    model\n    seed\n    scheduler\n    timesteps\n    width\n    height\n    seconds\n    images { format mimeType width height data url expiresAt sha256 byteLength }\n    # Aliased: EncodeResult.latent is non-null, this one nullable, and one selection set cannot hold both.\n    finalLatent: latent { shape dtype data url expiresAt sha256 byteLength }\n    stages { stage seconds route { ...PlanFields } }\n  }\n"): typeof import('./graphql.js').Img2ImgResultFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment JobFields on Job {\n    id\n    operation\n    model\n    status\n    cancelRequested\n    queuePosition\n    createdAt\n    startedAt\n    finishedAt\n    expiresAt\n    progress { done total }\n    route { ...PlanFields }\n    error { code message retryAfterSeconds }\n    result {\n      __typename\n      ...EncodeResultFields\n      ...DecodeResultFields\n      ...Img2ImgResultFields\n    }\n  }\n"): typeof import('./graphql.js').JobFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment JobEventFields on JobEvent {\n    __typename\n    jobId\n    seq\n    type\n    status\n    at\n    ... on JobQueuedEvent { position }\n    ... on JobRoutedEvent { stage route { ...PlanFields } }\n    ... on JobRunningEvent { done total stage step timestep }\n    ... on JobDoneEvent {\n      result {\n        __typename\n        ...EncodeResultFields\n        ...DecodeResultFields\n        ...Img2ImgResultFields\n      }\n    }\n    ... on JobFailedEvent { error { code message retryAfterSeconds } }\n    ... on JobCancelledEvent { reason }\n  }\n"): typeof import('./graphql.js').JobEventFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Models {\n    models {\n      id\n      family\n      format\n      latentChannels\n      downscaleFactor\n      operations\n      scalingFactor\n      shiftFactor\n      runsOn\n      scheduler\n      schedulerClass\n    }\n  }\n"): typeof import('./graphql.js').ModelsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Job($id: ID!) {\n    job(id: $id) { ...JobFields }\n  }\n"): typeof import('./graphql.js').JobDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SubmitEncode($input: EncodeInput!) {\n    submitEncode(input: $input) { ...JobFields }\n  }\n"): typeof import('./graphql.js').SubmitEncodeDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SubmitDecode($input: DecodeInput!) {\n    submitDecode(input: $input) { ...JobFields }\n  }\n"): typeof import('./graphql.js').SubmitDecodeDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SubmitImg2img($input: Img2ImgInput!) {\n    submitImg2img(input: $input) { ...JobFields }\n  }\n"): typeof import('./graphql.js').SubmitImg2imgDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CancelJob($id: ID!) {\n    cancelJob(id: $id) { ...JobFields }\n  }\n"): typeof import('./graphql.js').CancelJobDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobProgress($id: ID!) {\n    jobProgress(id: $id) { ...JobEventFields }\n  }\n"): typeof import('./graphql.js').JobProgressDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
