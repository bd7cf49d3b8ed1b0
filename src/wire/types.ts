/**
 * Wire data types of the Tinker protocol. Field names keep the protocol's snake_case so that
 * Python docs and cookbook code translate line by line (see PROTOCOL.md §3).
 */

export type DType = "int64" | "float32";

/**
 * Token ids as training input accepts them. Typed arrays are copied straight into the protobuf
 * bytes (an Int32Array's bytes on a little-endian host *are* the wire bytes); plain arrays are
 * checked and converted value by value. Decoded messages always carry `number[]`.
 */
export type TokenIds = number[] | Int32Array | Uint32Array;

/**
 * Tensor values as training input accepts them: `number[]` for either dtype, `Float32Array` for
 * "float32", `Int32Array` (widened on the wire) or `BigInt64Array` for "int64".
 */
export type TensorValues = number[] | Float32Array | Int32Array | BigInt64Array;

/** A dense (or CSR-sparse) tensor as it travels on the wire. `data` is flattened row-major. */
export interface TensorData {
  data: number[];
  dtype: DType;
  /** Absent means 1-D. */
  shape?: number[];
  /** CSR row pointers (rows + 1 entries). When set, `data` holds only the non-zero values. */
  sparse_crow_indices?: number[];
  /** CSR column indices (one per non-zero value). */
  sparse_col_indices?: number[];
}

export interface EncodedTextChunk {
  type: "encoded_text";
  tokens: number[];
}

/** A text chunk of training input, whose tokens may be a typed array (see `TokenIds`). */
export interface EncodedTextInputChunk {
  type: "encoded_text";
  tokens: TokenIds;
}

export type ImageFormat = "png" | "jpeg";

export interface ImageChunk {
  type: "image";
  /** Standard base64 of the raw image bytes (the JSON encoding of the protocol). */
  data: string;
  format: ImageFormat;
  expected_tokens?: number;
}

export interface ImageAssetPointerChunk {
  type: "image_asset_pointer";
  format: ImageFormat;
  location: string;
  expected_tokens?: number;
}

export interface DmelChunk {
  type: "dmel";
  /** Standard base64 of the TensorContainer bytes. */
  dmel: string;
}

export type ModelInputChunk = EncodedTextChunk | ImageChunk | ImageAssetPointerChunk | DmelChunk;

export interface ModelInput {
  chunks: ModelInputChunk[];
}

/**
 * Where a run of a Datum's tokens came from (T3), for servers that trace training data back to
 * sampling. A "prompt" span is positions `[offset, offset + length)` of the prompt of the sample
 * whose sequence is `sequence_id`; a "sampled" span is positions of that sequence's generated
 * tokens (offset 0 = the first generated token). `sequence_id` is a `SampledSequence.sequence_id`.
 *
 * The protobuf form is the oneof `ProvenanceSpan { prompt_tokens = 1 | sampled_tokens = 2 }`. The
 * JSON form (not seen upstream) is this object as it stands: the oneof arm becomes a `type`
 * discriminator, as the Chunk oneof becomes the chunks' `type`, and the arm's three fields sit
 * beside it with their proto names.
 */
export interface PromptProvenanceSpan {
  type: "prompt";
  sequence_id: string;
  offset: number;
  length: number;
}

export interface SampledProvenanceSpan {
  type: "sampled";
  sequence_id: string;
  offset: number;
  length: number;
}

export type ProvenanceSpan = PromptProvenanceSpan | SampledProvenanceSpan;

/**
 * Provenance of a Datum's two token fields: runs that tile `model_input` (in tokens) and
 * `loss_fn_inputs.target_tokens` (in targets) exactly, in order. Absent when not annotated.
 */
export interface ProvenanceSpans {
  model_input_spans?: ProvenanceSpan[];
  loss_fn_input_spans?: ProvenanceSpan[];
}

export interface Datum extends ProvenanceSpans {
  model_input: ModelInput;
  loss_fn_inputs: Record<string, TensorData>;
}

/**
 * The input side of the wire types, for forward / forward_backward data, which travels as protobuf
 * and so can take typed arrays. They are separate from `TensorData` / `Datum` so that decoded
 * results keep plain `number[]` (no `number | bigint` for readers to narrow); every `Datum` is a
 * `DatumInput`.
 */
export interface TensorInput extends Omit<TensorData, "data"> {
  data: TensorValues;
}

export type TrainingInputChunk = EncodedTextInputChunk | ImageChunk | ImageAssetPointerChunk | DmelChunk;

export interface TrainingModelInput {
  chunks: TrainingInputChunk[];
}

export interface DatumInput extends ProvenanceSpans {
  model_input: TrainingModelInput;
  loss_fn_inputs: Record<string, TensorInput>;
}

export type LossFnType = "cross_entropy" | "importance_sampling" | "ppo" | "cispo" | "dro";

/**
 * `loss_fn_config` values: numbers, and since 0.26.2 strings too (T1). On the protobuf wire every
 * entry goes to `loss_fn_config_v2` and the numeric ones also to the legacy `loss_fn_config`.
 */
export type LossFnConfig = Record<string, number | string>;

/** The logical content of the protobuf `tinker_public.ForwardBackwardRequest` (PROTOCOL.md §2.4.1). */
export interface ForwardBackwardRequest<D extends DatumInput = Datum> {
  model_id: string;
  seq_id: number;
  data: D[];
  loss_fn: string;
  loss_fn_config?: LossFnConfig;
  forward_only?: boolean;
}

export interface ForwardBackwardOutput {
  loss_fn_output_type: string;
  /** One record per datum, in input order; typically `{ logprobs: float32[N] }`. */
  loss_fn_outputs: Record<string, TensorData>[];
  /** Keys are `name:reduction`, e.g. `loss:sum`. */
  metrics: Record<string, number>;
}

export type StopReason = "length" | "stop";

/**
 * Top-k logprobs, one row per position: up to k `[token_id, logprob]` pairs, best first, or null
 * where none were computed. Protobuf carries it as the N×K `TopkLogprobs` message.
 */
export type TopkLogprobRows = ([number, number][] | null)[];

export interface SampledSequence {
  stop_reason: StopReason;
  tokens: number[];
  logprobs?: number[];
  /** Top-k logprobs at each generated position, when `topk_sample_logprobs` > 0 was asked (P2). */
  topk_sampled_logprobs?: TopkLogprobRows;
  /**
   * Session-scoped id of this sequence, from the asample answer's `sample_sequence_ids` (P1). It
   * is not part of the SampleResponse message: the SDK stamps it after decoding.
   */
  sequence_id?: string;
}

/**
 * `prompt_alt_tokens` of a SampleResponse (P2): `k` draws from the next-token distribution at each
 * prompt position after the first. `tokens` is int64 `[len(prompt) - 1, k]`, `logprobs` float32 of
 * the same shape.
 */
export interface PromptAltTokens {
  tokens: TensorData;
  logprobs: TensorData;
}

/**
 * A sampling result. The JSON form some servers send instead of protobuf has these same fields:
 * the three added in 0.26.2-0.31 mirror their protobuf messages (`target_prompt_logprobs` a
 * TensorData, `prompt_alt_tokens` two TensorData, `topk_sampled_logprobs` rows like
 * `topk_prompt_logprobs`).
 */
export interface SampleResponse {
  sequences: SampledSequence[];
  /** One per prompt token; null where not computed (the first position). */
  prompt_logprobs?: (number | null)[];
  /** Per prompt position: up to k `[token_id, logprob]` pairs, or null. */
  topk_prompt_logprobs?: TopkLogprobRows;
  prompt_cache_hit_tokens?: number;
  /**
   * Logprobs of the token ids asked for in the request's `target_prompt_logprobs` (P2): float32,
   * the request's shape and layout (the same CSR indices when it was sparse), 0 in skipped cells.
   */
  target_prompt_logprobs?: TensorData;
  prompt_alt_tokens?: PromptAltTokens;
  type?: "sample";
}

/** How `sample` generates (PROTOCOL.md, SamplingParams). Unset fields take the server's defaults. */
export interface SamplingParams {
  /** Most tokens to generate per sequence; the sequence's `stop_reason` is `"length"` when reached. */
  max_tokens?: number;
  /** Random seed (any 64-bit integer) for reproducible samples; random when unset. */
  seed?: number;
  /**
   * Stop when the completion produces one of these: strings, or token ids. The returned tokens end
   * with the stop sequence, and `stop_reason` is `"stop"`.
   */
  stop?: string | string[] | number[];
  /** Softmax temperature; 0 is greedy. Default 1. */
  temperature?: number;
  /** Sample among the `top_k` most likely tokens; -1 (the default) for no limit. */
  top_k?: number;
  /** Nucleus sampling: the smallest set of tokens whose probability reaches `top_p`. Default 1. */
  top_p?: number;
}

/** AdamW settings of one `optimStep`; unset fields take `ADAM_DEFAULTS` (sent every step). */
export interface AdamParams {
  /**
   * Step size. Default 1e-4, a starting point for LoRA on hosted models; the local backend's tiny
   * model wants about 1e-2 (docs/GUIDE-DATUM.md, "Learning rates").
   */
  learning_rate?: number;
  /** First-moment decay. Default 0.9. */
  beta1?: number;
  /** Second-moment decay. Default 0.95. */
  beta2?: number;
  /** Added to the second-moment root for stability. Default 1e-12. */
  eps?: number;
  /** Decoupled weight decay. Default 0. */
  weight_decay?: number;
  /** Global gradient-norm clip; 0 (the default) disables it. */
  grad_clip_norm?: number;
}

/**
 * Dimuon optimizer params (PROTOCOL.md §O3), for runs created with `optimizer: { type: "dimuon" }`.
 * Omitted settings take their defaults on every step; earlier overrides do not carry over.
 */
export interface DimuonParams {
  /** Marks Dimuon params (AdamW params have no `type`). */
  type: "dimuon";
  /** Step size (required: Dimuon's scale differs from AdamW's). */
  learning_rate: number;
  /** Global gradient-norm clip; ≤ 0 disables it. Default 0. */
  grad_clip_norm?: number;
  /** Momentum coefficient in [0, 1). Default 0.9. */
  beta1?: number;
  /** Positive; smooths the row/column preconditioner. Server default when unset. */
  damping?: number;
  /** Learning-rate correction relative to rank 32; 0 disables it. Server default when unset. */
  rank_lr_correction_exponent?: number;
}

/** The LoRA adapter of a training run (PROTOCOL.md §3.2), fixed when the run is created. */
export interface LoraConfig {
  /** Adapter rank. Default 32. */
  rank: number;
  /** Seed of the adapters' initialisation; random when unset. */
  seed?: number;
  /** Train an adapter on the unembedding (output) layer. Default true. */
  train_unembed?: boolean;
  /** Train adapters on the MLP blocks. Default true. */
  train_mlp?: boolean;
  /** Train adapters on the attention blocks. Default true. */
  train_attn?: boolean;
}
