/** tinker-ts: the public surface. Everything here runs on any runtime with web-standard fetch. */

export type { CallOptions } from "./clients/call-options.js";
export { type SampleOptions, SamplingClient } from "./clients/sampling.js";
export type { RetryConfig } from "./clients/sampling-retry.js";
export {
  type FromStateOptions,
  type LoraTrainingOptions,
  type SamplingClientOptions,
  ServiceClient,
} from "./clients/service.js";
export {
  DEFAULT_ADAM_PARAMS,
  type LoadStateOptions,
  type SaveStateOptions,
  TrainingClient,
} from "./clients/training.js";
export type { ClientOptions } from "./core/config.js";
export {
  APIConnectionError,
  APIError,
  APIStatusError,
  APITimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  FutureRetrieveError,
  InternalServerError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  RequestFailedError,
  type RequestFailureCategory,
  ResponseValidationError,
  TinkerError,
  UnprocessableEntityError,
  ValidationError,
  type ValidationIssue,
} from "./core/errors.js";
export type { FetchLike } from "./core/http.js";
export { APIFuture, type ResultOptions } from "./futures/api-future.js";
export type { FutureEvent, FutureRequestType } from "./futures/poller.js";
export { datum, ModelInput, TensorData } from "./lib/model-input.js";
export { VERSION } from "./version.js";
export type {
  GetInfoResponse,
  GetSamplerResponse,
  GetServerCapabilitiesResponse,
  LoadWeightsResponse,
  OptimStepResponse,
  SaveWeightsResponse,
  SupportedModel,
  UnloadModelResponse,
  WeightsInfoResponse,
} from "./wire/schemas.js";
export type {
  AdamParams,
  Datum,
  DmelChunk,
  DType,
  EncodedTextChunk,
  ForwardBackwardOutput,
  ImageAssetPointerChunk,
  ImageChunk,
  LoraConfig,
  LossFnType,
  ModelInputChunk,
  SampledSequence,
  SampleResponse,
  SamplingParams,
  StopReason,
} from "./wire/types.js";
