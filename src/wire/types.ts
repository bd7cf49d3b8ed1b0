/**
 * Wire data types of the Tinker protocol. Field names keep the protocol's snake_case so that
 * Python docs and cookbook code translate line by line (see PROTOCOL.md §3).
 */

export type DType = "int64" | "float32";

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

export interface Datum {
  model_input: ModelInput;
  loss_fn_inputs: Record<string, TensorData>;
}

export type LossFnType = "cross_entropy" | "importance_sampling" | "ppo" | "cispo" | "dro";

/** The logical content of the protobuf `tinker_public.ForwardBackwardRequest` (PROTOCOL.md §2.4.1). */
export interface ForwardBackwardRequest {
  model_id: string;
  seq_id: number;
  data: Datum[];
  loss_fn: string;
  loss_fn_config?: Record<string, number>;
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

export interface SampledSequence {
  stop_reason: StopReason;
  tokens: number[];
  logprobs?: number[];
}

export interface SampleResponse {
  sequences: SampledSequence[];
  /** One per prompt token; null where not computed (the first position). */
  prompt_logprobs?: (number | null)[];
  /** Per prompt position: up to k `[token_id, logprob]` pairs, or null. */
  topk_prompt_logprobs?: ([number, number][] | null)[];
  prompt_cache_hit_tokens?: number;
  type?: "sample";
}

export interface SamplingParams {
  max_tokens?: number;
  seed?: number;
  stop?: string | string[] | number[];
  temperature?: number;
  top_k?: number;
  top_p?: number;
}

export interface AdamParams {
  learning_rate?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weight_decay?: number;
  grad_clip_norm?: number;
}

export interface LoraConfig {
  rank: number;
  seed?: number;
  train_unembed?: boolean;
  train_mlp?: boolean;
  train_attn?: boolean;
}
