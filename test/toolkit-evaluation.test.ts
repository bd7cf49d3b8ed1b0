/**
 * Evaluation: the pure reductions by hand, then forward / computeLogprobs on the real local backend,
 * and the sampler-vs-trainer check — the two agree for the same weights and disagree for different.
 */
import { describe, expect, it } from "vitest";
import { ModelInput, ValidationError } from "../src/index.js";
import { ByteLevelTokenizer } from "../src/lib/tokenizer/index.js";
import { BUILTIN_BASE_MODEL } from "../src/local/index.js";
import {
  bitsPerByte,
  compareLogprobs,
  datumFromPromptCompletion,
  datumFromTokensAndWeights,
  evaluateForward,
  evaluateLogprobs,
  meanNll,
  nllSums,
  perplexity,
  targetByteCount,
  trainLoop,
} from "../src/toolkit/index.js";
import { closeAfterEach, localService } from "./helpers.js";

const tokenizer = new ByteLevelTokenizer();

describe("pure reductions", () => {
  it("meanNll is the weighted mean of −logprob; perplexity its exp", () => {
    expect(meanNll([-1, -2, -4], [1, 1, 0])).toBe(1.5);
    expect(meanNll([-1, -3], [3, 1])).toBe(1.5);
    expect(meanNll(new Float32Array([-0.5, -1.5]), new Float32Array([1, 1]))).toBe(1);
    expect(perplexity(0)).toBe(1);
    expect(perplexity(Math.log(7))).toBeCloseTo(7, 12);
    expect(nllSums([-1, -2, -3], [0, 1, 2])).toEqual({ nllSum: 8, weightSum: 3, tokens: 2 });
  });

  it("rejects mismatched lengths, bad weights, positive logprobs and all-zero weights", () => {
    expect(() => meanNll([-1, -2], [1])).toThrow(ValidationError);
    expect(() => meanNll([-1, -2], [1, -1])).toThrow(/weights\[1\]/);
    expect(() => meanNll([-1, 0.5], [1, 1])).toThrow(/logprobs\[1\]/);
    expect(() => meanNll([-1, -2], [0, 0])).toThrow(/all zero/);
    // A masked position's logprob is not looked at.
    expect(meanNll([-1, Number.NaN], [1, 0])).toBe(1);
  });

  it("bitsPerByte divides the weighted NLL in bits by the byte count", () => {
    expect(bitsPerByte([-Math.LN2, -Math.LN2], [1, 1], 4)).toBeCloseTo(0.5, 12);
    expect(bitsPerByte([-Math.LN2, -5], [1, 0], 1)).toBeCloseTo(1, 12);
    expect(() => bitsPerByte([-1], [1], 0)).toThrow(/byteCount/);
  });

  it("targetByteCount counts UTF-8 bytes of the weighted targets' text, special tokens excluded", () => {
    const text = tokenizer.encode("é!", { addSpecialTokens: false }); // é is two bytes, two tokens
    const targets = [...text, tokenizer.eosTokenId!, 65];
    expect(targetByteCount(tokenizer, targets, [1, 1, 1, 1, 0])).toBe(3);
    expect(targetByteCount(tokenizer, targets, [0, 0, 1, 1, 1])).toBe(2);
  });

  it("compareLogprobs: differences and the k1 / k3 KL estimates, nulls skipped", () => {
    const same = compareLogprobs([null, -1, -2], [null, -1, -2]);
    expect(same).toEqual({ count: 2, meanDiff: 0, meanAbsDiff: 0, maxAbsDiff: 0, klK1: 0, klK3: 0 });
    const q = [-1, -2];
    const p = [-1.5, -1.5];
    const c = compareLogprobs(q, p);
    expect(c.count).toBe(2);
    expect(c.meanDiff).toBeCloseTo(0, 12);
    expect(c.meanAbsDiff).toBeCloseTo(0.5, 12);
    expect(c.maxAbsDiff).toBeCloseTo(0.5, 12);
    expect(c.klK1).toBeCloseTo(0, 12);
    // k3 = mean(r − 1 − log r), r = exp(p − q) ∈ {e^−0.5, e^0.5}
    const k3 = (Math.exp(-0.5) - 1 + 0.5 + Math.exp(0.5) - 1 - 0.5) / 2;
    expect(c.klK3).toBeCloseTo(k3, 12);
    expect(c.klK3).toBeGreaterThan(0);
    expect(() => compareLogprobs([-1], [-1, -2])).toThrow(/align/);
    expect(() => compareLogprobs([null], [-1])).toThrow(/no position/);
  });
});

const closers = closeAfterEach();

const PAIRS: [string, string][] = [
  ["Q: colour of grass?\nA:", " green\n"],
  ["Q: capital of Italy?\nA:", " Rome\n"],
  ["Q: two plus three?\nA:", " five\n"],
];

async function trainedRun() {
  const t = localService();
  closers.add(t.close);
  const training = await t.service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 8, seed: 3 });
  const data = PAIRS.map(([p, c]) => datumFromPromptCompletion(tokenizer, p, c));
  await trainLoop(
    training,
    Array.from({ length: 6 }, () => data),
    { adam: { learning_rate: 1e-2 } },
  );
  return { ...t, training, data };
}

describe("on the local backend", () => {
  it("evaluateForward reduces forward's logprobs with each datum's weights", async () => {
    const { training, data } = await trainedRun();
    const evaluation = await evaluateForward(training, data, { tokenizer });
    const forward = await training.forward(data, "cross_entropy");
    const weightSum = data.reduce(
      (n, d) => n + (d.loss_fn_inputs.weights!.data as number[]).reduce((a, b) => a + b),
      0,
    );
    expect(evaluation.tokens).toBe(weightSum);
    expect(evaluation.weight).toBe(weightSum);
    // The server's own loss sum, divided by the weights, is the same NLL.
    expect(evaluation.nll).toBeCloseTo(forward.metrics["loss:sum"]! / weightSum, 4);
    expect(evaluation.perplexity).toBeCloseTo(Math.exp(evaluation.nll), 10);
    // Bytes: each completion's text plus nothing for the EOS.
    const bytes = PAIRS.reduce((n, [, c]) => n + new TextEncoder().encode(c).length, 0);
    expect(evaluation.bytes).toBe(bytes);
    expect(evaluation.bitsPerByte).toBeCloseTo((evaluation.nll * weightSum) / Math.LN2 / bytes, 10);
    // forward changes nothing: a second evaluation is identical.
    expect((await evaluateForward(training, data)).nll).toBe(evaluation.nll);
  });

  it("evaluateLogprobs on a sampler with the same weights gives the same NLL as forward", async () => {
    const { training, data } = await trainedRun();
    const sampler = await training.saveWeightsAndGetSamplingClient();
    const sequences = PAIRS.map(([p, c]) => {
      const prompt = tokenizer.encode(p);
      const completion = [...tokenizer.encode(c, { addSpecialTokens: false }), tokenizer.eosTokenId!];
      return {
        tokens: [...prompt, ...completion],
        weights: [...prompt.map(() => 0), ...completion.map(() => 1)],
      };
    });
    const fromSampler = await evaluateLogprobs(sampler, sequences, { tokenizer });
    const fromTrainer = await evaluateForward(training, data, { tokenizer });
    expect(fromSampler.tokens).toBe(fromTrainer.tokens);
    expect(fromSampler.bytes).toBe(fromTrainer.bytes);
    expect(fromSampler.nll).toBeCloseTo(fromTrainer.nll, 4);
    expect(fromSampler.logprobs[0]![0]).toBeNull();
    // Plain token lists score every token after the first.
    const plain = await evaluateLogprobs(sampler, [sequences[0]!.tokens]);
    expect(plain.tokens).toBe(sequences[0]!.tokens.length - 1);
    await expect(evaluateLogprobs(sampler, [[1]])).rejects.toThrow(/at least 2 tokens/);
  });

  it("sampler and trainer logprobs agree for the same weights (temperature 1), not for different ones", async () => {
    const { service, training } = await trainedRun();
    const sampler = await training.saveWeightsAndGetSamplingClient();
    const prompt = tokenizer.encode(PAIRS[0]![0]);
    const sampled = await sampler.sample(ModelInput.fromInts(prompt), 4, {
      max_tokens: 12,
      temperature: 1,
      seed: 11,
    });
    let compared = 0;
    for (const sequence of sampled.sequences) {
      const tokens = [...prompt, ...sequence.tokens];
      const k = sequence.tokens.length;
      // Trainer: forward on the same tokens; its last k logprobs are the sampled tokens'.
      const datum = datumFromTokensAndWeights(tokens, [
        ...prompt.map(() => 0),
        ...sequence.tokens.map(() => 1),
      ]);
      const trainer = Array.from((await evaluateForward(training, [datum])).logprobs[0]!).slice(-k);
      const trainerCheck = compareLogprobs(sequence.logprobs!, trainer);
      expect(trainerCheck.count).toBe(k);
      expect(trainerCheck.maxAbsDiff).toBeLessThan(1e-4);
      expect(Math.abs(trainerCheck.klK1)).toBeLessThan(1e-4);
      expect(trainerCheck.klK3).toBeLessThan(1e-8);
      // Sampler recomputation: computeLogprobs on the same tokens.
      const recomputed = (await sampler.computeLogprobs(ModelInput.fromInts(tokens))).slice(prompt.length);
      expect(compareLogprobs(sequence.logprobs!, recomputed).maxAbsDiff).toBeLessThan(1e-4);
      compared += k;
    }
    expect(compared).toBeGreaterThan(0);

    // The base model's sampler (other weights) does not agree with the trained trainer.
    const base = await service.createSamplingClient({ baseModel: BUILTIN_BASE_MODEL });
    const sequence = sampled.sequences[0]!;
    const tokens = [...prompt, ...sequence.tokens];
    const baseLogprobs = (await base.computeLogprobs(ModelInput.fromInts(tokens))).slice(prompt.length);
    const mismatch = compareLogprobs(baseLogprobs, sequence.logprobs!);
    expect(mismatch.maxAbsDiff).toBeGreaterThan(0.1);
    expect(mismatch.klK3).toBeGreaterThan(1e-3);
  });
});
