/**
 * The sampling outputs of UPSTREAM.md §4 P2 from the engine: top-k logprobs of generated tokens,
 * logprobs of caller-chosen prompt tokens, and alternative tokens drawn at every prompt position
 * — checked against promptLogprobs, a training forward pass, and the sampler's own draw.
 */
import { describe, expect, it } from "vitest";
import { extendSequence, KvCache } from "../src/local/engine/incremental.js";
import {
  BOS_TOKEN,
  createBaseModel,
  createInferenceModel,
  DEFAULT_MODEL_CONFIG,
  EngineError,
  encodeText,
  hashSeed,
  MAX_PROMPT_ALT_TOKENS_K,
  type SampleOptions,
  TrainableModel,
  VOCAB_SIZE,
} from "../src/local/engine/index.js";
import { PROMPT_ALT_TOKENS_STREAM } from "../src/local/engine/prompt-outputs.js";
import { deriveSeed, Rng } from "../src/local/engine/rng.js";
import { chooseToken } from "../src/local/engine/sampler.js";

const base = createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed("engine-prompt-outputs-test"));
const model = createInferenceModel(base);
const prompt = [BOS_TOKEN, ...encodeText("The cat sat")];
const options: SampleOptions = { temperature: 1, topK: -1, topP: 1, maxTokens: 6, numSamples: 2, seed: 5 };

/**
 * Every untempered logprob at every position, straight from the model's logits:
 * full[i] maps each token to log p(token at i | tokens[0..i)), most likely first (ties: lower id).
 */
function fullLogprobs(tokens: readonly number[]): Map<number, number>[] {
  const logits = extendSequence(base.weights, new KvCache(base.config, tokens.length), tokens, true);
  const full: Map<number, number>[] = [new Map()];
  for (let i = 0; i + 1 < tokens.length; i++) {
    const row = Array.from(logits.subarray(i * VOCAB_SIZE, (i + 1) * VOCAB_SIZE));
    const max = Math.max(...row);
    const logNormaliser = max + Math.log(row.reduce((sum, logit) => sum + Math.exp(logit - max), 0));
    const ids = row.map((_, id) => id).sort((x, y) => row[y] - row[x] || x - y);
    full.push(new Map(ids.map((id) => [id, row[id] - logNormaliser])));
  }
  return full;
}

describe("topk_sample_logprobs", () => {
  it("lists the k most likely [token, logprob] pairs at every generated position", () => {
    const k = 4;
    const { sequences } = model.sampleAndScore(prompt, { ...options, topkSampleLogprobs: k });
    for (const sequence of sequences) {
      expect(sequence.topk).toHaveLength(sequence.tokens.length);
      const full = fullLogprobs([...prompt, ...sequence.tokens]);
      sequence.topk!.forEach((entries, i) => {
        const position = prompt.length + i;
        const expected = [...full[position].entries()].slice(0, k);
        expect(entries).toHaveLength(k);
        entries.forEach(([token, logprob], j) => {
          expect(token).toBe(expected[j][0]);
          expect(logprob).toBeCloseTo(expected[j][1], 12);
        });
        // The drawn token is listed with its reported logprob, or is less likely than all listed.
        const listed = entries.find(([token]) => token === sequence.tokens[i]);
        if (listed) expect(listed[1]).toBe(sequence.logprobs[i]);
        else expect(sequence.logprobs[i]).toBeLessThanOrEqual(entries[k - 1][1]);
      });
    }
  });

  it("is absent when not asked for, capped at the vocabulary, and leaves the samples unchanged", () => {
    const plain = model.sample(prompt, options);
    expect(plain[0].topk).toBeUndefined();
    const [greedy] = model.sample(prompt, { ...options, temperature: 0, topkSampleLogprobs: 1 });
    greedy.topk!.forEach(([[token]], i) => {
      expect(token).toBe(greedy.tokens[i]);
    });
    const wide = model.sample(prompt, { ...options, topkSampleLogprobs: VOCAB_SIZE + 10 });
    expect(wide.map(({ tokens, logprobs, stopReason }) => ({ tokens, logprobs, stopReason }))).toEqual(plain);
    expect(wide[0].topk![0]).toHaveLength(VOCAB_SIZE);
    expect(() => model.sample(prompt, { ...options, topkSampleLogprobs: -1 })).toThrow(EngineError);
    expect(() => model.sample(prompt, { ...options, topkSampleLogprobs: 1.5 })).toThrow(EngineError);
  });
});

describe("sampleAndScore", () => {
  it("one prefill serves the samples and the prompt outputs, equal to sample() and promptLogprobs()", () => {
    const result = model.sampleAndScore(prompt, options, { logprobs: true, topK: 3, altTokensK: 2 });
    expect(result.sequences).toEqual(model.sample(prompt, options));
    expect({ logprobs: result.prompt.logprobs, topk: result.prompt.topk }).toEqual(
      model.promptLogprobs(prompt, 3),
    );
    expect(model.sampleAndScore(prompt, options).prompt).toEqual({});
  });

  it("answers prompt outputs with max_tokens 0 (a prefill only)", () => {
    const { sequences, prompt: outputs } = model.sampleAndScore(
      prompt,
      { ...options, maxTokens: 0 },
      { logprobs: true, altTokensK: 1 },
    );
    expect(sequences).toEqual([
      { tokens: [], logprobs: [], stopReason: "length" },
      { tokens: [], logprobs: [], stopReason: "length" },
    ]);
    expect(outputs.logprobs).toEqual(model.promptLogprobs(prompt, 0).logprobs);
    expect(outputs.altTokens?.tokens.rows).toBe(prompt.length - 1);
  });
});

describe("target_prompt_logprobs", () => {
  const K = 3;
  /** Row i: the actual next token, a fixed id, and a skip in every other row. */
  function targetIds(): number[] {
    const ids: number[] = [];
    for (let i = 0; i + 1 < prompt.length; i++) ids.push(prompt[i + 1], 65 + i, i % 2 === 0 ? -1 : 7);
    return ids;
  }

  it("returns the logprob of every named id and 0.0 in the -1 cells, in the request's shape", () => {
    const rows = prompt.length - 1;
    const ids = targetIds();
    const { prompt: outputs } = model.sampleAndScore(prompt, options, {
      targets: { rows, cols: K, data: ids },
    });
    const answer = outputs.targetLogprobs!;
    expect([answer.rows, answer.cols, answer.data.length]).toEqual([rows, K, rows * K]);
    const full = fullLogprobs(prompt);
    const actual = model.promptLogprobs(prompt, 0).logprobs;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < K; j++) {
        const id = ids[i * K + j];
        const value = answer.data[i * K + j];
        if (id === -1) expect(Object.is(value, 0)).toBe(true);
        else expect(value).toBeCloseTo(full[i + 1].get(id)!, 12);
      }
      expect(answer.data[i * K]).toBe(actual[i + 1]);
    }
    expect(outputs.logprobs).toBeUndefined();
    expect(outputs.altTokens).toBeUndefined();
  });

  it("agrees with a training forward pass scoring the same ids", () => {
    const rows = prompt.length - 1;
    const ids = targetIds();
    const answer = model.sampleAndScore(prompt, options, { targets: { rows, cols: K, data: ids } }).prompt
      .targetLogprobs!;
    const trainable = new TrainableModel(base, {
      rank: 4,
      seed: 0,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: true,
    });
    for (const j of [0, 1]) {
      const column = Array.from({ length: rows }, (_, i) => ids[i * K + j]);
      const forward = trainable.forwardBackward(
        [{ tokens: prompt.slice(0, -1), lossFnInputs: { target_tokens: column } }],
        "cross_entropy",
        undefined,
        true,
      ).logprobs[0];
      for (let i = 0; i < rows; i++) expect(Math.fround(answer.data[i * K + j])).toBe(forward[i]);
    }
  });

  it("rejects a wrong shape, ids outside the vocabulary and a matrix that names no id", () => {
    const rows = prompt.length - 1;
    const ids = targetIds();
    const bad = [
      { rows: rows + 1, cols: K, data: [...ids, 1, 2, 3] },
      { rows: rows - 1, cols: K, data: ids.slice(K) },
      { rows, cols: K, data: ids.slice(1) },
      { rows, cols: 0, data: [] },
      { rows, cols: K, data: ids.map((id, i) => (i === 4 ? VOCAB_SIZE : id)) },
      { rows, cols: K, data: ids.map((id, i) => (i === 4 ? -2 : id)) },
      { rows, cols: K, data: ids.map((id, i) => (i === 4 ? 1.5 : id)) },
      { rows, cols: K, data: ids.map(() => -1) },
    ];
    for (const targets of bad) {
      expect(() => model.sampleAndScore(prompt, options, { targets })).toThrow(EngineError);
    }
    expect(() =>
      model.sampleAndScore(prompt, options, { targets: { rows, cols: K, data: ids.map(() => 1.5) } }),
    ).toThrow(/target_prompt_logprobs: cell \[0\]\[0\]/);
    // A one-token prompt has no position to score.
    expect(() =>
      model.sampleAndScore([BOS_TOKEN], options, { targets: { rows: 0, cols: 1, data: [] } }),
    ).toThrow(EngineError);
  });
});

describe("prompt_alt_tokens_k", () => {
  const k = 5;

  it("draws k tokens at every position after the first, reporting their untempered logprobs", () => {
    const { prompt: outputs } = model.sampleAndScore(prompt, options, { altTokensK: k });
    const { tokens, logprobs } = outputs.altTokens!;
    expect([tokens.rows, tokens.cols, tokens.data.length]).toEqual([
      prompt.length - 1,
      k,
      (prompt.length - 1) * k,
    ]);
    expect([logprobs.rows, logprobs.cols]).toEqual([prompt.length - 1, k]);
    const full = fullLogprobs(prompt);
    for (let i = 0; i + 1 < prompt.length; i++) {
      for (let j = 0; j < k; j++) {
        expect(logprobs.data[i * k + j]).toBeCloseTo(full[i + 1].get(tokens.data[i * k + j])!, 12);
      }
    }
  });

  it("are the sampler's own draws at the request's temperature, from their own seed stream", () => {
    for (const temperature of [0.7, 1, 2]) {
      const { tokens } = model.sampleAndScore(prompt, { ...options, temperature }, { altTokensK: k }).prompt
        .altTokens!;
      const logits = extendSequence(base.weights, new KvCache(base.config, prompt.length), prompt, true);
      const rng = new Rng(deriveSeed(options.seed!, PROMPT_ALT_TOKENS_STREAM));
      const expected: number[] = [];
      for (let i = 0; i + 1 < prompt.length; i++) {
        for (let j = 0; j < k; j++) {
          expected.push(
            chooseToken(logits, i * VOCAB_SIZE, VOCAB_SIZE, { temperature, topK: -1, topP: 1 }, rng).token,
          );
        }
      }
      expect(Array.from(tokens.data)).toEqual(expected);
    }
  });

  it("is deterministic per seed and differs between seeds", () => {
    const draw = (seed: number) =>
      Array.from(
        model.sampleAndScore(prompt, { ...options, seed }, { altTokensK: k }).prompt.altTokens!.tokens.data,
      );
    expect(draw(1)).toEqual(draw(1));
    expect(draw(1)).not.toEqual(draw(2));
  });

  it("follows the next-token distribution (frequencies of many draws)", () => {
    const many = MAX_PROMPT_ALT_TOKENS_K;
    const { tokens } = model.sampleAndScore(prompt, options, { altTokensK: many }).prompt.altTokens!;
    const full = fullLogprobs(prompt);
    for (const i of [0, 4, prompt.length - 2]) {
      const [[best, bestLogprob]] = full[i + 1].entries();
      const p = Math.exp(bestLogprob);
      let hits = 0;
      for (let j = 0; j < many; j++) if (tokens.data[i * many + j] === best) hits++;
      expect(Math.abs(hits / many - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / many) + 1e-3);
    }
  });

  it("at temperature 0 every draw is the argmax", () => {
    const { tokens } = model.sampleAndScore(prompt, { ...options, temperature: 0 }, { altTokensK: 3 }).prompt
      .altTokens!;
    const { topk } = model.promptLogprobs(prompt, 1);
    for (let i = 0; i + 1 < prompt.length; i++) {
      expect(Array.from(tokens.data.subarray(i * 3, i * 3 + 3))).toEqual(Array(3).fill(topk![i + 1]![0][0]));
    }
  });

  it("gives an empty [0, k] matrix for a one-token prompt and validates k", () => {
    const { tokens } = model.sampleAndScore([BOS_TOKEN], options, { altTokensK: 2 }).prompt.altTokens!;
    expect([tokens.rows, tokens.cols, tokens.data.length]).toEqual([0, 2, 0]);
    for (const altTokensK of [-1, 0.5, MAX_PROMPT_ALT_TOKENS_K + 1]) {
      expect(() => model.sampleAndScore(prompt, options, { altTokensK })).toThrow(EngineError);
    }
  });
});
