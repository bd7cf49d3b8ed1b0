/**
 * Tinker's loss functions, each a SUM over tokens (never a mean: Tinker leaves normalisation to
 * the caller, who scales advantages or weights). Every loss is written as a function of the
 * per-token target log-probabilities lp_i, so a loss only has to provide its value and
 * ∂L/∂lp_i; the transformer's backward pass does the rest.
 */

import { EngineError } from "./errors.js";

export const LOSS_FUNCTIONS = ["cross_entropy", "importance_sampling", "ppo", "cispo", "dro"] as const;
export type LossFunctionName = (typeof LOSS_FUNCTIONS)[number];

export const DEFAULT_CLIP_LOW = 0.8;
export const DEFAULT_CLIP_HIGH = 1.2;
export const DEFAULT_DRO_BETA = 0.05;

/** Per-datum inputs after validation: every array has the datum's length. */
export interface PreparedLossInputs {
  readonly targetTokens: Int32Array;
  readonly fields: Readonly<Record<string, Float64Array>>;
}

export interface LossResult {
  readonly loss: number;
  /** ∂loss/∂lp_i for every position. */
  readonly dLogprobs: Float64Array;
}

type LossConfig = Readonly<Record<string, number>> | undefined;

interface LossDefinition {
  /** Float inputs that must be present (besides target_tokens). */
  readonly required: readonly string[];
  /** Float inputs that may be present. */
  readonly optional: readonly string[];
  evaluate(
    logprobs: Float64Array,
    fields: Readonly<Record<string, Float64Array>>,
    config: LossConfig,
  ): LossResult;
}

export function isLossFunctionName(name: string): name is LossFunctionName {
  return (LOSS_FUNCTIONS as readonly string[]).includes(name);
}

function configNumber(config: LossConfig, keys: readonly string[], fallback: number): number {
  for (const key of keys) {
    const value = config?.[key];
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new EngineError(`loss_fn_config.${key} must be a finite number, got ${String(value)}`);
    }
    return value;
  }
  return fallback;
}

/** PPO/CISPO clip range: keys clip_low_threshold/clip_high_threshold, or the short clip_low/clip_high. */
function clipRange(config: LossConfig): [low: number, high: number] {
  const low = configNumber(config, ["clip_low_threshold", "clip_low"], DEFAULT_CLIP_LOW);
  const high = configNumber(config, ["clip_high_threshold", "clip_high"], DEFAULT_CLIP_HIGH);
  if (!(low <= high)) throw new EngineError(`clip range is empty: low ${low} > high ${high}`);
  return [low, high];
}

function clamp(x: number, low: number, high: number): number {
  return Math.min(Math.max(x, low), high);
}

const LOSS_DEFINITIONS: Readonly<Record<LossFunctionName, LossDefinition>> = {
  // L = −Σ w_i·lp_i (w = weights, default 1).
  cross_entropy: {
    required: [],
    optional: ["weights"],
    evaluate(lp, fields) {
      const weights = fields["weights"];
      const dLogprobs = new Float64Array(lp.length);
      let loss = 0;
      for (let i = 0; i < lp.length; i++) {
        const w = weights ? weights[i] : 1;
        loss -= w * lp[i];
        dLogprobs[i] = -w;
      }
      return { loss, dLogprobs };
    },
  },

  // L = −Σ r_i·A_i with r = exp(lp − q): the policy-gradient estimator for samples drawn from q.
  importance_sampling: {
    required: ["logprobs", "advantages"],
    optional: [],
    evaluate(lp, fields) {
      const { logprobs: q, advantages } = fields;
      const dLogprobs = new Float64Array(lp.length);
      let loss = 0;
      for (let i = 0; i < lp.length; i++) {
        const ratioTimesAdvantage = Math.exp(lp[i] - q[i]) * advantages[i];
        loss -= ratioTimesAdvantage;
        dLogprobs[i] = -ratioTimesAdvantage; // ∂r/∂lp = r
      }
      return { loss, dLogprobs };
    },
  },

  // L = −Σ min(r·A, clip(r, lo, hi)·A). Where the clipped term is the (strictly) smaller one it is
  // constant in lp, so the token contributes no gradient — that is PPO's trust region.
  ppo: {
    required: ["logprobs", "advantages"],
    optional: [],
    evaluate(lp, fields, config) {
      const [low, high] = clipRange(config);
      const { logprobs: q, advantages } = fields;
      const dLogprobs = new Float64Array(lp.length);
      let loss = 0;
      for (let i = 0; i < lp.length; i++) {
        const ratio = Math.exp(lp[i] - q[i]);
        const advantage = advantages[i];
        const unclipped = ratio * advantage;
        const clipped = clamp(ratio, low, high) * advantage;
        if (unclipped <= clipped) {
          loss -= unclipped;
          dLogprobs[i] = -unclipped;
        } else {
          loss -= clipped;
          dLogprobs[i] = 0;
        }
      }
      return { loss, dLogprobs };
    },
  },

  // L = −Σ stopgrad(clip(r, lo, hi))·A·lp: a REINFORCE gradient re-weighted by a clipped,
  // non-differentiated importance ratio, so clipped tokens still get a (bounded) gradient.
  cispo: {
    required: ["logprobs", "advantages"],
    optional: [],
    evaluate(lp, fields, config) {
      const [low, high] = clipRange(config);
      const { logprobs: q, advantages } = fields;
      const dLogprobs = new Float64Array(lp.length);
      let loss = 0;
      for (let i = 0; i < lp.length; i++) {
        const coefficient = clamp(Math.exp(lp[i] - q[i]), low, high) * advantages[i];
        loss -= coefficient * lp[i];
        dLogprobs[i] = -coefficient;
      }
      return { loss, dLogprobs };
    },
  },

  // L = −Σ (lp·A − ½·β·(lp − q)²): advantage-weighted likelihood with a quadratic penalty that
  // keeps the policy near the sampler's.
  dro: {
    required: ["logprobs", "advantages"],
    optional: [],
    evaluate(lp, fields, config) {
      const beta = configNumber(config, ["beta"], DEFAULT_DRO_BETA);
      const { logprobs: q, advantages } = fields;
      const dLogprobs = new Float64Array(lp.length);
      let loss = 0;
      for (let i = 0; i < lp.length; i++) {
        const drift = lp[i] - q[i];
        loss -= lp[i] * advantages[i] - 0.5 * beta * drift * drift;
        dLogprobs[i] = -(advantages[i] - beta * drift);
      }
      return { loss, dLogprobs };
    },
  },
};

/** Throws `EngineError` for a loss name the engine does not implement. */
export function requireLossFunction(name: string): LossFunctionName {
  if (!isLossFunctionName(name)) {
    throw new EngineError(`unknown loss function "${name}"; supported: ${LOSS_FUNCTIONS.join(", ")}`);
  }
  return name;
}

function toFloat64(values: ArrayLike<number>, datumIndex: number, key: string): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    // NaN or ±Infinity would silently poison every LoRA weight at the next optimizer step.
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new EngineError(
        `datum ${datumIndex}: loss_fn_inputs.${key}[${i}] = ${value} is not a finite number`,
      );
    }
    out[i] = value;
  }
  return out;
}

/**
 * Validates the loss inputs of datum `datumIndex` (model input of length `length`): target_tokens
 * plus the loss's required float arrays, all of length `length`, targets inside the vocabulary.
 */
export function prepareLossInputs(
  lossFn: LossFunctionName,
  inputs: Readonly<Record<string, ArrayLike<number>>>,
  length: number,
  datumIndex: number,
  vocabSize: number,
): PreparedLossInputs {
  const definition = LOSS_DEFINITIONS[lossFn];
  const requireLength = (key: string, values: ArrayLike<number>) => {
    if (values.length !== length) {
      throw new EngineError(
        `datum ${datumIndex}: loss_fn_inputs.${key} has length ${values.length}, expected ${length} (the model input length)`,
      );
    }
  };
  const rawTargets = inputs["target_tokens"];
  if (rawTargets === undefined) {
    throw new EngineError(`datum ${datumIndex}: loss_fn_inputs.target_tokens is required by ${lossFn}`);
  }
  requireLength("target_tokens", rawTargets);
  const targetTokens = new Int32Array(length);
  for (let i = 0; i < length; i++) {
    const token = rawTargets[i];
    if (!Number.isInteger(token) || token < 0 || token >= vocabSize) {
      throw new EngineError(
        `datum ${datumIndex}: loss_fn_inputs.target_tokens[${i}] = ${token} is outside the vocabulary [0, ${vocabSize})`,
      );
    }
    targetTokens[i] = token;
  }
  const fields: Record<string, Float64Array> = {};
  for (const key of definition.required) {
    const values = inputs[key];
    if (values === undefined) {
      throw new EngineError(`datum ${datumIndex}: loss_fn_inputs.${key} is required by ${lossFn}`);
    }
    requireLength(key, values);
    fields[key] = toFloat64(values, datumIndex, key);
  }
  for (const key of definition.optional) {
    const values = inputs[key];
    if (values === undefined) continue;
    requireLength(key, values);
    fields[key] = toFloat64(values, datumIndex, key);
  }
  return { targetTokens, fields };
}

/** Value and lp-gradient of `lossFn` for one datum. */
export function evaluateLoss(
  lossFn: LossFunctionName,
  logprobs: Float64Array,
  inputs: PreparedLossInputs,
  config: LossConfig,
): LossResult {
  return LOSS_DEFINITIONS[lossFn].evaluate(logprobs, inputs.fields, config);
}
