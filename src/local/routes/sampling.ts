/** Samplers and sampling (PROTOCOL.md §2.6, §6.4, §P1–§P4). */
import { sampling } from "../../wire/endpoints/index.js";
import type { TensorData } from "../../wire/types.js";
import type { LocalBackend } from "../backend.js";
import { checkAtMost, checkTensorShape, LOCAL_LIMITS } from "../limits.js";
import { normalizeModelInput, textTokenCount } from "./model-input.js";
import { type Route, route } from "./router.js";

export function samplingRoutes(backend: LocalBackend): Route[] {
  return [
    route(sampling.createSamplingSession, ({ body }) => {
      const id = backend.createSamplingSession(
        body.session_id,
        body.sampling_session_seq_id,
        body.base_model ?? undefined,
        body.model_path ?? undefined,
      );
      return { sampling_session_id: id, type: "create_sampling_session" };
    }),
    route(sampling.getSampler, ({ params }) => backend.getSampler(params.sampler_id!)),
    route(sampling.asample, ({ body }) => {
      const prompt = normalizeModelInput(body.prompt, "prompt");
      checkAtMost("num_samples", body.num_samples, LOCAL_LIMITS.maxNumSamples);
      checkAtMost("prompt", textTokenCount(prompt), LOCAL_LIMITS.maxPromptTokens, " tokens");
      if (body.target_prompt_logprobs) {
        checkTensorShape(body.target_prompt_logprobs.shape, "target_prompt_logprobs");
      }
      const { requestId, sequenceIds } = backend.sample({
        sampling_session_id: body.sampling_session_id ?? undefined,
        base_model: body.base_model ?? undefined,
        seq_id: body.seq_id ?? undefined,
        num_samples: body.num_samples,
        prompt,
        sampling_params: body.sampling_params as Record<string, unknown>,
        prompt_logprobs: body.prompt_logprobs === true,
        topk_prompt_logprobs: body.topk_prompt_logprobs,
        topk_sample_logprobs: body.topk_sample_logprobs,
        target_prompt_logprobs: (body.target_prompt_logprobs ?? undefined) as TensorData | undefined,
        prompt_alt_tokens_k: body.prompt_alt_tokens_k,
        // record_stability_info (§S4) is accepted and has no meaning here.
      });
      return { request_id: requestId, sample_sequence_ids: sequenceIds };
    }),
    route(sampling.joinSamplingSession, ({ body }) => ({
      type: "join_sampling_session",
      client_counter: backend.joinSamplingSession(body.sampling_session_id),
    })),
  ];
}
