/**
 * KL penalty against a reference policy, as per-token reward shaping (the cookbook's recipe).
 *
 * For each action token, d = (sampled logprob − reference logprob): a one-sample estimate of the
 * policy's KL from the reference at that token. The token's advantage gets
 *
 *     + coefficient × (mean d − d)
 *
 * i.e. −coefficient × d, plus the batch's mean d added back as a baseline: tokens the policy likes
 * more than the reference does are pushed down, less-liked ones up, and the mean advantage is left
 * unchanged (a constant shift would only add variance). With `discount` γ > 0 each position gets
 * the discounted sum of the penalties from it to the end of its sequence instead, so an action is
 * also charged for the KL of what follows it.
 */
import type { SamplingClient } from "../../clients/sampling.js";
import { ValidationError } from "../../core/errors.js";
import { ModelInput } from "../../lib/model-input.js";
import type { TrainingSequence } from "./episode-data.js";

export interface KlShapingResult {
  /** The sequences with shaped advantages (new objects; the inputs are not changed). */
  sequences: TrainingSequence[];
  /** Mean of d over the action tokens: the k1 estimate of KL(policy ‖ reference); 0 when none. */
  meanLogprobDiff: number;
}

/** For position i: Σ_{k≥0} γ^k · x[i+k]. */
export function discountedFutureSum(values: readonly number[], discount: number): number[] {
  const out = new Array<number>(values.length);
  let running = 0;
  for (let i = values.length - 1; i >= 0; i--) {
    running = values[i]! + discount * running;
    out[i] = running;
  }
  return out;
}

/**
 * Shapes the advantages of `sequences` with the reference logprobs (`referenceLogprobs[s][i]` for
 * token i of sequence s, null where there is none — the first token). Positions without a
 * reference logprob take no part in the mean and get no penalty.
 */
export function klShapeAdvantages(
  sequences: readonly TrainingSequence[],
  referenceLogprobs: readonly (readonly (number | null)[])[],
  coefficient: number,
  discount = 0,
): KlShapingResult {
  const issues = [];
  if (!(Number.isFinite(coefficient) && coefficient >= 0)) {
    issues.push({ path: "coefficient", message: `must be a finite number ≥ 0, got ${String(coefficient)}` });
  }
  if (!(Number.isFinite(discount) && discount >= 0 && discount < 1)) {
    issues.push({ path: "discount", message: `must be a number in [0, 1), got ${String(discount)}` });
  }
  if (referenceLogprobs.length !== sequences.length) {
    issues.push({
      path: "referenceLogprobs",
      message: `has ${referenceLogprobs.length} entries, expected one per sequence (${sequences.length})`,
    });
  }
  referenceLogprobs.forEach((ref, s) => {
    const n = sequences[s]?.tokens.length;
    if (n !== undefined && ref.length !== n) {
      issues.push({
        path: `referenceLogprobs[${s}]`,
        message: `has ${ref.length} entries, expected one per token (${n})`,
      });
    }
  });
  if (issues.length > 0) throw new ValidationError(issues);

  let diffSum = 0;
  let count = 0;
  const diffs = sequences.map((sequence, s) =>
    sequence.tokens.map((_, i) => {
      const ref = referenceLogprobs[s]![i];
      if (sequence.mask[i] === 0 || ref === null || ref === undefined) return undefined;
      if (!Number.isFinite(ref)) {
        throw new ValidationError([
          { path: `referenceLogprobs[${s}][${i}]`, message: `must be finite, got ${String(ref)}` },
        ]);
      }
      const d = sequence.logprobs[i]! - ref;
      diffSum += d;
      count++;
      return d;
    }),
  );
  const mean = count === 0 ? 0 : diffSum / count;
  const shaped = sequences.map((sequence, s) => {
    const penalty = diffs[s]!.map((d) => (d === undefined ? 0 : coefficient * (mean - d)));
    const perToken = discount > 0 ? discountedFutureSum(penalty, discount) : penalty;
    return { ...sequence, advantages: sequence.advantages.map((a, i) => a + perToken[i]!) };
  });
  return { sequences: shaped, meanLogprobDiff: mean };
}

/** The reference model's logprob of every token of each sequence (`computeLogprobs`, all at once). */
export function referenceLogprobs(
  reference: SamplingClient,
  sequences: readonly TrainingSequence[],
  signal?: AbortSignal,
): Promise<(number | null)[][]> {
  return Promise.all(
    sequences.map((sequence) => reference.computeLogprobs(ModelInput.fromInts(sequence.tokens), { signal })),
  );
}
