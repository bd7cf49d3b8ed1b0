/**
 * The sampling additions over real loopback HTTP against `tinker-ts serve`, with the runtime's own
 * fetch: sequence ids (§P1), the new outputs in protobuf (§P2), batched completions (§F1), a clone
 * built from a handle by a second client with its own key (§P3, §P4), and a cancelled sample (§F2).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, serve } from "../src/cli/serve.js";
import {
  APIUserAbortError,
  ModelInput,
  type ResponseInfo,
  SamplingClient,
  ServiceClient,
  targetPromptLogprobsTensor,
} from "../src/index.js";
import { promptTokens } from "./helpers.js";

let server: RunningServer;
beforeAll(async () => {
  server = await serve({ port: 0, host: "127.0.0.1", longPollMs: 2_000 });
});
afterAll(async () => {
  await server?.close();
});

const MODEL = "tinker-ts/byte-lm-tiny";

function client(apiKey: string) {
  const seen: { path: string; status: number; key: string }[] = [];
  const onResponse = (info: ResponseInfo) =>
    seen.push({ path: new URL(info.url).pathname.split("/api/v1/")[1]!, status: info.status, key: apiKey });
  return { options: { apiKey, baseURL: server.url, onResponse }, seen };
}

describe("sampling over loopback HTTP", () => {
  it("samples with ids and every new output, clones from a handle, and cancels an abandoned sample", async () => {
    const owner = client("tml-http-owner");
    const service = new ServiceClient(owner.options);
    const other = client("tml-http-other");
    let clone: SamplingClient | undefined;
    try {
      const sampler = await service.createSamplingClient({ baseModel: MODEL });
      const tokens = promptTokens("Is it?");
      const prompt = ModelInput.fromInts(tokens);
      const targets = targetPromptLogprobsTensor(tokens.slice(1).map((token) => [token]));
      const result = await sampler.sample(
        prompt,
        2,
        { max_tokens: 3, temperature: 0 },
        {
          includePromptLogprobs: true,
          topkSampleLogprobs: 2,
          targetPromptLogprobs: targets,
          promptAltTokensK: 1,
        },
      );
      const [a, b] = result.sequences;
      expect(a!.sequence_id).toBeTypeOf("string");
      expect(a!.sequence_id).not.toBe(b!.sequence_id);
      expect(a!.topk_sampled_logprobs![0]![0]![0]).toBe(a!.tokens[0]);
      result.target_prompt_logprobs!.data.forEach((logprob, i) => {
        expect(logprob).toBeCloseTo(result.prompt_logprobs![i + 1]!, 5);
      });
      expect(result.prompt_alt_tokens!.tokens.shape).toEqual([tokens.length - 1, 1]);
      const paths = owner.seen.map((s) => s.path);
      expect(paths).toContain("retrieve_futures");
      expect(paths.filter((p) => p === "retrieve_future")).toHaveLength(1);

      clone = await SamplingClient.fromSamplerHandle(sampler.getSamplerHandle(), other.options);
      const cloned = await clone.sample(prompt, 1, { max_tokens: 3, temperature: 0 });
      expect(cloned.sequences[0]!.tokens).toEqual(a!.tokens);
      expect(other.seen.map((s) => s.path)).toEqual(
        expect.arrayContaining(["client/config", "join_sampling_session", "asample", "retrieve_futures"]),
      );
      expect(other.seen.some((s) => s.path === "create_session")).toBe(false);

      const controller = new AbortController();
      const abandoned = sampler.sample(prompt, 1, { max_tokens: 200 }, { signal: controller.signal });
      await abandoned.requestId;
      controller.abort();
      await expect(abandoned).rejects.toBeInstanceOf(APIUserAbortError);
      for (let i = 0; i < 50 && !owner.seen.some((s) => s.path === "cancel_future"); i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(owner.seen.find((s) => s.path === "cancel_future")?.status).toBe(204);
    } finally {
      await clone?.close();
      await service.close();
    }
  });
});
