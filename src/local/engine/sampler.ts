/**
 * Text generation and prompt scoring on a fixed set of weights (a base model or a snapshot of a
 * trained one).
 *
 * Token selection follows the usual pipeline: temperature → top-k → top-p (nucleus) → draw.
 * The log-probability reported for each sampled token is the model's UNTEMPERED log-probability
 * (log-softmax of the raw logits), i.e. exactly what a training forward pass computes for that
 * token. RL code feeds these values back as the behaviour log-probabilities `q` of
 * importance_sampling / ppo / cispo / dro, so they must be comparable with the trainer's lp — a
 * tempered or truncated distribution would bias every importance ratio.
 */

import type { BaseModel } from "./base-model.js";
import { EngineError } from "./errors.js";
import { extendSequence, KvCache } from "./incremental.js";
import { logSoftmax } from "./linalg.js";
import { deriveSeed, Rng, randomSeed, type Seed } from "./rng.js";
import { decodeTokens, EOS_TOKEN, isValidToken } from "./tokenizer.js";
import type { ModelWeights } from "./weights.js";

export interface SampleOptions {
  /** Generated-token budget; default: until the context limit. */
  maxTokens?: number;
  /** 0 means greedy decoding. */
  temperature: number;
  /** Keep the k most likely tokens; −1 (or 0) = no limit; 1 = greedy. */
  topK: number;
  /** Nucleus mass in (0, 1]; 1 = no limit. */
  topP: number;
  /** Stop once the decoded generated text ends with one of these strings. */
  stopStrings?: string[];
  /** Stop once one of these token ids is generated (EOS always stops). */
  stopTokens?: number[];
  /** Any 64-bit integer; absent = fresh randomness. */
  seed?: Seed;
  numSamples: number;
}

export type StopReason = "stop" | "length";

export interface SampledSequence {
  /** Generated tokens, including the stop token(s) when stopReason is "stop". */
  tokens: number[];
  /** Untempered log-probability of each generated token. */
  logprobs: number[];
  stopReason: StopReason;
}

export interface PromptLogprobs {
  /** log p(prompt[i] | prompt[0..i)); position 0 has no prefix and is null. */
  logprobs: (number | null)[];
  /** With topK > 0: the k most likely [token, logprob] pairs predicted for each position (position 0 null). */
  topk?: ([number, number][] | null)[];
}

export interface InferenceModel {
  sample(prompt: readonly number[], opts: SampleOptions): SampledSequence[];
  promptLogprobs(prompt: readonly number[], topK: number): PromptLogprobs;
  readonly maxSeqLen: number;
  readonly vocabSize: number;
}

/** Index of the largest value in `values[offset .. offset + n)`; ties go to the lowest index. */
function argmax(values: Float64Array, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (values[offset + i] > values[offset + best]) best = i;
  return best;
}

/** Token ids ordered by descending value (ties by ascending id, so the order is deterministic). */
function idsByDescendingValue(values: Float64Array): number[] {
  const ids = Array.from({ length: values.length }, (_, i) => i);
  ids.sort((x, y) => values[y] - values[x] || x - y);
  return ids;
}

interface TokenChoice {
  token: number;
  logprob: number;
}

/** Picks the next token from one row of logits. */
export function chooseToken(
  logits: Float64Array,
  offset: number,
  vocabSize: number,
  opts: Pick<SampleOptions, "temperature" | "topK" | "topP">,
  rng: Rng,
): TokenChoice {
  const logprobs = new Float64Array(vocabSize);
  logSoftmax(logits, offset, vocabSize, logprobs, 0);
  if (opts.temperature === 0 || opts.topK === 1) {
    const token = argmax(logits, offset, vocabSize);
    return { token, logprob: logprobs[token] };
  }
  // softmax(logits / T), unnormalised (the draw below scales by the kept mass instead).
  const weights = new Float64Array(vocabSize);
  const maxLogit = logits[offset + argmax(logits, offset, vocabSize)];
  for (let i = 0; i < vocabSize; i++)
    weights[i] = Math.exp((logits[offset + i] - maxLogit) / opts.temperature);

  let candidates: number[];
  const limitK = opts.topK > 0 && opts.topK < vocabSize;
  if (!limitK && opts.topP >= 1) {
    candidates = Array.from({ length: vocabSize }, (_, i) => i);
  } else {
    candidates = idsByDescendingValue(weights);
    if (limitK) candidates = candidates.slice(0, opts.topK);
    if (opts.topP < 1) {
      let keptMass = 0;
      for (const id of candidates) keptMass += weights[id];
      // Smallest prefix whose mass reaches topP of the (top-k renormalised) distribution.
      const threshold = opts.topP * keptMass;
      let cumulative = 0;
      let keep = 0;
      while (keep < candidates.length) {
        cumulative += weights[candidates[keep]];
        keep++;
        if (cumulative >= threshold) break;
      }
      candidates = candidates.slice(0, keep);
    }
  }
  let total = 0;
  for (const id of candidates) total += weights[id];
  const u = rng.nextFloat() * total;
  let cumulative = 0;
  let token = candidates[candidates.length - 1]; // rounding fallback
  for (const id of candidates) {
    cumulative += weights[id];
    if (u < cumulative) {
      token = id;
      break;
    }
  }
  return { token, logprob: logprobs[token] };
}

function validatePrompt(prompt: readonly number[], vocabSize: number, maxSeqLen: number): void {
  if (prompt.length === 0) throw new EngineError("prompt must contain at least one token");
  if (prompt.length > maxSeqLen) {
    throw new EngineError(
      `prompt has ${prompt.length} tokens, more than the model's context of ${maxSeqLen}`,
    );
  }
  for (let i = 0; i < prompt.length; i++) {
    if (!isValidToken(prompt[i]) || prompt[i] >= vocabSize) {
      throw new EngineError(`prompt token ${i} (${prompt[i]}) is outside the vocabulary [0, ${vocabSize})`);
    }
  }
}

function validateSampleOptions(opts: SampleOptions): void {
  if (!Number.isInteger(opts.numSamples) || opts.numSamples < 1) {
    throw new EngineError(`num_samples must be a positive integer, got ${opts.numSamples}`);
  }
  if (!Number.isFinite(opts.temperature) || opts.temperature < 0) {
    throw new EngineError(`temperature must be a finite number >= 0, got ${opts.temperature}`);
  }
  if (!Number.isInteger(opts.topK) || opts.topK < -1) {
    throw new EngineError(`top_k must be -1 (no limit) or a non-negative integer, got ${opts.topK}`);
  }
  if (!(opts.topP > 0 && opts.topP <= 1)) throw new EngineError(`top_p must be in (0, 1], got ${opts.topP}`);
  if (opts.maxTokens !== undefined && (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0)) {
    throw new EngineError(`max_tokens must be a non-negative integer, got ${opts.maxTokens}`);
  }
}

/** Sampling and scoring over dense weights; never mutates them. */
export class TransformerInferenceModel implements InferenceModel {
  readonly maxSeqLen: number;
  readonly vocabSize: number;

  constructor(private readonly weights: ModelWeights) {
    this.maxSeqLen = weights.config.maxSeqLen;
    this.vocabSize = weights.config.vocabSize;
  }

  sample(prompt: readonly number[], opts: SampleOptions): SampledSequence[] {
    validatePrompt(prompt, this.vocabSize, this.maxSeqLen);
    validateSampleOptions(opts);
    const contextLeft = this.maxSeqLen - prompt.length;
    const budget = Math.min(opts.maxTokens ?? contextLeft, contextLeft);
    if (budget === 0) {
      return Array.from({ length: opts.numSamples }, () => ({
        tokens: [],
        logprobs: [],
        stopReason: "length",
      }));
    }
    const stopTokens = new Set([EOS_TOKEN, ...(opts.stopTokens ?? [])]);
    const stopStrings = (opts.stopStrings ?? []).filter((s) => s.length > 0);
    const seed = opts.seed ?? randomSeed();

    // Prefill once; every sample continues from its own copy of the cache. The last generated
    // token is never fed back, hence the capacity.
    const prefill = new KvCache(this.weights.config, prompt.length + budget - 1);
    const promptLogits = extendSequence(this.weights, prefill, prompt, false);
    const V = this.vocabSize;

    const results: SampledSequence[] = [];
    for (let sampleIndex = 0; sampleIndex < opts.numSamples; sampleIndex++) {
      // One stream per sample index: samples of one request differ, and sample i of a seed is the
      // same whatever numSamples is.
      const rng = new Rng(deriveSeed(seed, sampleIndex));
      const cache = sampleIndex === opts.numSamples - 1 ? prefill : prefill.clone();
      const tokens: number[] = [];
      const logprobs: number[] = [];
      let logits = promptLogits;
      let stopReason: StopReason = "length";
      for (;;) {
        const { token, logprob } = chooseToken(logits, 0, V, opts, rng);
        tokens.push(token);
        logprobs.push(logprob);
        if (stopTokens.has(token)) {
          stopReason = "stop";
          break;
        }
        if (stopStrings.length > 0) {
          const text = decodeTokens(tokens);
          if (stopStrings.some((s) => text.endsWith(s))) {
            stopReason = "stop";
            break;
          }
        }
        if (tokens.length >= budget) break;
        logits = extendSequence(this.weights, cache, [token], false);
      }
      results.push({ tokens, logprobs, stopReason });
    }
    return results;
  }

  promptLogprobs(prompt: readonly number[], topK: number): PromptLogprobs {
    validatePrompt(prompt, this.vocabSize, this.maxSeqLen);
    if (!Number.isInteger(topK) || topK < 0) {
      throw new EngineError(`topk_prompt_logprobs must be a non-negative integer, got ${topK}`);
    }
    const V = this.vocabSize;
    const logits = extendSequence(
      this.weights,
      new KvCache(this.weights.config, prompt.length),
      prompt,
      true,
    );
    const logprobs: (number | null)[] = [null];
    const topk: ([number, number][] | null)[] = [null];
    const row = new Float64Array(V);
    for (let i = 1; i < prompt.length; i++) {
      logSoftmax(logits, (i - 1) * V, V, row, 0);
      logprobs.push(row[prompt[i]]);
      if (topK > 0) {
        topk.push(
          idsByDescendingValue(row)
            .slice(0, topK)
            .map((id): [number, number] => [id, row[id]]),
        );
      }
    }
    return topK > 0 ? { logprobs, topk } : { logprobs };
  }
}

/** Inference directly on a base model (sampling without any training). */
export function createInferenceModel(base: BaseModel): InferenceModel {
  return new TransformerInferenceModel(base.weights);
}
