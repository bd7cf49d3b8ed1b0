/**
 * role_colon with the byte-level tokenizer against the real local backend: train the tiny model on
 * one conversation built by the renderer, sample a reply from the renderer's generation prompt with
 * its stop sequences, and parse it back into the trained message.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { datum, ModelInput, ServiceClient, type TrainingClient } from "../src/index.js";
import { ByteLevelTokenizer } from "../src/lib/tokenizer/index.js";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "../src/local/index.js";
import {
  type ChatMessage,
  getRenderer,
  recommendedRendererName,
  renderMessages,
} from "../src/toolkit/renderers/index.js";

const CONVERSATION: ChatMessage[] = [
  { role: "system", content: "Answer with one word." },
  { role: "user", content: "Capital of France?" },
  { role: "assistant", content: "Paris." },
];

describe("role_colon on the embedded backend", () => {
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

  it("renders the byte-level text format with EOS ending the assistant turn", async () => {
    const tokenizer = await training.getTokenizer();
    expect(recommendedRendererName(BUILTIN_BASE_MODEL)).toBe("role_colon");
    const renderer = getRenderer("role_colon", tokenizer);
    const { tokens, weights } = renderer.buildSupervisedExample(CONVERSATION);
    expect(tokenizer.decode(tokens)).toBe(
      "<|bos|>System: Answer with one word.\n\nUser: Capital of France?\n\nAssistant: Paris.<|eos|>",
    );
    expect(tokenizer.decode(tokens.filter((_, i) => weights[i] === 1))).toBe("Paris.<|eos|>");
    expect(renderer.stopSequences()).toEqual([tokenizer.eosTokenId]);
    expect(
      await renderMessages(BUILTIN_BASE_MODEL, CONVERSATION.slice(0, 2), { addGenerationPrompt: true }),
    ).toEqual(renderer.buildGenerationPrompt(CONVERSATION.slice(0, 2)));
  });

  it("a reply sampled with stopSequences() parses back into the trained message", async () => {
    const renderer = getRenderer("role_colon", new ByteLevelTokenizer());
    const { tokens, weights } = renderer.buildSupervisedExample(CONVERSATION);
    // Next-token prediction: inputs drop the last token, targets drop the first.
    const example = datum(ModelInput.fromInts(tokens.slice(0, -1)), {
      target_tokens: tokens.slice(1),
      weights: weights.slice(1),
    });
    for (let step = 0; step < 40; step++) {
      await Promise.all([
        training.forwardBackward([example], "cross_entropy"),
        training.optimStep({ learning_rate: 1e-2 }),
      ]);
    }
    const sampler = await training.saveWeightsAndGetSamplingClient();
    const prompt = renderer.buildGenerationPrompt(CONVERSATION.slice(0, 2));
    const result = await sampler.sample(ModelInput.fromInts(prompt), 1, {
      max_tokens: 32,
      temperature: 0,
      stop: renderer.stopSequences(),
    });
    const sequence = result.sequences[0]!;
    expect(sequence.stop_reason).toBe("stop");
    const parsed = renderer.parseResponse(sequence.tokens);
    expect(parsed).toEqual({ message: CONVERSATION[2], termination: "stop" });
  });
});
