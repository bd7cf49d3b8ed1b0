/**
 * valibot schemas of the JSON responses (PROTOCOL.md §2–§3). All are `looseObject`: unknown fields
 * pass through untouched (forward compatible), missing required ones fail with a clear
 * ResponseValidationError.
 */
import * as v from "valibot";
import { ResponseValidationError } from "../core/errors.js";

const optionalBoolean = v.optional(v.boolean());
const optionalNumber = v.optional(v.number());
const optionalString = v.optional(v.nullable(v.string()));

export const ClientConfigResponseSchema = v.looseObject({
  pjwt_auth_enabled: optionalBoolean,
  credential_default_source: optionalString,
  sample_dispatch_bytes_semaphore_size: optionalNumber,
  inflight_response_bytes_semaphore_size: optionalNumber,
  parallel_fwdbwd_chunks: optionalBoolean,
  proto_compress_fwdbwd: optionalBoolean,
  fwdbwd_max_chunk_len: optionalNumber,
  fwdbwd_max_chunk_bytes_count: optionalNumber,
  fwdbwd_dispatch_bytes_semaphore_size: optionalNumber,
  billing_exception_max_pause_duration_sec: optionalNumber,
  sample_no_retries: optionalBoolean,
  sample_enable_stuck_detection: optionalBoolean,
  sample_max_concurrent_requests: optionalNumber,
  use_pyqwest_transport: optionalBoolean,
  create_model_via_load_weights: optionalBoolean,
  /** §F1: sampling clients long-poll `retrieve_futures` instead of one poll per request. */
  sample_use_retrieve_futures: optionalBoolean,
  /** §P3: cloned sampling clients ask `join_sampling_session` for their seq_id block. */
  sample_join_sampling_session: optionalBoolean,
});
export type ClientConfigResponse = v.InferOutput<typeof ClientConfigResponseSchema>;

export const DynamicConfigResponseSchema = v.looseObject({
  refresh_interval_sec: optionalNumber,
  /** §F2: abandoned sample futures are cancelled on the server through `cancel_future`. */
  sample_cancel_enabled: optionalBoolean,
  sample_cancel_max_batch_size: optionalNumber,
});
export type DynamicConfigResponse = v.InferOutput<typeof DynamicConfigResponseSchema>;

export const CreateSessionResponseSchema = v.looseObject({
  session_id: v.string(),
  type: v.optional(v.literal("create_session")),
  info_message: optionalString,
  warning_message: optionalString,
  error_message: optionalString,
});

export const SupportedModelSchema = v.looseObject({
  model_name: optionalString,
  max_context_length: v.optional(v.nullable(v.number())),
  /** §R4: whether LoRA training / sampling is offered on this model (absent on older servers). */
  trainable: optionalBoolean,
  sampleable: optionalBoolean,
});
export const GetServerCapabilitiesResponseSchema = v.looseObject({
  supported_models: v.array(SupportedModelSchema),
});
export type GetServerCapabilitiesResponse = v.InferOutput<typeof GetServerCapabilitiesResponseSchema>;
export type SupportedModel = v.InferOutput<typeof SupportedModelSchema>;

/** The immediate answer of every future endpoint. */
export const UntypedAPIFutureSchema = v.looseObject({
  request_id: v.string(),
  model_id: optionalString,
  /** §P1: `asample` answers one id per requested sample, in response order (0.26.2+ servers). */
  sample_sequence_ids: v.optional(v.nullable(v.array(v.string()))),
});
export type UntypedAPIFuture = v.InferOutput<typeof UntypedAPIFutureSchema>;

/** Answers whose content the client ignores (`{}`, `null`, or anything else). */
export const IgnoredResponseSchema = v.unknown();

export const QueueStateSchema = v.union([
  v.picklist(["active", "paused_capacity", "paused_rate_limit"]),
  v.string(),
]);

export const TryAgainResponseSchema = v.looseObject({
  type: v.literal("try_again"),
  request_id: v.optional(v.string()),
  queue_state: v.optional(QueueStateSchema),
  queue_state_reason: optionalString,
});

export const MetadataOnlyResponseSchema = v.looseObject({
  status: v.literal("complete_metadata"),
  response_payload_size: v.optional(v.number()),
});

export const RequestFailedResponseSchema = v.looseObject({
  error: v.unknown(),
  category: v.optional(v.nullable(v.string())),
});

export const CreateModelResponseSchema = v.looseObject({
  model_id: v.string(),
  type: v.optional(v.literal("create_model")),
});
export type CreateModelResponse = v.InferOutput<typeof CreateModelResponseSchema>;

const MetricsSchema = v.record(v.string(), v.number());

export const OptimStepResponseSchema = v.looseObject({
  metrics: v.optional(v.nullable(MetricsSchema)),
  type: v.optional(v.literal("optim_step")),
});
export type OptimStepResponse = v.InferOutput<typeof OptimStepResponseSchema>;

export const SaveWeightsForSamplerResponseSchema = v.looseObject({
  path: optionalString,
  sampling_session_id: optionalString,
  type: v.optional(v.literal("save_weights_for_sampler")),
});
export type SaveWeightsForSamplerResponse = v.InferOutput<typeof SaveWeightsForSamplerResponseSchema>;

export const GetInfoResponseSchema = v.looseObject({
  model_id: v.string(),
  model_data: v.looseObject({
    arch: optionalString,
    model_name: optionalString,
    tokenizer_id: optionalString,
  }),
  is_lora: v.optional(v.nullable(v.boolean())),
  lora_rank: v.optional(v.nullable(v.number())),
  model_name: optionalString,
  type: v.optional(v.literal("get_info")),
});
export type GetInfoResponse = v.InferOutput<typeof GetInfoResponseSchema>;

export const SaveWeightsResponseSchema = v.looseObject({
  path: v.string(),
  type: v.optional(v.literal("save_weights")),
});
export type SaveWeightsResponse = v.InferOutput<typeof SaveWeightsResponseSchema>;

export const LoadWeightsResponseSchema = v.looseObject({
  path: optionalString,
  model_id: optionalString,
  type: v.optional(v.literal("load_weights")),
});
export type LoadWeightsResponse = v.InferOutput<typeof LoadWeightsResponseSchema>;

export const UnloadModelResponseSchema = v.looseObject({
  model_id: v.string(),
  type: v.optional(v.literal("unload_model")),
});
export type UnloadModelResponse = v.InferOutput<typeof UnloadModelResponseSchema>;

export const WeightsInfoResponseSchema = v.looseObject({
  base_model: v.string(),
  /** §O4: the checkpoint's optimizer family; adamw when the server omits it. */
  optimizer_config: v.optional(v.nullable(v.looseObject({ type: v.string() }))),
  is_lora: v.boolean(),
  lora_rank: v.optional(v.nullable(v.number())),
  train_unembed: v.optional(v.nullable(v.boolean())),
  train_mlp: v.optional(v.nullable(v.boolean())),
  train_attn: v.optional(v.nullable(v.boolean())),
});
export type WeightsInfoResponse = v.InferOutput<typeof WeightsInfoResponseSchema>;

export const GetSamplerResponseSchema = v.looseObject({
  sampler_id: v.string(),
  base_model: v.string(),
  model_path: optionalString,
});
export type GetSamplerResponse = v.InferOutput<typeof GetSamplerResponseSchema>;

export const CreateSamplingSessionResponseSchema = v.looseObject({
  sampling_session_id: v.string(),
  type: v.optional(v.literal("create_sampling_session")),
});

/** §S3 `copy_weights`: the copy's tinker path. */
export const CopyWeightsResponseSchema = v.looseObject({ tinker_path: v.string() });

/** §W2 `save_weights_external` result. */
export const SaveWeightsExternalResponseSchema = v.looseObject({
  path: v.string(),
  type: v.optional(v.literal("save_weights_external")),
});
export type SaveWeightsExternalResponse = v.InferOutput<typeof SaveWeightsExternalResponseSchema>;

/** §P3 `join_sampling_session`: the server-allocated clone counter (the original client is 0). */
export const JoinSamplingSessionResponseSchema = v.looseObject({
  client_counter: v.pipe(v.number(), v.integer(), v.minValue(1)),
  type: v.optional(v.literal("join_sampling_session")),
});

/** §F1 one completion of a sampling session's future log. */
export const FutureCompletionSchema = v.variant("state", [
  v.looseObject({
    state: v.literal("finished"),
    request_id: v.string(),
    response_payload_uncompressed_size: v.optional(v.nullable(v.number())),
  }),
  v.looseObject({ state: v.literal("failed"), request_id: v.string() }),
]);
export type FutureCompletion = v.InferOutput<typeof FutureCompletionSchema>;

/** §F1 `retrieve_futures`: completions newer than the cursor sent, and the new cursor. */
export const FuturesRetrieveResponseSchema = v.looseObject({
  completions: v.array(FutureCompletionSchema),
  cursor: v.pipe(v.number(), v.integer()),
});
export type FuturesRetrieveResponse = v.InferOutput<typeof FuturesRetrieveResponseSchema>;

/** Parses `value` or throws ResponseValidationError naming `what` and every failing path. */
export function parseResponse<S extends v.GenericSchema>(
  schema: S,
  value: unknown,
  what: string,
): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  throw new ResponseValidationError(
    what,
    value,
    result.issues.map((issue) => ({ path: v.getDotPath(issue) ?? "", message: issue.message })),
  );
}

/** True when `value` matches `schema` (used to recognise control answers such as try_again). */
export function matches(schema: v.GenericSchema, value: unknown): boolean {
  return v.safeParse(schema, value).success;
}
