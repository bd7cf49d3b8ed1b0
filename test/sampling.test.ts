/**
 * Sampling against the real local backend: the retry handler (§5.4), submission throttling and
 * back-off (§10.1), stuck detection, billing pauses, sample_no_retries and the batched logprobs.
 */
import { describe, expect, it } from "vitest";
import { SamplingRetryHandler } from "../src/clients/sampling-retry.js";
import { APIConnectionError, FutureRetrieveError, ModelInput } from "../src/index.js";
import type { ChaosRule } from "../src/local/index.js";
import { closeAfterEach, jsonBody, localService, promptTokens, qaDatum } from "./helpers.js";

const closers = closeAfterEach();

function setup(chaos: ChaosRule[] = [], clientConfig: Record<string, unknown> = {}) {
  const t = localService({ local: { chaos, clientConfig } });
  closers.add(t.close);
  return t;
}

const MODEL = "tinker-ts/byte-lm-tiny";
const prompt = ModelInput.fromInts(promptTokens("Hello?"));

function sampleSeqIds(t: ReturnType<typeof setup>): number[] {
  return t.requests
    .filter((r) => r.path.endsWith("/asample"))
    .map((r) => (jsonBody(r) as { seq_id: number }).seq_id);
}

describe("sampling retry handler", () => {
  it("computes delays of 0.5 s · 2^i up to 10 s with ±25 % jitter", () => {
    const handler = new SamplingRetryHandler();
    expect([0, 1, 2, 5, 10].map((i) => handler.retryDelayMs(i, () => 0.5))).toEqual([
      500, 1000, 2000, 10000, 10000,
    ]);
    expect(handler.retryDelayMs(0, () => 0)).toBe(375);
    expect(handler.retryDelayMs(0, () => 1)).toBe(625);
    expect(handler.retryDelayMs(6, () => 1)).toBe(10000);
  });

  it("re-runs a sample whose promise expired (410) with a new seq_id", async () => {
    const t = setup([{ endpoint: "retrieve_future", status: 410, times: 2 }]);
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const result = await sampler.sample(prompt, 1, { max_tokens: 2, seed: 5 });
    expect(result.sequences[0]!.tokens).toHaveLength(2);
    expect(sampleSeqIds(t)).toEqual([0, 1, 2]);
  });

  it("does not retry sample() when the server says sample_no_retries, but still retries computeLogprobs", async () => {
    const t = setup([{ endpoint: "retrieve_future", status: 410, times: 2 }], { sample_no_retries: true });
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    await expect(sampler.sample(prompt, 1, { max_tokens: 2 })).rejects.toBeInstanceOf(FutureRetrieveError);
    const logprobs = await sampler.computeLogprobs(prompt);
    expect(logprobs[0]).toBeNull();
    expect(sampleSeqIds(t)).toEqual([0, 1, 2]);
  });

  it("fails in-flight calls with 'stuck' when nothing completes within the progress timeout", async () => {
    const t = setup([{ endpoint: "retrieve_future", delayMs: 600, times: 5 }]);
    const sampler = await t.service.createSamplingClient({
      baseModel: MODEL,
      retryConfig: { progressTimeoutMs: 200 },
    });
    const error = await sampler.sample(prompt, 1, { max_tokens: 2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionError);
    expect(String(error)).toMatch(/No progress made in 0s\. Requests appear to be stuck/);
  });

  it("caps concurrent calls per sampler", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({
      baseModel: MODEL,
      retryConfig: { maxConnections: 1 },
    });
    await Promise.all([0, 1, 2].map((seed) => sampler.sample(prompt, 1, { max_tokens: 2, seed })));
    // With one slot, each sample is submitted only after the previous one's result arrived.
    const order = t.requests
      .filter((r) => /asample|retrieve_future/.test(r.path))
      .map((r) => (r.path.endsWith("asample") ? "S" : "P"))
      .join("");
    expect(order).toMatch(/^SP+SP+SP+$/);
  });

  it("backs off client-wide after a 429 and resubmits the same seq_id", async () => {
    const t = setup([{ endpoint: "asample", status: 429 }]);
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const started = Date.now();
    await sampler.sample(prompt, 1, { max_tokens: 2 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(sampleSeqIds(t)).toEqual([0, 0]);
  });

  it("pauses on 402 (billing) and goes on when it clears", async () => {
    const t = setup([{ endpoint: "asample", status: 402, body: { detail: "billing" } }]);
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const result = await sampler.sample(prompt, 1, { max_tokens: 2 });
    expect(result.sequences).toHaveLength(1);
    expect(sampleSeqIds(t)).toEqual([0, 0]);
  }, 15_000);

  it("fails a 402 at once when the server allows no billing pause", async () => {
    const t = setup([{ endpoint: "asample", status: 402 }], { billing_exception_max_pause_duration_sec: 0 });
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    await expect(sampler.sample(prompt, 1, { max_tokens: 2 })).rejects.toMatchObject({ status: 402 });
  });
});

describe("logprobs", () => {
  it("computeLogprobs equals forward logprobs with cross_entropy on the same tokens", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(MODEL, { rank: 4, seed: 2 });
    const example = qaDatum("What is 2 + 2?", "Four");
    await training.forwardBackward([example], "cross_entropy");
    await training.optimStep({ learning_rate: 1e-2 });
    const tokens = ModelInput.toInts(example.model_input);
    const targets = example.loss_fn_inputs.target_tokens!.data;
    const full = [...tokens, targets.at(-1)!];
    const forward = await training.forward([example], "cross_entropy");
    const sampler = await training.saveWeightsAndGetSamplingClient();
    const logprobs = await sampler.computeLogprobs(ModelInput.fromInts(full));
    expect(logprobs[0]).toBeNull();
    const fromForward = forward.loss_fn_outputs[0]!.logprobs!.data;
    expect(logprobs.slice(1)).toHaveLength(fromForward.length);
    logprobs.slice(1).forEach((lp, i) => {
      expect(lp).toBeCloseTo(fromForward[i]!, 5);
    });
  });

  it("computes logprobs for many prompts in input order", async () => {
    const t = setup();
    const sampler = await t.service.createSamplingClient({ baseModel: MODEL });
    const prompts = ["a", "bb", "ccc"].map((q) => ModelInput.fromInts(promptTokens(q)));
    const batch = await sampler.computeLogprobsBatch(prompts);
    expect(batch.map((lps) => lps.length)).toEqual(prompts.map((p) => ModelInput.toInts(p).length));
    expect(batch[2]).toEqual(await sampler.computeLogprobs(prompts[2]!));
  });
});
