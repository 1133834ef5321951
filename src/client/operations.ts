/**
 * The GraphQL operations of the typed client (src/client/client.ts), the command-line client and
 * the web playground. `npm run codegen` turns them into typed documents in ./generated/ (the
 * playground gets the same documents from /web/operations.js).
 */
import { graphql } from './generated/gql.js';

export const PlanFields = graphql(`
  fragment PlanFields on Plan {
    route
    target
    reason
    bytes
    tile
    expectedSeconds
    budgetBytes
    freeBytes
    estimates {
      whole { bytes calibrated }
      tiled { bytes tile overlap calibrated }
    }
  }
`);

export const EncodeResultFields = graphql(`
  fragment EncodeResultFields on EncodeResult {
    model
    width
    height
    originalWidth
    originalHeight
    resized
    resize { method from { width height } to { width height } }
    scalingFactor
    shiftFactor
    seconds
    latent { shape dtype data url expiresAt sha256 byteLength }
    route { ...PlanFields }
  }
`);

export const DecodeResultFields = graphql(`
  fragment DecodeResultFields on DecodeResult {
    model
    scalingFactor
    shiftFactor
    seconds
    images { format mimeType width height data url expiresAt sha256 byteLength }
    route { ...PlanFields }
  }
`);

export const Img2ImgResultFields = graphql(`
  fragment Img2ImgResultFields on Img2ImgResult {
    model
    seed
    scheduler
    timesteps
    width
    height
    seconds
    images { format mimeType width height data url expiresAt sha256 byteLength }
    # Aliased: EncodeResult.latent is non-null, this one nullable, and one selection set cannot hold both.
    finalLatent: latent { shape dtype data url expiresAt sha256 byteLength }
    stages { stage seconds route { ...PlanFields } }
  }
`);

export const JobFields = graphql(`
  fragment JobFields on Job {
    id
    operation
    model
    status
    cancelRequested
    queuePosition
    createdAt
    startedAt
    finishedAt
    expiresAt
    progress { done total }
    route { ...PlanFields }
    error { code message retryAfterSeconds }
    result {
      __typename
      ...EncodeResultFields
      ...DecodeResultFields
      ...Img2ImgResultFields
    }
  }
`);

export const JobEventFields = graphql(`
  fragment JobEventFields on JobEvent {
    __typename
    jobId
    seq
    type
    status
    at
    ... on JobQueuedEvent { position }
    ... on JobRoutedEvent { stage route { ...PlanFields } }
    ... on JobRunningEvent { done total stage step timestep }
    ... on JobDoneEvent {
      result {
        __typename
        ...EncodeResultFields
        ...DecodeResultFields
        ...Img2ImgResultFields
      }
    }
    ... on JobFailedEvent { error { code message retryAfterSeconds } }
    ... on JobCancelledEvent { reason }
  }
`);

export const ModelsQuery = graphql(`
  query Models {
    models {
      id
      family
      format
      latentChannels
      downscaleFactor
      operations
      scalingFactor
      shiftFactor
      runsOn
      scheduler
      schedulerClass
    }
  }
`);

export const JobQuery = graphql(`
  query Job($id: ID!) {
    job(id: $id) { ...JobFields }
  }
`);

export const SubmitEncodeMutation = graphql(`
  mutation SubmitEncode($input: EncodeInput!) {
    submitEncode(input: $input) { ...JobFields }
  }
`);

export const SubmitDecodeMutation = graphql(`
  mutation SubmitDecode($input: DecodeInput!) {
    submitDecode(input: $input) { ...JobFields }
  }
`);

export const SubmitImg2imgMutation = graphql(`
  mutation SubmitImg2img($input: Img2ImgInput!) {
    submitImg2img(input: $input) { ...JobFields }
  }
`);

export const CancelJobMutation = graphql(`
  mutation CancelJob($id: ID!) {
    cancelJob(id: $id) { ...JobFields }
  }
`);

export const JobProgressSubscription = graphql(`
  subscription JobProgress($id: ID!) {
    jobProgress(id: $id) { ...JobEventFields }
  }
`);
