/** tinker-ts: the public surface. Everything here runs on any runtime with web-standard fetch. */
export { ServiceClient, type LoraTrainingOptions, type SamplingClientOptions } from "./clients/service.js";
export { TrainingClient, DEFAULT_ADAM_PARAMS } from "./clients/training.js";
export { SamplingClient, type SampleOptions } from "./clients/sampling.js";
export type { CallOptions } from "./clients/call-options.js";
export { APIFuture, type ResultOptions } from "./futures/api-future.js";
export type { FutureEvent, FutureRequestType } from "./futures/poller.js";
export type { ClientOptions } from "./core/config.js";
export type { FetchLike } from "./core/http.js";
export {
  TinkerError,
  APIError,
  APIStatusError,
  BadRequestError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  ConflictError,
  UnprocessableEntityError,
  RateLimitError,
  InternalServerError,
  APIConnectionError,
  APITimeoutError,
  APIUserAbortError,
  RequestFailedError,
  FutureRetrieveError,
  ValidationError,
  ResponseValidationError,
  type ValidationIssue,
  type RequestFailureCategory,
} from "./core/errors.js";
export { ModelInput, TensorData, datum } from "./lib/model-input.js";
export type {
  AdamParams,
  Datum,
  DType,
  EncodedTextChunk,
  ForwardBackwardOutput,
  ImageChunk,
  ImageAssetPointerChunk,
  DmelChunk,
  LoraConfig,
  LossFnType,
  ModelInputChunk,
  SampledSequence,
  SampleResponse,
  SamplingParams,
  StopReason,
} from "./wire/types.js";
export type {
  GetInfoResponse,
  GetServerCapabilitiesResponse,
  OptimStepResponse,
  SupportedModel,
} from "./wire/schemas.js";
export { VERSION } from "./version.js";
