/**
 * The SDK over real loopback HTTP against `tinker-ts serve` (the same server the official Python
 * client is checked against), using the runtime's own fetch.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, serve } from "../src/cli/serve.js";
import { ModelInput, ServiceClient } from "../src/index.js";
import { promptTokens, QA, qaDatum } from "./helpers.js";

let server: RunningServer;
beforeAll(async () => {
  server = await serve({ port: 0, host: "127.0.0.1", longPollMs: 2_000 });
});
afterAll(async () => {
  await server?.close();
});

describe("over loopback HTTP", () => {
  it("binds to loopback by default address and serves the protocol", async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${server.url}/api/v1/healthz`, { headers: { "X-API-Key": "tml-x" } });
    expect(await health.json()).toEqual({ status: "ok" });
    const anonymous = await fetch(`${server.url}/api/v1/healthz`);
    expect(anonymous.status).toBe(401);
  });

  it("trains, samples and scores through a base-URL prefix", async () => {
    const service = new ServiceClient({
      apiKey: "tml-http-test",
      baseURL: `${server.url}/services/tinker-local`,
    });
    try {
      const capabilities = await service.getServerCapabilities();
      expect(capabilities.supported_models[0]!.model_name).toBe("tinker-ts/byte-lm-tiny");
      const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 8 });
      const batch = QA.map((qa) => qaDatum(qa.question, qa.answer));
      const losses: number[] = [];
      for (let step = 0; step < 5; step++) {
        const [out] = await Promise.all([
          training.forwardBackward(batch, "cross_entropy"),
          training.optimStep({ learning_rate: 1e-2 }),
        ]);
        losses.push(out.metrics["loss:sum"]!);
      }
      expect(losses.at(-1)!).toBeLessThan(losses[0]!);
      const info = await training.getInfo();
      expect(info.model_id).toBe(training.modelId);
      expect(info.lora_rank).toBe(8);

      const { path } = await training.saveWeightsForSampler("http-test");
      expect(path).toBe(`tinker://${training.modelId}/sampler_weights/http-test`);
      const sampler = await service.createSamplingClient({ modelPath: path });
      const prompt = ModelInput.fromInts(promptTokens(QA[0]!.question));
      const result = await sampler.sample(
        prompt,
        2,
        { max_tokens: 8, seed: 7 },
        { includePromptLogprobs: true, topkPromptLogprobs: 3 },
      );
      expect(result.sequences).toHaveLength(2);
      expect(result.prompt_logprobs![0]).toBeNull();
      expect(result.topk_prompt_logprobs![1]).toHaveLength(3);
      const logprobs = await sampler.computeLogprobs(prompt);
      expect(logprobs.slice(1)).toEqual(result.prompt_logprobs!.slice(1));
    } finally {
      await service.close();
    }
  });
});
