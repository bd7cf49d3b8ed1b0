/** tinker-ts: the public surface. Everything here runs on any runtime with web-standard fetch. */

export type { CallOptions } from "./clients/call-options.js";
export {
  type AccessScope,
  type AccessScopeOptions,
  type ArchiveUrlOptions,
  type AuditLogOptions,
  type BillingUsageOptions,
  type CheckpointStorageUsageOptions,
  type ExportSessionTraceOptions,
  type ExternalWeightsUploadOptions,
  type ListOptions,
  type ListSessionsOptions,
  type ListTrainingRunsOptions,
  RestClient,
  type SearchCheckpointsOptions,
} from "./clients/rest.js";
export { type FromSamplerHandleOptions, type SampleOptions, SamplingClient } from "./clients/sampling.js";
export type { RetryConfig } from "./clients/sampling-retry.js";
export {
  type CopyWeightsOptions,
  type FromStateOptions,
  type LoraTrainingOptions,
  type OptimizerConfig,
  type SamplingClientOptions,
  ServiceClient,
} from "./clients/service.js";
export type { LoadStateOptions, SaveStateOptions } from "./clients/training.js";
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
  SdkVersionUnsupportedError,
  TinkerError,
  UnexpectedResponseError,
  type UnexpectedResponseKind,
  UnprocessableEntityError,
  ValidationError,
  type ValidationIssue,
} from "./core/errors.js";
export type { FetchLike, ResponseInfo, RetryInfo, RetryReason } from "./core/http.js";
export type { JwtClaims } from "./core/jwt.js";
export type { Logger } from "./core/logger.js";
export type {
  Telemetry,
  TelemetryBatch,
  TelemetryEvent,
  TelemetrySeverity,
} from "./core/telemetry.js";
export { APIFuture, type ResultOptions } from "./futures/api-future.js";
export type { FutureEvent, FutureRequestType } from "./futures/poller.js";
// Values whose modules load on first use: see the file for why they are constants there.
export {
  BYTE_LEVEL_TOKENIZER_ID,
  ByteLevelTokenizer,
  CUSTOM_LOSS_METRIC,
  clearTokenizerCache,
  DEFAULT_ADAM_PARAMS,
  forwardBackwardCustom,
  loadTokenizer,
  resolveTokenizerId,
  SURROGATE_LOSS_METRIC,
  TokenizerError,
  TrainingClient,
  tokenizerFromJSON,
} from "./lazy-exports.js";
export * as autodiff from "./lib/autodiff/index.js";
export {
  CONSOLE_BASE_URL,
  checkpointConsoleUrl,
  playgroundConsoleUrl,
  samplerWeightsConsoleUrl,
  sessionConsoleUrl,
  trainingRunConsoleUrl,
} from "./lib/console-urls.js";
export type {
  CustomGradientFn,
  CustomGradientResult,
  CustomLoss,
  CustomLossFn,
  CustomLossResult,
  CustomLossTrainer,
} from "./lib/custom-loss.js";
export {
  datum,
  ModelInput,
  type ProvenanceInput,
  TensorData,
  withProvenance,
} from "./lib/model-input.js";
export { PagePromise } from "./lib/pagination.js";
export {
  monitorRun,
  RecoveryError,
  type RecoveryEvent,
  type RecoveryOptions,
  type RecoveryResult,
  type RecoveryService,
  type RunMonitor,
  type RunMonitorOptions,
  recover,
} from "./lib/recovery.js";
export {
  TARGET_PROMPT_LOGPROBS_SKIP,
  type TargetPromptLogprobsLayout,
  targetPromptLogprobsTensor,
} from "./lib/target-prompt-logprobs.js";
export { type CheckpointType, type ParsedTinkerPath, parseTinkerPath } from "./lib/tinker-path.js";
export type {
  ChatTemplate,
  DecodeOptions,
  EncodeOptions,
  LoadTokenizerOptions,
  Tokenizer,
  TokenizerFetch,
  TokenizerFileLoader,
  TokenizerInfo,
} from "./lib/tokenizer/index.js";
export { PROTOCOL_SDK_VERSION, VERSION } from "./version.js";
export type { SearchOwner } from "./wire/endpoints/rest.js";
export type {
  AuditEventType,
  AuditLogEntry,
  AuditLogResponse,
  BillingEventInfo,
  BillingUsageEvent,
  BillingUsageResponse,
  Checkpoint,
  CheckpointArchiveUrlResponse,
  CheckpointSearchCursor,
  CheckpointSearchResponse,
  CheckpointStorageUsage,
  CheckpointsListResponse,
  Cursor,
  ExternalWeightsUploadStart,
  ExternalWeightsUrlsResponse,
  GetSessionResponse,
  ListSessionsResponse,
  TrainingRun,
  TrainingRunsResponse,
  WhoamiResponse,
} from "./wire/rest-schemas.js";
export type {
  GetInfoResponse,
  GetSamplerResponse,
  GetServerCapabilitiesResponse,
  LoadWeightsResponse,
  OptimStepResponse,
  SaveWeightsExternalResponse,
  SaveWeightsResponse,
  SupportedModel,
  UnloadModelResponse,
  WeightsInfoResponse,
} from "./wire/schemas.js";
export type {
  AdamParams,
  Datum,
  DatumInput,
  DimuonParams,
  DmelChunk,
  DType,
  EncodedTextChunk,
  EncodedTextInputChunk,
  ForwardBackwardOutput,
  ImageAssetPointerChunk,
  ImageChunk,
  LoraConfig,
  LossFnConfig,
  LossFnType,
  ModelInputChunk,
  PromptProvenanceSpan,
  ProvenanceSpan,
  ProvenanceSpans,
  SampledProvenanceSpan,
  SampledSequence,
  SampleResponse,
  SamplingParams,
  StopReason,
  TensorInput,
  TensorValues,
  TokenIds,
  TrainingInputChunk,
  TrainingModelInput,
} from "./wire/types.js";
