/**
 * Schemas of the results the 0.25.0 protocol sends as protobuf (ForwardBackwardOutput,
 * SampleResponse) in their legacy JSON form. The official client rejects JSON here; we accept it,
 * because older and self-hosted Tinker-compatible servers still answer in JSON (DESIGN.md §7).
 */
import * as v from "valibot";
import type { ForwardBackwardOutput, SampleResponse } from "./types.js";

export const TensorDataSchema = v.looseObject({
  data: v.array(v.number()),
  dtype: v.picklist(["int64", "float32"]),
  shape: v.optional(v.nullable(v.array(v.number()))),
  sparse_crow_indices: v.optional(v.nullable(v.array(v.number()))),
  sparse_col_indices: v.optional(v.nullable(v.array(v.number()))),
});

export const ForwardBackwardOutputSchema = v.pipe(
  v.looseObject({
    loss_fn_output_type: v.optional(v.string(), "ArrayRecord"),
    loss_fn_outputs: v.array(v.record(v.string(), TensorDataSchema)),
    metrics: v.optional(v.record(v.string(), v.number()), {}),
  }),
  v.transform((value) => value as ForwardBackwardOutput),
);

/** Top-k rows (`TopkLogprobRows`): per position, `[token_id, logprob]` pairs or null. */
const TopkRowsSchema = v.array(v.nullable(v.array(v.tuple([v.number(), v.number()]))));

/*
 * The fields added in 0.26.2-0.31 (P2) take the JSON shape of their protobuf messages:
 * `topk_sampled_logprobs` rows like `topk_prompt_logprobs`, `target_prompt_logprobs` a TensorData
 * (dense or CSR), `prompt_alt_tokens` `{ tokens: TensorData, logprobs: TensorData }`.
 */
const SampledSequenceSchema = v.looseObject({
  stop_reason: v.picklist(["length", "stop"]),
  tokens: v.array(v.number()),
  logprobs: v.optional(v.nullable(v.array(v.number()))),
  topk_sampled_logprobs: v.optional(v.nullable(TopkRowsSchema)),
});

export const SampleResponseSchema = v.pipe(
  v.looseObject({
    sequences: v.array(SampledSequenceSchema),
    prompt_logprobs: v.optional(v.nullable(v.array(v.nullable(v.number())))),
    topk_prompt_logprobs: v.optional(v.nullable(TopkRowsSchema)),
    prompt_cache_hit_tokens: v.optional(v.number(), 0),
    target_prompt_logprobs: v.optional(v.nullable(TensorDataSchema)),
    prompt_alt_tokens: v.optional(
      v.nullable(v.looseObject({ tokens: TensorDataSchema, logprobs: TensorDataSchema })),
    ),
    type: v.optional(v.literal("sample")),
  }),
  v.transform((value) => value as SampleResponse),
);
