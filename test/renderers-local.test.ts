/**
 * A Qwen3.5 tool-call turn through the real local backend: the tiny byte-level model is trained on a
 * conversation rendered by `qwen3_5_disable_thinking`, samples a reply from the renderer's generation
 * prompt with its stop sequences, and the reply parses back into the tool call it was trained on.
 *
 * The model's vocabulary is the 256 bytes plus two ids (256, 257); a tiktoken-style tokenizer with
 * only byte ranks and `<|im_start|>` = 256, `<|im_end|>` = 257 fits it, and `<think>`, `<tool_call>`
 * are then plain text — the renderer only needs the two turn markers to be single tokens.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelInput, ServiceClient, type TrainingClient } from "../src/index.js";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "../src/local/index.js";
import { datumFromConversation } from "../src/toolkit/datum.js";
import { type ChatMessage, getRenderer, tiktokenTokenizer } from "../src/toolkit/renderers/index.js";

const CONVERSATION: ChatMessage[] = [
  { role: "user", content: "Weather?" },
  { role: "assistant", content: "", toolCalls: [{ name: "w", arguments: { c: "P" } }] },
];

describe("qwen3_5_disable_thinking on the embedded backend", () => {
  const local = createLocalTinker();
  const service = new ServiceClient({
    apiKey: "tml-local",
    baseURL: "http://local.tinker",
    fetch: local.fetch,
  });
  let training: TrainingClient;

  beforeAll(async () => {
    training = await service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 8, seed: 0 });
  });

  afterAll(async () => {
    await service.close();
    local.close();
  });

  it("a sampled tool call, stopped by stopSequences(), parses back into the trained call", async () => {
    const tokenizer = await tiktokenTokenizer({
      ranks: Array.from({ length: 256 }, (_, b) => `${btoa(String.fromCharCode(b))} ${b}`).join("\n"),
      specialTokens: { "<|im_start|>": 256, "<|im_end|>": 257 },
      pattern: /\S+|\s+/u,
      eosToken: "<|im_end|>",
    });
    const renderer = getRenderer("qwen3_5_disable_thinking", tokenizer);
    expect(renderer.stopSequences()).toEqual([257]);
    const example = datumFromConversation(renderer, CONVERSATION);
    for (let step = 0; step < 60; step++) {
      await Promise.all([
        training.forwardBackward([example], "cross_entropy"),
        training.optimStep({ learning_rate: 1e-2 }),
      ]);
    }
    const sampler = await training.saveWeightsAndGetSamplingClient();
    const prompt = renderer.buildGenerationPrompt(CONVERSATION.slice(0, 1));
    expect(tokenizer.decode(prompt)).toBe(
      "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    );
    const result = await sampler.sample(ModelInput.fromInts(prompt), 1, {
      max_tokens: 96,
      temperature: 0,
      stop: renderer.stopSequences(),
    });
    const sequence = result.sequences[0]!;
    expect(sequence.stop_reason).toBe("stop");
    expect(renderer.parseResponse(sequence.tokens)).toEqual({
      message: { role: "assistant", content: "", toolCalls: [{ name: "w", arguments: '{"c":"P"}' }] },
      termination: "stop",
    });
  });
});
