/**
 * Samplers and sampling (PROTOCOL.md §2.6, §6.4, §S4, §P1–§P4).
 */
import * as v from "valibot";
import { SampleResponseSchema } from "../json-schemas.js";
// The codec's module, not its index, which would bring the forward_backward codec along (index.ts).
import { decodeSampleResponse } from "../protobuf/sample-response.js";
import {
  CreateSamplingSessionResponseSchema,
  GetSamplerResponseSchema,
  JoinSamplingSessionResponseSchema,
} from "../schemas.js";
import { endpoint } from "./define.js";
import {
  integer,
  nonEmptyString,
  nonNegativeInteger,
  SamplingParamsSchema,
  TinkerPathSchema,
} from "./fields.js";

/**
 * `POST create_sampling_session`: a sampler for a checkpoint or a base model. Transport retries
 * only, as in the official client.
 */
export const createSamplingSession = endpoint({
  name: "create_sampling_session",
  method: "POST",
  path: "create_sampling_session",
  body: v.looseObject({
    session_id: nonEmptyString,
    sampling_session_seq_id: integer,
    base_model: v.optional(v.nullable(nonEmptyString)),
    model_path: v.optional(v.nullable(TinkerPathSchema)),
    type: v.optional(v.literal("create_sampling_session"), "create_sampling_session"),
  }),
  result: { schema: CreateSamplingSessionResponseSchema },
  retry: "transport",
});

/** The defaults a server assumes for the sampling fields added after 0.25 when a client omits them. */
export const SAMPLE_EXTRA_DEFAULTS = {
  topk_sample_logprobs: 0,
  target_prompt_logprobs: null,
  prompt_alt_tokens_k: 0,
  record_stability_info: false,
} as const;

/**
 * `POST asample` (future, `Sample`). The answer carries `sample_sequence_ids`, one per sample, since
 * 0.26.2 (§P1). The fields added after 0.25 (§P2, §S4) are sent only when they ask for something,
 * so a plain sample reads exactly as 0.25's did to any server; absent, they take
 * `SAMPLE_EXTRA_DEFAULTS`. `seq_id` is per sampling client, in blocks of 1e9 per clone (§P3).
 */
export const asample = endpoint({
  name: "asample",
  method: "POST",
  path: "asample",
  body: v.looseObject({
    num_samples: v.optional(v.pipe(integer, v.minValue(1, "must be ≥ 1")), 1),
    prompt: v.looseObject({ chunks: v.array(v.unknown()) }),
    sampling_params: v.optional(SamplingParamsSchema, {}),
    sampling_session_id: v.optional(v.nullable(nonEmptyString)),
    base_model: v.optional(v.nullable(nonEmptyString)),
    model_path: v.optional(v.nullable(v.string())),
    seq_id: v.optional(v.nullable(integer)),
    prompt_logprobs: v.optional(v.nullable(v.boolean()), false),
    topk_prompt_logprobs: v.optional(nonNegativeInteger, 0),
    topk_sample_logprobs: v.optional(nonNegativeInteger),
    target_prompt_logprobs: v.optional(v.nullable(v.looseObject({}))),
    prompt_alt_tokens_k: v.optional(nonNegativeInteger),
    record_stability_info: v.optional(v.nullable(v.boolean())),
    type: v.optional(v.literal("sample"), "sample"),
  }),
  result: { schema: SampleResponseSchema, protobuf: decodeSampleResponse },
  future: "Sample",
  retry: "generic",
  transportRetries: 0,
  // The server may answer 429 to throttle; the dispatcher then waits (§6.4).
  headers: { "X-Tinker-Sampling-Backpressure": "1" },
});

/** `GET samplers/{sampler_id}`: a sampler's base model and checkpoint path. */
export const getSampler = endpoint({
  name: "get_sampler",
  method: "GET",
  path: "samplers/{sampler_id}",
  result: { schema: GetSamplerResponseSchema },
  retry: "generic",
});

/**
 * `POST join_sampling_session` (0.32, §P3): a cloned sampling client asks once for its clone counter
 * (its seq_ids are then `counter × 1e9 + n`). Used only when `sample_join_sampling_session` is set.
 */
export const joinSamplingSession = endpoint({
  name: "join_sampling_session",
  method: "POST",
  path: "join_sampling_session",
  body: v.looseObject({
    sampling_session_id: nonEmptyString,
    type: v.optional(v.literal("join_sampling_session"), "join_sampling_session"),
  }),
  result: { schema: JoinSamplingSessionResponseSchema },
  retry: "generic",
  flag: "sample_join_sampling_session",
  since: "0.32.0",
});

/** Seq_ids per sampling-client clone (§P3): the server reads the clone as `seq_id / 1e9`. */
export const CLONE_SEQ_ID_BLOCK = 1_000_000_000;

/** The clone (0 = the original client) whose block holds `seqId` (§P3). */
export function cloneOfSeqId(seqId: number): number {
  return Math.floor(seqId / CLONE_SEQ_ID_BLOCK);
}

/**
 * The largest clone id whose whole seq_id block is exact as a JSON number written from
 * JavaScript (≤ 2^53 − 1). Upstream draws a random clone id in [1, 1e9], whose seq_ids reach 1e18:
 * a double cannot hold them exactly, so consecutive seq_ids of one clone would collide. A client
 * drawing its own clone id (servers without `join_sampling_session`) stays at or below this.
 */
export const MAX_EXACT_CLONE_ID = Math.floor(
  (Number.MAX_SAFE_INTEGER - (CLONE_SEQ_ID_BLOCK - 1)) / CLONE_SEQ_ID_BLOCK,
);
