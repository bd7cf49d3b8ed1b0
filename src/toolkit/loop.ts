/**
 * The pipelined training loop. Two rules the server's clock makes worth a helper (FEATURES.md §5.2):
 *
 * 1. A step's `forward_backward` and `optim_step` are submitted together, before either result is
 *    awaited. Awaiting the forward_backward first leaves the optim_step for the next server cycle.
 * 2. The next step is submitted before this one's results are read, so the server never idles while
 *    the client looks at metrics, logs or decides what to send next.
 *
 * The server applies a run's operations in submission (seq_id) order, so pipelining changes when
 * things are sent, never what is computed: losses and weights are the same as a sequential loop's.
 */

import type { TrainingClient } from "../clients/training.js";
import { ValidationError } from "../core/errors.js";
import type { APIFuture } from "../futures/api-future.js";
import type { OptimStepResponse } from "../wire/schemas.js";
import type { AdamParams, Datum, DatumInput, ForwardBackwardOutput, LossFnType } from "../wire/types.js";
import { validateGivenAdam } from "./adam.js";
import { type LRSchedule, lrSchedule, scheduledAdam } from "./supervised/schedules.js";

export interface TrainStepResult {
  /** The step's index: `startStep` for the loop's first batch, then +1 per batch. */
  step: number;
  /**
   * The forward_backward metrics (`loss:sum`, …), the optim_step ones (`grad_norm:mean`, …; under
   * `optim/<name>` if a name clashes), and, for cross_entropy, `mean_nll`: `loss:sum` over the sum
   * of the batch's weights.
   */
  metrics: Record<string, number>;
  output: ForwardBackwardOutput;
  optim: OptimStepResponse;
}

export interface TrainStepOptions {
  /** The step's AdamW settings (`optimStep`); `learning_rate` as in docs/GUIDE-DATUM.md. */
  adam: AdamParams;
  /** Default `"cross_entropy"`. */
  lossFn?: LossFnType;
  /** The loss's `loss_fn_config` (PPO/CISPO clip thresholds, DRO `beta`). */
  lossFnConfig?: Record<string, number>;
  /**
   * Checked before anything is sent: an aborted signal submits nothing. Once submitted, a step runs
   * to completion on the server whatever the client does, so its results are still awaited (an
   * abort cannot make a half-applied step).
   */
  signal?: AbortSignal;
  /** The `step` reported in the result (default 0). */
  step?: number;
}

/** A step whose two operations have been submitted (taken their seq_ids) but not yet read. */
interface SubmittedStep {
  step: number;
  /** Settles once both requests were accepted by the server. */
  accepted: Promise<unknown>;
  result: Promise<TrainStepResult>;
}

/**
 * One training step: forward_backward and optim_step submitted in the same cycle, then both awaited.
 * Bad input (data, loss, Adam parameters) throws a ValidationError before either is sent, so a step
 * is never half-submitted.
 */
export async function trainStep(
  training: TrainingClient,
  data: readonly Datum[],
  options: TrainStepOptions,
): Promise<TrainStepResult> {
  options.signal?.throwIfAborted();
  return submitStep(training, data, "data", options.step ?? 0, options.adam, options).result;
}

function submitStep(
  training: TrainingClient,
  data: readonly (Datum | DatumInput)[],
  dataPath: string,
  step: number,
  adam: AdamParams,
  options: { lossFn?: LossFnType; lossFnConfig?: Record<string, number> },
): SubmittedStep {
  if (!Array.isArray(data) || data.length === 0) {
    throw new ValidationError([{ path: dataPath, message: "must be a non-empty array of datums" }]);
  }
  checkAdam(adam, step);
  const lossFn = options.lossFn ?? "cross_entropy";
  // forwardBackward validates the batch and throws before taking a seq_id; optimStep cannot fail
  // validation after that (checked above), so either both are queued or neither is.
  const fb: APIFuture<ForwardBackwardOutput> = training.forwardBackward(
    data as DatumInput[],
    lossFn,
    options.lossFnConfig,
  );
  const optimFuture: APIFuture<OptimStepResponse> = training.optimStep(adam);
  const accepted = Promise.all([fb.requestId, optimFuture.requestId]);
  const result = Promise.all([fb, optimFuture]).then(([output, optim]) => ({
    step,
    metrics: stepMetrics(output, optim, lossFn === "cross_entropy" ? totalWeight(data) : undefined),
    output,
    optim,
  }));
  // Failures are reported by whoever reads `result`; the loop may stop before reading it.
  accepted.catch(() => {});
  result.catch(() => {});
  return { step, accepted, result };
}

function checkAdam(adam: AdamParams, step: number): void {
  if (typeof adam !== "object" || adam === null) {
    throw new ValidationError([{ path: `adam (step ${step})`, message: "must be an AdamParams object" }]);
  }
  validateGivenAdam(adam);
}

function totalWeight(data: readonly (Datum | DatumInput)[]): number {
  let total = 0;
  for (const d of data) {
    const weights = d.loss_fn_inputs.weights?.data;
    if (!weights) continue;
    for (let i = 0; i < weights.length; i++) total += Number(weights[i]);
  }
  return total;
}

function stepMetrics(
  output: ForwardBackwardOutput,
  optim: OptimStepResponse,
  weightSum: number | undefined,
): Record<string, number> {
  const metrics: Record<string, number> = { ...output.metrics };
  for (const [name, value] of Object.entries(optim.metrics ?? {})) {
    metrics[name in metrics ? `optim/${name}` : name] = value;
  }
  const lossSum = output.metrics["loss:sum"];
  if (weightSum !== undefined && weightSum > 0 && lossSum !== undefined && !("mean_nll" in metrics)) {
    metrics.mean_nll = lossSum / weightSum;
  }
  return metrics;
}

export interface TrainLoopOptions {
  /** Adam parameters, or a function of the step index for a learning-rate schedule. */
  adam: AdamParams | ((step: number) => AdamParams);
  /** Default `"cross_entropy"`. */
  lossFn?: LossFnType;
  /** The loss's `loss_fn_config` (PPO/CISPO clip thresholds, DRO `beta`). */
  lossFnConfig?: Record<string, number>;
  /**
   * Steps submitted and not yet read (default 2). With 1 the loop is sequential (each step is still
   * one cycle: forward_backward and optim_step go together); with 2 the next step is on the server
   * while this one's results are read and `onStep` runs.
   */
  inFlight?: number;
  /** Index of the first batch's step, e.g. the resumed checkpoint's step count (default 0). */
  startStep?: number;
  /**
   * Called with each step's result, in step order, and awaited before any later step's result is
   * read. With `inFlight > 1` the following steps may already be submitted when it runs, so
   * something it submits (a `saveState`) lands after them, not right after this step; use
   * `shouldDrain` / `drainEvery` for the steps where it must land right after.
   */
  onStep?: (result: TrainStepResult) => void | Promise<void>;
  /**
   * Asked once step `step` has been submitted, before anything later is: true makes it a drain
   * point, after which nothing is submitted until its `onStep` has returned. A checkpoint saved in that `onStep` then holds
   * exactly the steps up to and including `step` — `step + 1` steps counted from 0 — which is what
   * resuming with `startStep: step + 1` needs. A time-based policy works too (it is asked at
   * submission time, with the step's index).
   */
  shouldDrain?: (step: number) => boolean;
  /** Shorthand for `shouldDrain: (step) => (step + 1) % drainEvery === 0` (every n-th step by count). */
  drainEvery?: number;
  /**
   * Stops the loop cleanly: no further step is submitted; the steps already submitted (always both
   * of their operations) run to completion, are read, and get their `onStep`. The loop then resolves
   * with `aborted: true` and the number of steps applied.
   */
  signal?: AbortSignal;
}

export interface TrainLoopResult {
  /** Steps applied and read in this call (not counting `startStep`). */
  steps: number;
  /** The last step's result, if any step ran. */
  last?: TrainStepResult;
  /** True when `signal` stopped the loop before the batches ran out. */
  aborted: boolean;
}

/**
 * Trains on `batches`, one step per batch, keeping up to `inFlight` steps submitted ahead of the one
 * being read. Each step's forward_backward and optim_step are submitted together; step k+1's are
 * sent (and accepted) before step k's results are read.
 *
 * Errors: the first failure (a step, `onStep`, the batch iterator, the `adam` or `shouldDrain`
 * function) stops submission. The steps already submitted are awaited — they run on the server
 * regardless — and those before the first failed step still get their `onStep`, in order, so
 * `onStep` has seen exactly the steps applied up to the first failure. Then the first error is thrown.
 */
export async function trainLoop(
  training: TrainingClient,
  batches: Iterable<readonly Datum[]> | AsyncIterable<readonly Datum[]>,
  options: TrainLoopOptions,
): Promise<TrainLoopResult> {
  const inFlight = options.inFlight ?? 2;
  const startStep = options.startStep ?? 0;
  checkLoopOptions(inFlight, startStep, options.drainEvery);
  const drainEvery = options.drainEvery;
  const shouldDrain =
    options.shouldDrain ??
    (drainEvery === undefined ? () => false : (step: number) => (step + 1) % drainEvery === 0);
  const adamFor = typeof options.adam === "function" ? options.adam : () => options.adam as AdamParams;
  const { signal, onStep } = options;

  const pending: SubmittedStep[] = [];
  let steps = 0;
  let last: TrainStepResult | undefined;
  let failure: { error: unknown } | undefined;
  let aborted = false;
  let reporting = true;
  const fail = (error: unknown) => {
    failure ??= { error };
  };

  /**
   * Reads the oldest submitted step and reports it — only while every earlier step was applied and
   * reported, so that `onStep` always sees an unbroken prefix of the steps.
   */
  const readOldest = async () => {
    const submitted = pending.shift()!;
    let result: TrainStepResult;
    try {
      result = await submitted.result;
    } catch (error) {
      fail(error);
      reporting = false;
      return;
    }
    if (!reporting) return;
    steps++;
    last = result;
    try {
      await onStep?.(result);
    } catch (error) {
      fail(error);
      reporting = false;
    }
  };

  const iterator =
    Symbol.asyncIterator in batches
      ? (batches as AsyncIterable<readonly Datum[]>)[Symbol.asyncIterator]()
      : (batches as Iterable<readonly Datum[]>)[Symbol.iterator]();
  let exhausted = false;
  for (let step = startStep; !failure; step++) {
    if (signal?.aborted) {
      aborted = true;
      break;
    }
    let submitted: SubmittedStep;
    try {
      const next = await iterator.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      // The batch may have taken a while to produce: look at the signal again before sending.
      if (signal?.aborted) {
        aborted = true;
        break;
      }
      const batchPath = `batches[${step - startStep}]`;
      submitted = submitStep(training, next.value, batchPath, step, adamFor(step), options);
    } catch (error) {
      fail(error);
      break;
    }
    pending.push(submitted);
    // Wait until this step is on the server before reading older ones, so "submitted ahead" holds
    // for real. A failed submission surfaces when the step is read, after the steps before it.
    await submitted.accepted.catch(() => {});
    let drain = false;
    try {
      drain = shouldDrain(step);
    } catch (error) {
      fail(error);
    }
    while (!failure && (pending.length >= inFlight || (drain && pending.length > 0))) await readOldest();
  }
  // Steps already submitted run on the server whatever happens here: read (and report) them all, so
  // nothing of this loop is still in flight when it returns or throws.
  while (pending.length > 0) await readOldest();
  if (!exhausted) await closeIterator(iterator);
  if (failure) throw failure.error;
  return last === undefined ? { steps, aborted } : { steps, last, aborted };
}

async function closeIterator(
  iterator: Iterator<readonly Datum[]> | AsyncIterator<readonly Datum[]>,
): Promise<void> {
  try {
    await iterator.return?.();
  } catch {
    // A failing cleanup of the batch source must not hide the loop's own outcome.
  }
}

function checkLoopOptions(inFlight: number, startStep: number, drainEvery: number | undefined): void {
  const issues = [];
  if (!(Number.isInteger(inFlight) && inFlight >= 1)) {
    issues.push({ path: "options.inFlight", message: `must be an integer ≥ 1, got ${String(inFlight)}` });
  }
  if (!(Number.isInteger(startStep) && startStep >= 0)) {
    issues.push({ path: "options.startStep", message: `must be an integer ≥ 0, got ${String(startStep)}` });
  }
  if (drainEvery !== undefined && !(Number.isInteger(drainEvery) && drainEvery >= 1)) {
    issues.push({
      path: "options.drainEvery",
      message: `must be an integer ≥ 1, got ${String(drainEvery)}`,
    });
  }
  if (issues.length > 0) throw new ValidationError(issues);
}

export interface LinearWarmupCosineOptions {
  /** Peak learning rate, reached at the end of the warmup. */
  peak: number;
  /** Total number of steps the schedule spans; after it the rate stays at `floor`. */
  totalSteps: number;
  /** Steps of linear warmup from 0 (exclusive) to `peak` (default 0). */
  warmupSteps?: number;
  /** Rate at the end of the cosine decay (default 0). */
  floor?: number;
  /** Other Adam parameters, copied into every step's. */
  adam?: Omit<AdamParams, "learning_rate">;
}

/**
 * A learning-rate schedule for `trainLoop`'s `adam`: linear warmup to `peak` over `warmupSteps`
 * (step 0 gets `peak / warmupSteps`, never 0, so the first step is not wasted), then cosine decay to
 * `floor` at `totalSteps`. The `cosine` kind of `lrSchedule` (supervised/schedules.ts), under the
 * names this function has always had.
 */
export function linearWarmupCosine(options: LinearWarmupCosineOptions): (step: number) => AdamParams {
  const { peak, totalSteps, warmupSteps = 0, floor = 0, adam = {} } = options;
  let schedule: LRSchedule;
  try {
    schedule = lrSchedule({ kind: "cosine", baseLR: peak, minLR: floor, totalSteps, warmupSteps });
  } catch (error) {
    // Report the problems under this function's own option names.
    if (!(error instanceof ValidationError)) throw error;
    const names: Record<string, string> = { baseLR: "peak", minLR: "floor" };
    throw new ValidationError(
      error.issues.map((issue) => ({
        path: names[issue.path] ?? issue.path,
        message: issue.message.replace("baseLR", "peak"),
      })),
    );
  }
  return scheduledAdam(schedule, adam);
}
