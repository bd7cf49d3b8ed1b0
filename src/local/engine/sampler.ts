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
 *
 * `sampleAndScore` serves a whole sample request from one prefill: the generated sequences (with
 * optional top-k logprobs per generated token) and the prompt outputs of prompt-outputs.ts.
 */

import type { BaseModel } from "./base-model.js";
import { EngineError } from "./errors.js";
import { extendSequence, KvCache } from "./incremental.js";
import { logSoftmax } from "./linalg.js";
import {
  needsPromptRows,
  type PromptOutputRequest,
  type PromptOutputs,
  promptOutputs,
  validatePromptOutputRequest,
} from "./prompt-outputs.js";
import { argmax, idsByDescendingValue, topEntries } from "./ranking.js";
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
  /** topk_sample_logprobs: the k most likely [token, logprob] pairs at each generated position; 0 = none. */
  topkSampleLogprobs?: number;
  /**
   * Called with every token as soon as it is drawn, before the next one is computed: what a
   * streaming answer sends on. `topk` is set when topkSampleLogprobs > 0. The draws do not depend
   * on it.
   */
  onToken?: (token: SampledToken) => void;
}

/** One drawn token, as `SampleOptions.onToken` sees it. */
export interface SampledToken {
  sampleIndex: number;
  token: number;
  /** Untempered log-probability, as in SampledSequence.logprobs. */
  logprob: number;
  topk?: [number, number][];
}

export type StopReason = "stop" | "length";

export interface SampledSequence {
  /** Generated tokens, including the stop token(s) when stopReason is "stop". */
  tokens: number[];
  /** Untempered log-probability of each generated token. */
  logprobs: number[];
  stopReason: StopReason;
  /**
   * With topkSampleLogprobs = k > 0: per generated token, the min(k, vocab) most likely
   * [token, untempered logprob] pairs of the distribution it was drawn from, best first.
   */
  topk?: [number, number][][];
}

export interface PromptLogprobs {
  /** log p(prompt[i] | prompt[0..i)); position 0 has no prefix and is null. */
  logprobs: (number | null)[];
  /** With topK > 0: the k most likely [token, logprob] pairs predicted for each position (position 0 null). */
  topk?: ([number, number][] | null)[];
}

export interface SampleAndScoreResult {
  sequences: SampledSequence[];
  /** The requested prompt outputs (empty when none were requested). */
  prompt: PromptOutputs;
}

export interface InferenceModel {
  sample(prompt: readonly number[], opts: SampleOptions): SampledSequence[];
  /**
   * One sample request: `numSamples` sequences plus the requested prompt outputs, all from a
   * single prefill. Everything is validated before the model runs (EngineError).
   */
  sampleAndScore(
    prompt: readonly number[],
    opts: SampleOptions,
    outputs?: PromptOutputRequest,
  ): SampleAndScoreResult;
  /**
   * The same request as `sampleAndScore`, as steps: the generator yields between samples and every
   * few generated tokens, and returns the same result (the draws depend on the seed and the sample
   * index only, never on how the steps are driven). A server drives it with pauses, so that a large
   * request cannot hold its event loop (heartbeats, health checks, other requests) for long.
   */
  sampleAndScoreSteps(
    prompt: readonly number[],
    opts: SampleOptions,
    outputs?: PromptOutputRequest,
  ): Generator<void, SampleAndScoreResult, void>;
  promptLogprobs(prompt: readonly number[], topK: number): PromptLogprobs;
  readonly maxSeqLen: number;
  readonly vocabSize: number;
}

/** Generated tokens between two steps of `sampleAndScoreSteps` (besides one step per sample). */
const TOKENS_PER_STEP = 32;

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
  const topkSample = opts.topkSampleLogprobs ?? 0;
  if (!Number.isInteger(topkSample) || topkSample < 0) {
    throw new EngineError(`topk_sample_logprobs must be a non-negative integer, got ${topkSample}`);
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
    return this.sampleAndScore(prompt, opts).sequences;
  }

  sampleAndScore(
    prompt: readonly number[],
    opts: SampleOptions,
    outputs: PromptOutputRequest = {},
  ): SampleAndScoreResult {
    const steps = this.sampleAndScoreSteps(prompt, opts, outputs);
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
    }
  }

  *sampleAndScoreSteps(
    prompt: readonly number[],
    opts: SampleOptions,
    outputs: PromptOutputRequest = {},
  ): Generator<void, SampleAndScoreResult, void> {
    validatePrompt(prompt, this.vocabSize, this.maxSeqLen);
    validateSampleOptions(opts);
    validatePromptOutputRequest(outputs, prompt.length, this.vocabSize);
    const contextLeft = this.maxSeqLen - prompt.length;
    const budget = Math.min(opts.maxTokens ?? contextLeft, contextLeft);
    const scorePrompt = needsPromptRows(outputs);
    const noSequences = () =>
      Array.from(
        { length: opts.numSamples },
        (): SampledSequence => ({
          tokens: [],
          logprobs: [],
          stopReason: "length",
          ...((opts.topkSampleLogprobs ?? 0) > 0 ? { topk: [] } : {}),
        }),
      );
    if (budget === 0 && !scorePrompt) return { sequences: noSequences(), prompt: {} };
    const seed = opts.seed ?? randomSeed();

    // One prefill serves the prompt outputs (every row) and every sample (the last row); each
    // sample continues from its own copy of the cache. The last generated token is never fed
    // back, hence the capacity.
    const prefill = new KvCache(this.weights.config, prompt.length + Math.max(budget - 1, 0));
    const logits = extendSequence(this.weights, prefill, prompt, scorePrompt);
    const scored = scorePrompt
      ? promptOutputs(logits, prompt, this.vocabSize, outputs, { temperature: opts.temperature, seed })
      : {};
    const lastRow = scorePrompt ? (prompt.length - 1) * this.vocabSize : 0;
    const sequences =
      budget === 0 ? noSequences() : yield* this.generate(prefill, logits, lastRow, budget, opts, seed);
    return { sequences, prompt: scored };
  }

  private *generate(
    prefill: KvCache,
    prefillLogits: Float64Array,
    prefillOffset: number,
    budget: number,
    opts: SampleOptions,
    seed: Seed,
  ): Generator<void, SampledSequence[], void> {
    const stopTokens = new Set([EOS_TOKEN, ...(opts.stopTokens ?? [])]);
    const stopStrings = (opts.stopStrings ?? []).filter((s) => s.length > 0);
    const topkSample = opts.topkSampleLogprobs ?? 0;
    const V = this.vocabSize;
    const logprobRow = new Float64Array(V);

    const results: SampledSequence[] = [];
    for (let sampleIndex = 0; sampleIndex < opts.numSamples; sampleIndex++) {
      // One stream per sample index: samples of one request differ, and sample i of a seed is the
      // same whatever numSamples is.
      const rng = new Rng(deriveSeed(seed, sampleIndex));
      const cache = sampleIndex === opts.numSamples - 1 ? prefill : prefill.clone();
      const tokens: number[] = [];
      const logprobs: number[] = [];
      const topk: [number, number][][] = [];
      let logits = prefillLogits;
      let offset = prefillOffset;
      let stopReason: StopReason = "length";
      for (;;) {
        const { token, logprob } = chooseToken(logits, offset, V, opts, rng);
        tokens.push(token);
        logprobs.push(logprob);
        if (topkSample > 0) {
          logSoftmax(logits, offset, V, logprobRow, 0);
          topk.push(topEntries(logprobRow, topkSample));
        }
        opts.onToken?.({
          sampleIndex,
          token,
          logprob,
          ...(topkSample > 0 ? { topk: topk[topk.length - 1] } : {}),
        });
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
        // A streamed sample steps after every token, so that each can go out before the next.
        if (opts.onToken || tokens.length % TOKENS_PER_STEP === 0) yield;
        logits = extendSequence(this.weights, cache, [token], false);
        offset = 0;
      }
      results.push(
        topkSample > 0 ? { tokens, logprobs, stopReason, topk } : { tokens, logprobs, stopReason },
      );
      yield;
    }
    return results;
  }

  promptLogprobs(prompt: readonly number[], topK: number): PromptLogprobs {
    validatePrompt(prompt, this.vocabSize, this.maxSeqLen);
    const request = { logprobs: true, topK };
    validatePromptOutputRequest(request, prompt.length, this.vocabSize);
    const logits = extendSequence(
      this.weights,
      new KvCache(this.weights.config, prompt.length),
      prompt,
      true,
    );
    const { logprobs = [], topk } = promptOutputs(logits, prompt, this.vocabSize, request);
    return topK > 0 ? { logprobs, topk } : { logprobs };
  }
}

/** Inference directly on a base model (sampling without any training). */
export function createInferenceModel(base: BaseModel): InferenceModel {
  return new TransformerInferenceModel(base.weights);
}
