/**
 * forward_backward_custom (PROTOCOL.md §7.2): train on any differentiable function C of the
 * per-token logprobs, computed here on the client, with two ordinary server passes.
 *
 * 1. `forward` with cross_entropy returns the logprobs ℓ_i of every datum.
 * 2. The caller's loss gives C(ℓ) and g_i = ∂C/∂ℓ_i (by the autodiff in `./autodiff`, or by hand).
 * 3. `forwardBackward` with cross_entropy and weights w_i = −g_i. The server's loss Σ −ℓ·w then has
 *    gradient ∂/∂ℓ = −w = g, so by the chain rule the parameter gradient is exactly ∂C/∂θ: the
 *    model is trained on C, linearised at the current weights.
 *
 * Ordering: the forward and the forward_backward are two operations of the training run, each with
 * its own seq_id. The forward takes its seq_id when `forwardBackwardCustom` is called; the
 * forward_backward only once the forward's result is in and the loss has run. An operation
 * submitted on the same TrainingClient in between therefore runs between them, as in the official
 * client. To put an `optimStep` after the custom step, submit it once the returned future's
 * `requestId` has resolved (which is the forward_backward's id), or after awaiting the result:
 *
 *   const fb = forwardBackwardCustom(training, data, dpoLoss);
 *   await fb.requestId;                                   // the forward_backward has its seq_id
 *   const [out] = await Promise.all([fb, training.optimStep({ learning_rate: 1e-4 })]);
 */

import type { CallOptions } from "../clients/call-options.js";
import { withTimeout } from "../clients/call-options.js";
import type { TrainingClient } from "../clients/training.js";
import { TinkerError, ValidationError, type ValidationIssue } from "../core/errors.js";
import { APIFuture } from "../futures/api-future.js";
import type { FutureEvent } from "../futures/poller.js";
import { abortError } from "../internal/sleep.js";
import type { Datum, ForwardBackwardOutput, ProvenanceSpans, TensorData } from "../wire/types.js";
// The autodiff's modules, not its index, which src/index.ts exports as `autodiff`: an app that
// imports neither then loads no autodiff with the training client (src/lazy-exports.ts says why).
import { gradients as backpropagate } from "./autodiff/gradients.js";
import { Tensor, variable } from "./autodiff/tensor.js";
import { sparseTensor } from "./sparse.js";

/**
 * The metric under which the result reports the custom loss C, unless the loss function's own
 * metrics set it (PROTOCOL.md §T2). It replaces the server's `loss:sum`, so that loops reading
 * `metrics["loss:sum"]` see C; the server's value moves to `SURROGATE_LOSS_METRIC`.
 */
export const CUSTOM_LOSS_METRIC = "loss:sum";

/**
 * Where the result keeps the server's `loss:sum` of the second pass: the surrogate cross-entropy
 * Σ −ℓ·w = Σ ℓ·g, whose gradient is that of C but whose value is not C (PROTOCOL.md §T2).
 */
export const SURROGATE_LOSS_METRIC = "surrogate_loss:sum";

/** What a loss written with the autodiff ops returns. */
export interface CustomLossResult {
  /** The scalar loss C, computed from the logprob tensors (so that ∂C/∂ℓ can be taken). */
  loss: Tensor;
  /**
   * Extra metrics for the result; they overwrite server metrics of the same key. Use
   * `name:reduction` keys (e.g. `accuracy:mean`) so the result stays mergeable (PROTOCOL.md §3.5).
   */
  metrics?: Record<string, number>;
}

/**
 * A loss written with the autodiff ops. `logprobs[i]` is a vector variable holding the target-token
 * logprobs of `data[i]` (flattened row-major if target_tokens has more than one dimension). Every
 * `logprobs[i]` must take part in the loss, or the call fails (a datum without gradient).
 */
export type CustomLossFn = (
  data: readonly Datum[],
  logprobs: readonly Tensor[],
) => CustomLossResult | Promise<CustomLossResult>;

/** What a loss that computes its own gradient returns. */
export interface CustomGradientResult {
  /** The loss C (reported under `CUSTOM_LOSS_METRIC`). */
  loss: number;
  /** ∂C/∂logprobs[i] for every datum i, each as long as `logprobs[i]`. */
  gradients: readonly ArrayLike<number>[];
  /** As in `CustomLossResult`. */
  metrics?: Record<string, number>;
}

/** A loss over plain logprob arrays that returns its gradient itself (no autodiff involved). */
export type CustomGradientFn = (
  data: readonly Datum[],
  logprobs: number[][],
) => CustomGradientResult | Promise<CustomGradientResult>;

/**
 * The custom loss: a `CustomLossFn` differentiated by the autodiff, or `{ gradient }` when the
 * caller supplies ∂C/∂ℓ (e.g. a closed-form DPO gradient, or one from another autodiff library).
 */
export type CustomLoss = CustomLossFn | { gradient: CustomGradientFn };

/** The part of a TrainingClient the custom loss drives. */
export type CustomLossTrainer = Pick<TrainingClient, "forward" | "forwardBackward">;

/** The only loss inputs the surrogate cross-entropy can carry (PROTOCOL.md §7.2 step 1). */
const ALLOWED_INPUTS: readonly string[] = ["target_tokens", "weights"];

/**
 * Runs one training pass on a custom loss (see the module comment). Bad data throws a
 * ValidationError right away, before any request. `options` apply to the whole operation: the
 * timeout bounds both passes and the loss together, and the signal cancels whichever is running.
 * The result is the forward_backward's output, its request id that call's id, and its metrics the
 * server's plus `CUSTOM_LOSS_METRIC` = C plus the loss function's metrics (which win).
 */
export function forwardBackwardCustom(
  training: CustomLossTrainer,
  data: readonly Datum[],
  loss: CustomLoss,
  options: CallOptions = {},
): APIFuture<ForwardBackwardOutput> {
  validateCustomLossData(data);
  const signal = withTimeout(options);
  // Called now, not inside the future, so that the forward takes its seq_id at call time and its
  // own validation errors are thrown synchronously too.
  const forward = training.forward(data.map(withDefaultWeights), "cross_entropy", undefined, { signal });

  return new APIFuture(async ({ setRequestId, emit }) => {
    const forwardOutput = await relayEvents(forward, emit);
    const logprobs = readLogprobs(forwardOutput, data);
    const evaluated = await evaluateLoss(loss, data, logprobs);
    // Aborting here, not in the submission: a submission that fails marks the run as broken.
    if (signal?.aborted) throw abortError(signal);
    const backward = training.forwardBackward(
      data.map((datum, i) => linearisedDatum(datum, evaluated.gradients[i]!)),
      "cross_entropy",
      undefined,
      { signal },
    );
    backward.requestId.then(setRequestId, () => {});
    const output = await relayEvents(backward, emit);
    const { [CUSTOM_LOSS_METRIC]: surrogate, ...serverMetrics } = output.metrics;
    const metrics: Record<string, number> = { ...serverMetrics };
    if (surrogate !== undefined) metrics[SURROGATE_LOSS_METRIC] = surrogate;
    metrics[CUSTOM_LOSS_METRIC] = evaluated.loss;
    return { ...output, metrics: { ...metrics, ...evaluated.metrics } };
  });
}

/** Step 1: each datum carries target_tokens, and nothing but target_tokens and weights. */
function validateCustomLossData(data: readonly Datum[]): void {
  if (!Array.isArray(data))
    throw new ValidationError([{ path: "data", message: "must be an array of Datum" }]);
  const issues: ValidationIssue[] = [];
  data.forEach((datum, i) => {
    const inputs: Record<string, TensorData> = datum?.loss_fn_inputs ?? {};
    const path = `data[${i}].loss_fn_inputs`;
    const targets = inputs["target_tokens"];
    if (targets === undefined) {
      issues.push({ path: `${path}.target_tokens`, message: "is required by forward_backward_custom" });
    } else if (!Array.isArray(targets?.data)) {
      issues.push({ path: `${path}.target_tokens`, message: "must be TensorData ({ data, dtype, shape? })" });
    }
    for (const key of Object.keys(inputs)) {
      if (!ALLOWED_INPUTS.includes(key)) {
        issues.push({
          path: `${path}.${key}`,
          message: "is not allowed by forward_backward_custom (only target_tokens and weights)",
        });
      }
    }
  });
  if (issues.length > 0) throw new ValidationError(issues);
}

/**
 * Step 2: the datum as given, with zero weights added when it has none. The forward needs no
 * weights, but cross_entropy expects them (PROTOCOL.md §3.3); zeros, as the official client
 * sends, leave the forward's reported loss at 0 instead of a number that means nothing.
 */
function withDefaultWeights(datum: Datum): Datum {
  if (datum.loss_fn_inputs["weights"] !== undefined) return datum;
  const shape = denseShape(datum.loss_fn_inputs["target_tokens"]!);
  const zeros = new Array<number>(elementCount(shape)).fill(0);
  return {
    ...provenanceOf(datum),
    model_input: datum.model_input,
    loss_fn_inputs: { ...datum.loss_fn_inputs, weights: float32Tensor(zeros, shape) },
  };
}

/** Step 4: one logprobs tensor per datum, as many values as the datum has targets. */
function readLogprobs(output: ForwardBackwardOutput, data: readonly Datum[]): number[][] {
  if (output.loss_fn_outputs.length !== data.length) {
    throw new TinkerError(
      `forward returned ${output.loss_fn_outputs.length} outputs for ${data.length} datums`,
    );
  }
  return data.map((datum, i) => {
    const logprobs = output.loss_fn_outputs[i]!["logprobs"];
    if (logprobs === undefined) throw new TinkerError(`forward returned no logprobs for data[${i}]`);
    const expected = elementCount(denseShape(datum.loss_fn_inputs["target_tokens"]!));
    if (logprobs.data.length !== expected) {
      throw new TinkerError(
        `forward returned ${logprobs.data.length} logprobs for data[${i}], which has ${expected} target tokens`,
      );
    }
    return [...logprobs.data];
  });
}

interface EvaluatedLoss {
  loss: number;
  gradients: readonly ArrayLike<number>[];
  metrics: Record<string, number> | undefined;
}

/** Step 5: C, its gradient with respect to every datum's logprobs, and the caller's metrics. */
async function evaluateLoss(
  loss: CustomLoss,
  data: readonly Datum[],
  logprobs: number[][],
): Promise<EvaluatedLoss> {
  const evaluated =
    typeof loss === "function"
      ? await differentiate(loss, data, logprobs)
      : await callGradient(loss.gradient, data, logprobs);
  evaluated.gradients.forEach((gradient, i) => {
    for (let t = 0; t < gradient.length; t++) {
      if (!Number.isFinite(gradient[t])) {
        throw new TinkerError(
          `the loss gradient for data[${i}] is not finite at position ${t} (${gradient[t]})`,
        );
      }
    }
  });
  return evaluated;
}

async function differentiate(
  lossFn: CustomLossFn,
  data: readonly Datum[],
  logprobs: number[][],
): Promise<EvaluatedLoss> {
  const leaves = logprobs.map((values) => variable(values));
  const returned = await lossFn(data, leaves);
  if (!(returned?.loss instanceof Tensor)) {
    throw new TinkerError(
      "the custom loss must return { loss: Tensor } built with the autodiff ops; to supply the gradient yourself, pass { gradient: fn }",
    );
  }
  if (returned.loss.size !== 1) {
    throw new TinkerError(
      `the custom loss must be a scalar, got ${returned.loss.size} values; reduce with sum() or mean()`,
    );
  }
  const grads = backpropagate(returned.loss, leaves);
  return {
    loss: returned.loss.item(),
    // As in the official client, a datum the loss ignores is an error rather than a silent zero.
    gradients: grads.map((gradient, i) => {
      if (gradient === undefined)
        throw new TinkerError(`the custom loss does not depend on the logprobs of data[${i}]`);
      return gradient;
    }),
    metrics: returned.metrics,
  };
}

async function callGradient(
  gradientFn: CustomGradientFn,
  data: readonly Datum[],
  logprobs: number[][],
): Promise<EvaluatedLoss> {
  // The caller gets copies, so whatever it does with them cannot change what is checked below.
  const returned = await gradientFn(
    data,
    logprobs.map((values) => [...values]),
  );
  if (typeof returned?.loss !== "number" || !Array.isArray(returned.gradients)) {
    throw new TinkerError("the gradient function must return { loss: number, gradients: number[][] }");
  }
  if (returned.gradients.length !== data.length) {
    throw new TinkerError(
      `the gradient function returned ${returned.gradients.length} gradients for ${data.length} datums`,
    );
  }
  returned.gradients.forEach((gradient, i) => {
    if (gradient?.length !== logprobs[i]!.length) {
      throw new TinkerError(
        `the gradient for data[${i}] has ${gradient?.length} values, its logprobs ${logprobs[i]!.length}`,
      );
    }
  });
  return { loss: returned.loss, gradients: returned.gradients, metrics: returned.metrics };
}

/** Step 6: the surrogate datum, whose cross-entropy gradient with respect to ℓ is g. */
function linearisedDatum(datum: Datum, gradient: ArrayLike<number>): Datum {
  const targets = datum.loss_fn_inputs["target_tokens"]!;
  const weights = Array.from(gradient, (g) => -g);
  return {
    ...provenanceOf(datum),
    model_input: datum.model_input,
    loss_fn_inputs: { target_tokens: targets, weights: float32Tensor(weights, denseShape(targets)) },
  };
}

/** The datum's provenance spans (§T3), which go out with both passes. */
function provenanceOf(datum: Datum): ProvenanceSpans {
  const spans: ProvenanceSpans = {};
  if (datum.model_input_spans !== undefined) spans.model_input_spans = datum.model_input_spans;
  if (datum.loss_fn_input_spans !== undefined) spans.loss_fn_input_spans = datum.loss_fn_input_spans;
  return spans;
}

/**
 * A float32 tensor of the given dense shape. A 2-D one that is mostly zeros goes as CSR, by the
 * official client's rule for `weights` (PROTOCOL.md §3.2): when (rows + 1) + 2·nnz < rows·cols.
 *
 * @internal Exported for its unit test, not part of the public API.
 */
export function float32Tensor(values: readonly number[], shape: readonly number[]): TensorData {
  return sparseTensor(values, "float32", shape, 0);
}

/** The dense shape of a tensor: its `shape`, or `[n]` for a 1-D one sent without. */
function denseShape(tensor: TensorData): number[] {
  return tensor.shape ? [...tensor.shape] : [tensor.data.length];
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, n) => product * n, 1);
}

/** Awaits a future while passing its poll events on to the enclosing future's listeners. */
async function relayEvents<T>(future: APIFuture<T>, emit: (event: FutureEvent) => void): Promise<T> {
  // events() replays what happened so far and ends when the future settles, so the relay is
  // complete once both are done.
  const relay = (async () => {
    for await (const event of future.events()) emit(event);
  })();
  const [value] = await Promise.all([future, relay]);
  return value;
}
