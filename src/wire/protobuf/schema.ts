/**
 * Field numbers and enum values of the `tinker_public` proto3 package (PROTOCOL.md §8.1, with the
 * additive 0.26.2-0.31 fields of UPSTREAM.md §11). They are the wire contract with the official
 * client and server, so they live in one place and every encoder, decoder and the proto-JSON test
 * helper reads them from here.
 */

export const PROTOBUF_CONTENT_TYPE = "application/x-protobuf";

/** The wire types of the protobuf encoding (the low 3 bits of every field tag). */
export const WireType = {
  Varint: 0,
  Fixed64: 1,
  LengthDelimited: 2,
  StartGroup: 3,
  EndGroup: 4,
  Fixed32: 5,
} as const;
export type WireType = (typeof WireType)[keyof typeof WireType];

/** `enum DType`. The client writes FLOAT32 / INT64; servers may answer with INT32 / BFLOAT16 too. */
export const DTypeCode = {
  UNSPECIFIED: 0,
  FLOAT32: 1,
  INT64: 2,
  INT32: 3,
  BFLOAT16: 4,
} as const;

/** `enum StopReason`. */
export const StopReasonCode = {
  STOP: 0,
  LENGTH: 1,
} as const;

/** A `map<K, V>` field is sent as `repeated Entry { K key = 1; V value = 2; }`. */
export const MapEntryField = { key: 1, value: 2 } as const;

// ---- request side ----

export const ForwardBackwardRequestField = {
  model_id: 1,
  seq_id: 2,
  data: 3,
  loss_fn: 4,
  loss_fn_config: 5,
  forward_only: 6,
  /** Since 0.26.2: `map<string, LossConfigValue>`; field 5 keeps the numeric entries for old servers. */
  loss_fn_config_v2: 7,
} as const;

/** `LossConfigValue`: `number` and `text` form the oneof `value`. */
export const LossConfigValueField = { number: 1, text: 2 } as const;

export const DatumField = {
  model_input: 1,
  loss_fn_inputs: 2,
  /** Since 0.26.2: repeated ProvenanceSpan. */
  model_input_spans: 3,
  loss_fn_input_spans: 4,
} as const;

/** `ProvenanceSpan`: the oneof `span`. */
export const ProvenanceSpanField = { prompt_tokens: 1, sampled_tokens: 2 } as const;

/** `PromptProvenanceSpan` and `SampledProvenanceSpan`, which share one layout. */
export const ProvenanceSpanRangeField = { sequence_id: 1, offset: 2, length: 3 } as const;

/** `Chunk` is a oneof `chunk` over these three members. */
export const ChunkField = { encoded_text: 1, image: 2, dmel: 3 } as const;

export const EncodedTextChunkField = { tokens: 1 } as const;

export const ImageChunkField = { data: 1, format: 2, expected_tokens: 3 } as const;

export const DmelChunkField = { dmel: 1 } as const;

/** `Tensor`: `dense` and `sparse_csr` form the oneof `encoding`. */
export const TensorField = { dense: 1, sparse_csr: 2, dtype: 3, shape: 4 } as const;

export const SparseCsrField = { values: 1, crow_indices: 2, col_indices: 3 } as const;

// ---- response side ----

export const SampleResponseField = {
  sequences: 1,
  prompt_logprobs: 2,
  topk_prompt_logprobs: 3,
  prompt_cache_hit_tokens: 4,
  /** Tensor (float32), same shape and layout as the request's target_prompt_logprobs. */
  target_prompt_logprobs: 5,
  /** PromptAltTokens. */
  prompt_alt_tokens: 6,
} as const;

export const SampledSequenceField = {
  stop_reason: 1,
  tokens: 2,
  logprobs: 3,
  /** TopkLogprobs over the generated positions. */
  topk_sampled_logprobs: 4,
} as const;

/**
 * `TopkLogprobs`, called `TopkPromptLogprobs` with field 4 `prompt_length` up to 0.26.2: a rename
 * only, the numbers and types are unchanged. `length` is the number of rows (positions).
 */
export const TopkLogprobsField = { token_ids: 1, logprobs: 2, k: 3, length: 4 } as const;

export const PromptAltTokensField = { tokens: 1, logprobs: 2 } as const;

export const ForwardBackwardOutputField = {
  loss_fn_output_type: 1,
  loss_fn_outputs: 2,
  metrics: 3,
} as const;

export const ArrayRecordField = { type_tag: 1, fields: 2, num_datums: 3 } as const;

export const BatchedTensorField = { data: 1, offsets: 2, dtype: 3, trailing_shape: 4 } as const;
