/**
 * Evaluation: negative log-likelihood, perplexity and bits per byte, from a training client's
 * `forward` (the trainer's view of the weights) or a sampler's `computeLogprobs` (the sampler's), and
 * the sampler-vs-trainer logprob comparison that tells whether the two agree (FEATURES.md §5.5).
 * The reductions are pure functions; the client helpers only fetch the logprobs and call them.
 */
import type { SamplingClient } from "../clients/sampling.js";
import type { TrainingClient } from "../clients/training.js";
import { ValidationError } from "../core/errors.js";
import { ModelInput } from "../lib/model-input.js";
import type { Tokenizer } from "../lib/tokenizer/index.js";
import type { Datum, DatumInput } from "../wire/types.js";

const LN2 = Math.LN2;

/** Σ w·(−logprob) and Σ w over positions, the two sums every reduction below is made of. */
export interface NllSums {
  /** Σ weights[i] · −logprobs[i]. */
  nllSum: number;
  /** Σ weights[i]. */
  weightSum: number;
  /** Positions with a weight > 0. */
  tokens: number;
}

/** The weighted NLL sums of one sequence (lengths must match; weights finite and ≥ 0). */
export function nllSums(logprobs: ArrayLike<number>, weights: ArrayLike<number>, path = "logprobs"): NllSums {
  if (logprobs.length !== weights.length) {
    throw new ValidationError([
      { path: "weights", message: `has ${weights.length} entries for ${logprobs.length} logprobs` },
    ]);
  }
  let nllSum = 0;
  let weightSum = 0;
  let tokens = 0;
  for (let i = 0; i < logprobs.length; i++) {
    const w = Number(weights[i]);
    if (!(Number.isFinite(w) && w >= 0)) {
      throw new ValidationError([{ path: `weights[${i}]`, message: `must be finite and ≥ 0, got ${w}` }]);
    }
    if (w === 0) continue;
    const lp = Number(logprobs[i]);
    if (Number.isNaN(lp) || lp > 0) {
      throw new ValidationError([
        { path: `${path}[${i}]`, message: `must be a log-probability ≤ 0, got ${lp}` },
      ]);
    }
    nllSum -= w * lp;
    weightSum += w;
    tokens++;
  }
  return { nllSum, weightSum, tokens };
}

/** Weighted mean of −logprob, in nats per weighted token. All-zero weights are an error (0/0). */
export function meanNll(logprobs: ArrayLike<number>, weights: ArrayLike<number>): number {
  const { nllSum, weightSum } = nllSums(logprobs, weights);
  if (weightSum === 0) {
    throw new ValidationError([{ path: "weights", message: "are all zero: there is nothing to average" }]);
  }
  return nllSum / weightSum;
}

/** exp(nll): the perplexity of a mean NLL in nats. */
export function perplexity(nll: number): number {
  return Math.exp(nll);
}

/**
 * Bits per byte: Σ w·(−logprob) / ln 2 / `byteCount`. Unlike perplexity it compares models with
 * different tokenizers, since it is per byte of text rather than per token. Count the bytes with
 * `targetByteCount` (UTF-8 bytes of the weighted target text, special tokens excluded).
 */
export function bitsPerByte(
  logprobs: ArrayLike<number>,
  weights: ArrayLike<number>,
  byteCount: number,
): number {
  if (!(Number.isInteger(byteCount) && byteCount > 0)) {
    throw new ValidationError([
      { path: "byteCount", message: `must be an integer > 0, got ${String(byteCount)}` },
    ]);
  }
  return nllSums(logprobs, weights).nllSum / LN2 / byteCount;
}

const textEncoder = new TextEncoder();

/**
 * UTF-8 bytes of the text the weighted targets spell: the tokens with weight > 0, decoded together
 * (so multi-token characters count once) with special tokens skipped, as the cookbook's `compute_bpb`
 * does — an EOS or a chat marker is not text. Their NLL still counts in `bitsPerByte`'s numerator:
 * predicting them is part of the model's job.
 */
export function targetByteCount(
  tokenizer: Tokenizer,
  targetTokens: ArrayLike<number>,
  weights: ArrayLike<number>,
): number {
  const weighted: number[] = [];
  for (let i = 0; i < targetTokens.length; i++)
    if (Number(weights[i]) > 0) weighted.push(Number(targetTokens[i]));
  return textEncoder.encode(tokenizer.decode(weighted, { skipSpecialTokens: true })).length;
}

export interface EvaluationResult {
  /** Weighted mean NLL in nats per token. */
  nll: number;
  perplexity: number;
  /** Target tokens with a weight > 0. */
  tokens: number;
  /** Σ weights (equals `tokens` for 0/1 weights). */
  weight: number;
  /** Present when a tokenizer was given and the weighted text has at least one byte. */
  bitsPerByte?: number;
  /** UTF-8 bytes of the weighted target text (with a tokenizer). */
  bytes?: number;
}

export interface EvaluateForwardResult extends EvaluationResult {
  /** Each datum's per-target logprobs, as the server returned them. */
  logprobs: ArrayLike<number>[];
}

export interface EvaluateOptions {
  /** Enables `bitsPerByte` (see `targetByteCount`). */
  tokenizer?: Tokenizer;
  /** Cancels the forward passes (or logprob requests) still to be sent or awaited. */
  signal?: AbortSignal;
}

/**
 * Evaluates `data` with the trainer's current weights: one `forward` (cross_entropy, no gradient, no
 * weight change), then each datum's `logprobs` reduced with its own `weights` (missing weights count
 * as 1 everywhere). The run's order still applies: it sees every step submitted before it.
 */
export async function evaluateForward(
  training: TrainingClient,
  data: readonly (Datum | DatumInput)[],
  options: EvaluateOptions = {},
): Promise<EvaluateForwardResult> {
  if (!Array.isArray(data) || data.length === 0) {
    throw new ValidationError([{ path: "data", message: "must be a non-empty array of datums" }]);
  }
  const output = await training.forward(data as DatumInput[], "cross_entropy", undefined, {
    signal: options.signal,
  });
  const totals = { nllSum: 0, weightSum: 0, tokens: 0, bytes: 0 };
  const logprobs = data.map((d, i) => {
    const values = output.loss_fn_outputs[i]?.logprobs?.data as ArrayLike<number> | undefined;
    if (!values) throw new ValidationError([{ path: `loss_fn_outputs[${i}].logprobs`, message: "missing" }]);
    const targets = d.loss_fn_inputs.target_tokens?.data as ArrayLike<number> | bigint[] | undefined;
    const weights = (d.loss_fn_inputs.weights?.data as ArrayLike<number> | undefined) ?? ones(values.length);
    const sums = nllSums(values, weights, `loss_fn_outputs[${i}].logprobs`);
    totals.nllSum += sums.nllSum;
    totals.weightSum += sums.weightSum;
    totals.tokens += sums.tokens;
    if (options.tokenizer && targets) {
      totals.bytes += targetByteCount(options.tokenizer, Array.from(targets, Number), weights);
    }
    return values;
  });
  return { ...summarize(totals, options.tokenizer !== undefined), logprobs };
}

/** A sequence to score: token ids (every token after the first counts) or tokens with weights. */
export type ScoredSequence = readonly number[] | { tokens: readonly number[]; weights: readonly number[] };

export interface EvaluateLogprobsResult extends EvaluationResult {
  /** `computeLogprobs` of each sequence: one entry per token, the first null. */
  logprobs: (number | null)[][];
}

/**
 * Evaluates sequences with a sampler's weights via `computeLogprobs`. Its first entry is null (no
 * logprob for the first token), so token 0 never counts; with `{ tokens, weights }` (e.g. a
 * renderer's supervised example) `weights[i]` weighs token i, as in `datumFromTokensAndWeights`.
 */
export async function evaluateLogprobs(
  sampler: SamplingClient,
  sequences: readonly ScoredSequence[],
  options: EvaluateOptions = {},
): Promise<EvaluateLogprobsResult> {
  if (!Array.isArray(sequences) || sequences.length === 0) {
    throw new ValidationError([{ path: "sequences", message: "must be a non-empty array" }]);
  }
  const inputs = sequences.map((sequence, i) => {
    const tokens = isTokenList(sequence) ? sequence : sequence.tokens;
    const weights = isTokenList(sequence) ? ones(tokens.length) : sequence.weights;
    if (tokens.length < 2) {
      throw new ValidationError([{ path: `sequences[${i}]`, message: "needs at least 2 tokens" }]);
    }
    if (weights.length !== tokens.length) {
      throw new ValidationError([
        {
          path: `sequences[${i}].weights`,
          message: `has ${weights.length} entries for ${tokens.length} tokens`,
        },
      ]);
    }
    return { tokens, weights };
  });
  const logprobs = await Promise.all(
    inputs.map(({ tokens }) =>
      sampler.computeLogprobs(ModelInput.fromInts(tokens), { signal: options.signal }),
    ),
  );
  const totals = { nllSum: 0, weightSum: 0, tokens: 0, bytes: 0 };
  inputs.forEach(({ tokens, weights }, i) => {
    const values = logprobs[i]!;
    if (values.length !== tokens.length) {
      throw new ValidationError([
        { path: `logprobs[${i}]`, message: `has ${values.length} entries for ${tokens.length} tokens` },
      ]);
    }
    const scored = values.slice(1).map((lp, j) => {
      if (lp === null) throw new ValidationError([{ path: `logprobs[${i}][${j + 1}]`, message: "is null" }]);
      return lp;
    });
    const sums = nllSums(scored, weights.slice(1), `logprobs[${i}]`);
    totals.nllSum += sums.nllSum;
    totals.weightSum += sums.weightSum;
    totals.tokens += sums.tokens;
    if (options.tokenizer)
      totals.bytes += targetByteCount(options.tokenizer, tokens.slice(1), weights.slice(1));
  });
  return { ...summarize(totals, options.tokenizer !== undefined), logprobs };
}

function isTokenList(sequence: ScoredSequence): sequence is readonly number[] {
  return Array.isArray(sequence);
}

function ones(length: number): number[] {
  return new Array<number>(length).fill(1);
}

function summarize(
  totals: { nllSum: number; weightSum: number; tokens: number; bytes: number },
  withBytes: boolean,
): EvaluationResult {
  if (totals.weightSum === 0) {
    throw new ValidationError([{ path: "weights", message: "are all zero: there is nothing to evaluate" }]);
  }
  const nll = totals.nllSum / totals.weightSum;
  const result: EvaluationResult = {
    nll,
    perplexity: perplexity(nll),
    tokens: totals.tokens,
    weight: totals.weightSum,
  };
  if (withBytes) {
    result.bytes = totals.bytes;
    if (totals.bytes > 0) result.bitsPerByte = totals.nllSum / LN2 / totals.bytes;
  }
  return result;
}

export interface LogprobComparison {
  /** Positions compared (both sides present; nulls, e.g. computeLogprobs' first entry, skipped). */
  count: number;
  /** Mean of sampler − trainer. */
  meanDiff: number;
  meanAbsDiff: number;
  maxAbsDiff: number;
  /**
   * k1 = mean(log q − log p), with q the sampler and p the trainer: unbiased for KL(q‖p) when the
   * tokens were sampled from q (at temperature 1), but noisy and can be negative.
   */
  klK1: number;
  /**
   * k3 = mean(r − 1 − log r) with r = p/q: also unbiased for KL(q‖p) under q, never negative, lower
   * variance (Schulman's estimator). Near 0 when sampler and trainer agree.
   */
  klK3: number;
}

/**
 * Compares a sampler's logprobs of some tokens with the trainer's logprobs of the same tokens (e.g.
 * a sample's `logprobs` against `forward`'s on the sampled positions). Arrays must be aligned, same
 * length; null entries on either side are skipped.
 */
export function compareLogprobs(
  samplerLogprobs: ArrayLike<number | null>,
  trainerLogprobs: ArrayLike<number | null>,
): LogprobComparison {
  if (samplerLogprobs.length !== trainerLogprobs.length) {
    throw new ValidationError([
      {
        path: "trainerLogprobs",
        message: `has ${trainerLogprobs.length} entries for ${samplerLogprobs.length} sampler logprobs; align them first`,
      },
    ]);
  }
  let count = 0;
  let diffSum = 0;
  let absSum = 0;
  let maxAbs = 0;
  let k3Sum = 0;
  for (let i = 0; i < samplerLogprobs.length; i++) {
    const q = samplerLogprobs[i];
    const p = trainerLogprobs[i];
    if (q === null || p === null || q === undefined || p === undefined) continue;
    if (!(Number.isFinite(q) && Number.isFinite(p))) {
      throw new ValidationError([{ path: `[${i}]`, message: `logprobs must be finite, got ${q} and ${p}` }]);
    }
    const diff = q - p;
    count++;
    diffSum += diff;
    absSum += Math.abs(diff);
    maxAbs = Math.max(maxAbs, Math.abs(diff));
    // log r = p − q = −diff; r − 1 − log r, with expm1 for accuracy when r ≈ 1.
    k3Sum += Math.expm1(-diff) + diff;
  }
  if (count === 0) {
    throw new ValidationError([{ path: "samplerLogprobs", message: "no position has both logprobs" }]);
  }
  return {
    count,
    meanDiff: diffSum / count,
    meanAbsDiff: absSum / count,
    maxAbsDiff: maxAbs,
    klK1: diffSum / count,
    klK3: k3Sum / count,
  };
}
