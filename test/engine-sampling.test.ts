import { describe, expect, it } from "vitest";
import {
  BOS_TOKEN,
  createBaseModel,
  createInferenceModel,
  DEFAULT_MODEL_CONFIG,
  decodeTokens,
  EngineError,
  EOS_TOKEN,
  encodeText,
  hashSeed,
  type SampleOptions,
  TrainableModel,
} from "../src/local/engine/index.js";

const base = createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed("engine-sampling-test"));
const model = createInferenceModel(base);
const prompt = [BOS_TOKEN, ...encodeText("Hello, world")];
const greedyOptions: SampleOptions = { temperature: 0, topK: -1, topP: 1, maxTokens: 24, numSamples: 1 };

function greedy(extra: Partial<SampleOptions> = {}) {
  return model.sample(prompt, { ...greedyOptions, ...extra })[0];
}

describe("engine sampling", () => {
  it("temperature 0 picks the argmax at every step and reports its untempered logprob", () => {
    const sample = greedy();
    expect(sample.tokens).toHaveLength(24);
    expect(sample.stopReason).toBe("length");
    const scored = model.promptLogprobs([...prompt, ...sample.tokens], 1);
    sample.tokens.forEach((token, i) => {
      const position = prompt.length + i;
      const top = scored.topk?.[position];
      expect(top?.[0][0]).toBe(token);
      expect(sample.logprobs[i]).toBeCloseTo(scored.logprobs[position]!, 10);
    });
  });

  it("top_k = 1 and a vanishing top_p both equal greedy decoding at any temperature", () => {
    const reference = greedy();
    for (const temperature of [0.5, 1, 3]) {
      expect(greedy({ temperature, topK: 1, seed: 11 })).toEqual(reference);
      expect(greedy({ temperature, topP: 1e-12, seed: 12 })).toEqual(reference);
    }
  });

  it("sampled logprobs are untempered model logprobs", () => {
    const [sample] = model.sample(prompt, {
      temperature: 2.5,
      topK: 20,
      topP: 0.9,
      maxTokens: 12,
      numSamples: 1,
      seed: 3,
    });
    const scored = model.promptLogprobs([...prompt, ...sample.tokens], 0);
    for (let i = 0; i < sample.tokens.length; i++) {
      expect(sample.logprobs[i]).toBeCloseTo(scored.logprobs[prompt.length + i]!, 10);
    }
  });

  it("top_k restricts samples to the k most likely tokens", () => {
    const samples = model.sample(prompt, {
      temperature: 5,
      topK: 3,
      topP: 1,
      maxTokens: 1,
      numSamples: 40,
      seed: 8,
    });
    const allowed = new Set(
      model.promptLogprobs([...prompt, 0], 3).topk?.[prompt.length]?.map(([token]) => token),
    );
    expect(allowed.size).toBe(3);
    for (const sample of samples) expect(allowed.has(sample.tokens[0])).toBe(true);
    // A hot temperature over three tokens should visit more than one of them.
    expect(new Set(samples.map((s) => s.tokens[0])).size).toBeGreaterThan(1);
  });

  it("a stop string stops generation with reason 'stop', the stop text included", () => {
    const reference = greedy();
    // The first ASCII byte of the greedy output, used as a one-character stop string.
    const index = reference.tokens.findIndex((token) => token >= 0x21 && token < 0x7f);
    expect(index).toBeGreaterThanOrEqual(0);
    const stopString = String.fromCharCode(reference.tokens[index]);
    const stopped = greedy({ stopStrings: [stopString] });
    expect(stopped.stopReason).toBe("stop");
    expect(stopped.tokens).toEqual(
      reference.tokens.slice(0, reference.tokens.indexOf(reference.tokens[index]) + 1),
    );
    expect(decodeTokens(stopped.tokens).endsWith(stopString)).toBe(true);
    expect(stopped.logprobs).toEqual(reference.logprobs.slice(0, stopped.tokens.length));
  });

  it("a multi-token stop string matches across token boundaries", () => {
    const reference = greedy();
    const isAscii = (token: number) => token >= 0x20 && token < 0x7f;
    const end = reference.tokens.findIndex(
      (token, i) => i > 0 && isAscii(token) && isAscii(reference.tokens[i - 1]),
    );
    expect(end).toBeGreaterThan(0);
    const stopString = decodeTokens(reference.tokens.slice(end - 1, end + 1));
    const stopped = greedy({ stopStrings: ["never-generated", stopString] });
    expect(stopped.stopReason).toBe("stop");
    expect(stopped.tokens).toEqual(reference.tokens.slice(0, end + 1));
  });

  it("a stop token stops generation with reason 'stop', the token included", () => {
    const reference = greedy();
    const stopToken = reference.tokens[3];
    const stopped = greedy({ stopTokens: [stopToken] });
    expect(stopped.stopReason).toBe("stop");
    expect(stopped.tokens).toEqual(reference.tokens.slice(0, reference.tokens.indexOf(stopToken) + 1));
  });

  it("an EOS token always stops generation", () => {
    // Teach a fresh adapter to answer "x" with EOS, then decode greedily.
    const trainable = new TrainableModel(base, {
      rank: 4,
      seed: 1,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: true,
    });
    const datum = { tokens: [BOS_TOKEN, 120], lossFnInputs: { target_tokens: [120, EOS_TOKEN] } };
    const adam = { learningRate: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, gradClipNorm: 0 };
    for (let step = 0; step < 30; step++) {
      trainable.forwardBackward([datum], "cross_entropy", undefined, false);
      trainable.optimStep(adam);
    }
    const [sample] = trainable.snapshot().sample([BOS_TOKEN, 120], { ...greedyOptions, maxTokens: 10 });
    expect(sample.tokens).toEqual([EOS_TOKEN]);
    expect(sample.stopReason).toBe("stop");
  });

  it("max_tokens and the context limit end generation with reason 'length'", () => {
    expect(greedy({ maxTokens: 5 }).tokens).toHaveLength(5);
    expect(greedy({ maxTokens: 5 }).stopReason).toBe("length");
    expect(greedy({ maxTokens: 0 })).toEqual({ tokens: [], logprobs: [], stopReason: "length" });

    const { maxSeqLen } = model;
    const longPrompt = Array.from({ length: maxSeqLen - 3 }, (_, i) => 97 + (i % 26));
    const nearLimit = model.sample(longPrompt, { ...greedyOptions, maxTokens: undefined });
    expect(nearLimit[0].tokens).toHaveLength(3);
    expect(nearLimit[0].stopReason).toBe("length");
    // Without max_tokens generation runs to the context limit.
    const unbounded = model.sample(longPrompt.slice(0, maxSeqLen - 40), {
      ...greedyOptions,
      maxTokens: undefined,
    });
    expect(unbounded[0].tokens).toHaveLength(40);
    expect(model.sample(longPrompt.concat([1, 2, 3]), greedyOptions)[0]).toEqual({
      tokens: [],
      logprobs: [],
      stopReason: "length",
    });
    expect(() => model.sample(longPrompt.concat([1, 2, 3, 4]), greedyOptions)).toThrow(EngineError);
  });

  it("rejects invalid prompts and options", () => {
    expect(() => model.sample([], greedyOptions)).toThrow(EngineError);
    expect(() => model.sample([300], greedyOptions)).toThrow(EngineError);
    expect(() => model.sample(prompt, { ...greedyOptions, numSamples: 0 })).toThrow(EngineError);
    expect(() => model.sample(prompt, { ...greedyOptions, temperature: -1 })).toThrow(EngineError);
    expect(() => model.sample(prompt, { ...greedyOptions, topP: 0 })).toThrow(EngineError);
    expect(() => model.sample(prompt, { ...greedyOptions, maxTokens: 1.5 })).toThrow(EngineError);
  });

  it("promptLogprobs: first entry null, later entries match forward_backward logprobs", () => {
    const scored = model.promptLogprobs(prompt, 0);
    expect(scored.logprobs[0]).toBeNull();
    expect(scored.logprobs).toHaveLength(prompt.length);
    expect(scored.topk).toBeUndefined();

    const trainable = new TrainableModel(base, {
      rank: 8,
      seed: 0,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: true,
    });
    const forward = trainable.forwardBackward(
      [{ tokens: prompt.slice(0, -1), lossFnInputs: { target_tokens: prompt.slice(1) } }],
      "cross_entropy",
      undefined,
      true,
    );
    for (const [i, lp] of forward.logprobs[0].entries()) {
      expect(scored.logprobs[i + 1]).toBeCloseTo(lp, 5);
      // The trainer returns float32: rounding the sampler's float64 value must give exactly it.
      expect(Math.fround(scored.logprobs[i + 1]!)).toBe(lp);
    }
  });

  it("promptLogprobs with top-k lists the k most likely tokens per position in descending order", () => {
    const scored = model.promptLogprobs(prompt, 5);
    expect(scored.topk?.[0]).toBeNull();
    expect(scored.topk).toHaveLength(prompt.length);
    for (let i = 1; i < prompt.length; i++) {
      const top = scored.topk![i]!;
      expect(top).toHaveLength(5);
      for (let j = 1; j < top.length; j++) expect(top[j][1]).toBeLessThanOrEqual(top[j - 1][1]);
      // The actual token is either listed with the same logprob or less likely than all listed.
      const listed = top.find(([token]) => token === prompt[i]);
      if (listed) expect(listed[1]).toBeCloseTo(scored.logprobs[i]!, 12);
      else expect(scored.logprobs[i]!).toBeLessThanOrEqual(top[4][1]);
    }
  });

  it("a snapshot is immutable: later training does not change it", () => {
    const trainable = new TrainableModel(base, {
      rank: 8,
      seed: 0,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: true,
    });
    const datum = { tokens: prompt.slice(0, -1), lossFnInputs: { target_tokens: prompt.slice(1) } };
    const adam = { learningRate: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, gradClipNorm: 0 };
    trainable.forwardBackward([datum], "cross_entropy", undefined, false);
    trainable.optimStep(adam);
    const snapshot = trainable.snapshot();
    const before = snapshot.promptLogprobs(prompt, 0).logprobs;
    trainable.forwardBackward([datum], "cross_entropy", undefined, false);
    trainable.optimStep(adam);
    expect(snapshot.promptLogprobs(prompt, 0).logprobs).toEqual(before);
    expect(trainable.snapshot().promptLogprobs(prompt, 0).logprobs).not.toEqual(before);
  });
});
