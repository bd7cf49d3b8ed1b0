/**
 * Direct Preference Optimization on `forwardBackwardCustom`: for each pair, a prompt with a chosen
 * and a rejected reply, the policy is pushed to raise the chosen reply's log-likelihood relative
 * to a frozen reference more than the rejected one's:
 *
 *   z = β · ((log π(chosen) − log π_ref(chosen)) − (log π(rejected) − log π_ref(rejected)))
 *   loss = mean over pairs of −log σ(z)
 *
 * where log π(reply) is Σ weight·logprob over the reply's target tokens (the datum's weights). The
 * reference is fixed for the whole run, so its log-likelihoods are computed once, up front, from a
 * sampler of the base weights (`computeLogprobs`), and carried with each pair.
 *
 * The loss's gradient with respect to each logprob has a closed form, so it is handed to
 * `forwardBackwardCustom` as `{ gradient }`: with s = σ(−z), ∂loss/∂logprob_t is −β·s·w_t/P for the
 * chosen tokens and +β·s·w_t/P for the rejected ones (P pairs).
 */
import type { SamplingClient } from "../../clients/sampling.js";
import type { TrainingClient } from "../../clients/training.js";
import { ValidationError, type ValidationIssue } from "../../core/errors.js";
import type { CustomGradientFn } from "../../lib/custom-loss.js";
import { ModelInput } from "../../lib/model-input.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import type { OptimStepResponse } from "../../wire/schemas.js";
import type { AdamParams, Datum, ForwardBackwardOutput } from "../../wire/types.js";
import { validateGivenAdam } from "../adam.js";
import {
  type DatumFromPromptCompletionOptions,
  type DatumFromTokensOptions,
  datumFromConversation,
  datumFromPromptCompletion,
} from "../datum.js";
import type { ChatMessage, Renderer } from "../renderers/index.js";

/** A preferred and a dispreferred reply to the same prompt, as datums weighted on the reply. */
export interface PreferencePair {
  chosen: Datum;
  rejected: Datum;
}

/** A pair with its reference log-likelihoods: Σ weight·logprob of each reply under the reference. */
export interface DpoExample extends PreferencePair {
  referenceChosen: number;
  referenceRejected: number;
}

/** The pair for a text prompt and two completions (`datumFromPromptCompletion`, EOS added by default). */
export function preferencePairFromPromptCompletion(
  tokenizer: Tokenizer,
  pair: {
    prompt: string | readonly number[];
    chosen: string | readonly number[];
    rejected: string | readonly number[];
  },
  options: DatumFromPromptCompletionOptions = {},
): PreferencePair {
  return {
    chosen: datumFromPromptCompletion(tokenizer, pair.prompt, pair.chosen, options),
    rejected: datumFromPromptCompletion(tokenizer, pair.prompt, pair.rejected, options),
  };
}

/**
 * The pair for a conversation (ending with the user's turn) and two assistant replies, rendered by
 * `renderer` and weighted on the reply (`last_assistant_message`).
 */
export function preferencePairFromConversation(
  renderer: Renderer,
  pair: { messages: readonly ChatMessage[]; chosen: string; rejected: string },
  options: DatumFromTokensOptions = {},
): PreferencePair {
  const withReply = (content: string) =>
    datumFromConversation(renderer, [...pair.messages, { role: "assistant", content }], {
      ...options,
      trainOnWhat: "last_assistant_message",
    });
  return { chosen: withReply(pair.chosen), rejected: withReply(pair.rejected) };
}

/**
 * Each pair with the reference's log-likelihood of its two replies, from `computeLogprobs` of the
 * full sequence (the datum's input plus its last target) on `reference` — a sampler of the weights
 * DPO starts from, e.g. `await training.saveWeightsAndGetSamplingClient()` before the first step.
 * Computed once; the requests run concurrently.
 */
export async function withReferenceLogprobs(
  reference: SamplingClient,
  pairs: readonly PreferencePair[],
  options: { signal?: AbortSignal } = {},
): Promise<DpoExample[]> {
  checkPairs(pairs);
  if (typeof reference?.computeLogprobs !== "function") {
    throw new ValidationError([{ path: "reference", message: "must be a SamplingClient" }]);
  }
  const score = async (datum: Datum, path: string): Promise<number> => {
    const targets = targetsOf(datum);
    const sequence = ModelInput.appendInt(datum.model_input, targets.at(-1)!);
    const logprobs = await reference.computeLogprobs(sequence, { signal: options.signal });
    const weights = weightsOf(datum);
    // logprobs[t + 1] is the logprob of target t (position 0 has none).
    let total = 0;
    for (let t = 0; t < weights.length; t++) {
      if (weights[t] === 0) continue;
      const lp = logprobs[t + 1];
      if (typeof lp !== "number")
        throw new ValidationError([{ path, message: `has no reference logprob at target ${t}` }]);
      total += weights[t]! * lp;
    }
    return total;
  };
  return Promise.all(
    pairs.map(async (pair, i) => {
      const [referenceChosen, referenceRejected] = await Promise.all([
        score(pair.chosen, `pairs[${i}].chosen`),
        score(pair.rejected, `pairs[${i}].rejected`),
      ]);
      return { ...pair, referenceChosen, referenceRejected };
    }),
  );
}

export interface DpoMetrics {
  /** Mean over pairs of −log σ(z). log 2 ≈ 0.693 while the policy equals the reference. */
  loss: number;
  /** Fraction of pairs whose chosen log-ratio exceeds the rejected one (z > 0). */
  accuracy: number;
  /** Mean z = β·(chosen log-ratio − rejected log-ratio). */
  margin: number;
  /** Mean β·(log π(chosen) − log π_ref(chosen)). */
  chosenReward: number;
  /** Mean β·(log π(rejected) − log π_ref(rejected)). */
  rejectedReward: number;
  pairs: number;
}

/**
 * The DPO loss and metrics from each pair's policy and reference log-likelihoods (pure; what
 * `dpoStep` reports and `evaluateDpo` measures).
 */
export function dpoMetrics(
  policy: readonly { chosen: number; rejected: number }[],
  reference: readonly { chosen: number; rejected: number }[],
  beta: number,
): DpoMetrics {
  checkBeta(beta);
  if (policy.length === 0 || policy.length !== reference.length) {
    throw new ValidationError([
      {
        path: "reference",
        message: `has ${reference.length} pairs for ${policy.length} policy pairs (need ≥ 1, equal)`,
      },
    ]);
  }
  let loss = 0;
  let correct = 0;
  let margin = 0;
  let chosenReward = 0;
  let rejectedReward = 0;
  policy.forEach((p, i) => {
    const r = reference[i]!;
    const chosen = beta * (p.chosen - r.chosen);
    const rejected = beta * (p.rejected - r.rejected);
    const z = chosen - rejected;
    loss += softplus(-z);
    if (z > 0) correct++;
    margin += z;
    chosenReward += chosen;
    rejectedReward += rejected;
  });
  const n = policy.length;
  return {
    loss: loss / n,
    accuracy: correct / n,
    margin: margin / n,
    chosenReward: chosenReward / n,
    rejectedReward: rejectedReward / n,
    pairs: n,
  };
}

/** The datums of `forwardBackwardCustom`: chosen and rejected of each pair, interleaved. */
export function dpoData(examples: readonly PreferencePair[]): Datum[] {
  return examples.flatMap((example) => [example.chosen, example.rejected]);
}

/**
 * The DPO loss as `forwardBackwardCustom`'s `{ gradient }`, for `dpoData(examples)` in that order.
 * Its metrics (`dpo_loss:mean`, `accuracy:mean`, `margin:mean`, `chosen_reward:mean`,
 * `rejected_reward:mean`) are those of the logprobs before the step.
 */
export function dpoLoss(
  examples: readonly DpoExample[],
  options: { beta: number },
): { gradient: CustomGradientFn } {
  checkExamples(examples);
  const { beta } = options;
  checkBeta(beta);
  const weights = examples.map((e) => [weightsOf(e.chosen), weightsOf(e.rejected)] as const);
  const reference = examples.map((e) => ({ chosen: e.referenceChosen, rejected: e.referenceRejected }));
  return {
    gradient: (data, logprobs) => {
      if (data.length !== 2 * examples.length) {
        throw new ValidationError([
          {
            path: "data",
            message: `has ${data.length} datums; dpoLoss expects dpoData(examples): ${2 * examples.length}`,
          },
        ]);
      }
      const policy = weights.map(([chosen, rejected], i) => ({
        chosen: weightedSum(logprobs[2 * i]!, chosen),
        rejected: weightedSum(logprobs[2 * i + 1]!, rejected),
      }));
      const metrics = dpoMetrics(policy, reference, beta);
      const pairs = examples.length;
      const gradients = weights.flatMap(([chosen, rejected], i) => {
        const z =
          beta * (policy[i]!.chosen - reference[i]!.chosen - (policy[i]!.rejected - reference[i]!.rejected));
        // ∂(−log σ(z))/∂z = −σ(−z); then ∂z/∂logprob = ±β·w.
        const pull = (beta * sigmoid(-z)) / pairs;
        return [chosen.map((w) => -pull * w), rejected.map((w) => pull * w)];
      });
      return {
        loss: metrics.loss,
        gradients,
        metrics: {
          "dpo_loss:mean": metrics.loss,
          "accuracy:mean": metrics.accuracy,
          "margin:mean": metrics.margin,
          "chosen_reward:mean": metrics.chosenReward,
          "rejected_reward:mean": metrics.rejectedReward,
        },
      };
    },
  };
}

export interface DpoStepOptions {
  /** DPO's β: how strongly the log-ratios are compared (the cookbook's default is 0.1). */
  beta: number;
  /** The step's AdamW settings (`optimStep`). */
  adam: AdamParams;
  /** Checked before anything is sent, and cancels the custom pass while it runs. */
  signal?: AbortSignal;
}

export interface DpoStepResult {
  /** Measured on the logprobs before the update. */
  metrics: DpoMetrics;
  output: ForwardBackwardOutput;
  optim: OptimStepResponse;
}

/**
 * One DPO step: `forwardBackwardCustom` with `dpoLoss`, then `optimStep` right behind it (submitted
 * once the custom pass's forward_backward has its place in the run's order, so nothing else can
 * come between them). Bad input throws before any request.
 */
export async function dpoStep(
  training: TrainingClient,
  examples: readonly DpoExample[],
  options: DpoStepOptions,
): Promise<DpoStepResult> {
  const loss = dpoLoss(examples, options);
  validateGivenAdam(options.adam ?? {});
  options.signal?.throwIfAborted();
  const backward = training.forwardBackwardCustom(dpoData(examples), loss, { signal: options.signal });
  await backward.requestId;
  const [output, optim] = await Promise.all([backward, training.optimStep(options.adam)]);
  const m = output.metrics;
  return {
    metrics: {
      loss: m["dpo_loss:mean"]!,
      accuracy: m["accuracy:mean"]!,
      margin: m["margin:mean"]!,
      chosenReward: m["chosen_reward:mean"]!,
      rejectedReward: m["rejected_reward:mean"]!,
      pairs: examples.length,
    },
    output,
    optim,
  };
}

/** The DPO metrics of the current weights on `examples`, from one `forward` (no update). */
export async function evaluateDpo(
  training: TrainingClient,
  examples: readonly DpoExample[],
  options: { beta: number; signal?: AbortSignal },
): Promise<DpoMetrics> {
  checkExamples(examples);
  checkBeta(options.beta);
  const output = await training.forward(dpoData(examples), "cross_entropy", undefined, {
    signal: options.signal,
  });
  const logprobs = output.loss_fn_outputs.map((o) => Array.from(o["logprobs"]!.data as ArrayLike<number>));
  const policy = examples.map((e, i) => ({
    chosen: weightedSum(logprobs[2 * i]!, weightsOf(e.chosen)),
    rejected: weightedSum(logprobs[2 * i + 1]!, weightsOf(e.rejected)),
  }));
  const reference = examples.map((e) => ({ chosen: e.referenceChosen, rejected: e.referenceRejected }));
  return dpoMetrics(policy, reference, options.beta);
}

function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

function weightedSum(values: ArrayLike<number>, weights: readonly number[]): number {
  let total = 0;
  for (let t = 0; t < weights.length; t++) total += weights[t]! * values[t]!;
  return total;
}

function targetsOf(datum: Datum): number[] {
  return Array.from(datum.loss_fn_inputs.target_tokens!.data as ArrayLike<number | bigint>, Number);
}

function weightsOf(datum: Datum): number[] {
  return Array.from(datum.loss_fn_inputs.weights!.data as ArrayLike<number>, Number);
}

function checkBeta(beta: unknown): void {
  if (!(typeof beta === "number" && Number.isFinite(beta) && beta > 0)) {
    throw new ValidationError([
      { path: "beta", message: `must be a finite number > 0, got ${String(beta)}` },
    ]);
  }
}

/** Every datum has target tokens and matching weights, and trains something. */
function checkPairs(pairs: readonly PreferencePair[], name = "pairs"): void {
  if (!Array.isArray(pairs) || pairs.length === 0) {
    throw new ValidationError([{ path: name, message: "must be a non-empty array of { chosen, rejected }" }]);
  }
  const issues: ValidationIssue[] = [];
  pairs.forEach((pair, i) => {
    for (const side of ["chosen", "rejected"] as const) {
      const datum = pair?.[side];
      const path = `${name}[${i}].${side}`;
      const targets = datum?.loss_fn_inputs?.target_tokens?.data;
      const weights = datum?.loss_fn_inputs?.weights?.data;
      if (!targets || targets.length === 0 || !weights) {
        issues.push({ path, message: "must be a datum with target_tokens and weights" });
      } else if (weights.length !== targets.length) {
        issues.push({ path, message: `has ${weights.length} weights for ${targets.length} targets` });
      } else if (!Array.from(weights as ArrayLike<number>).some((w) => Number(w) > 0)) {
        issues.push({ path, message: "has no weighted target: the reply is empty" });
      }
    }
  });
  if (issues.length > 0) throw new ValidationError(issues);
}

function checkExamples(examples: readonly DpoExample[]): void {
  checkPairs(examples, "examples");
  const issues: ValidationIssue[] = [];
  examples.forEach((e, i) => {
    for (const key of ["referenceChosen", "referenceRejected"] as const) {
      if (!(typeof e[key] === "number" && Number.isFinite(e[key]))) {
        issues.push({
          path: `examples[${i}].${key}`,
          message: "must be a finite number (withReferenceLogprobs)",
        });
      }
    }
  });
  if (issues.length > 0) throw new ValidationError(issues);
}
