/** Samplers and sampling (PROTOCOL.md §2.6, §6.4, §P1–§P4). */
import { sampling } from "../../wire/endpoints/index.js";
import type { LocalBackend } from "../backend.js";
import { normalizeModelInput } from "./model-input.js";
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
      const requestId = backend.sample({
        sampling_session_id: body.sampling_session_id ?? undefined,
        base_model: body.base_model ?? undefined,
        num_samples: body.num_samples,
        prompt: normalizeModelInput(body.prompt, "prompt"),
        sampling_params: body.sampling_params as Record<string, unknown>,
        prompt_logprobs: body.prompt_logprobs === true,
        topk_prompt_logprobs: body.topk_prompt_logprobs,
      });
      return { request_id: requestId };
    }),
  ];
}
