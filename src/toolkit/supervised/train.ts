/**
 * `trainSupervised`: the supervised fine-tuning driver — epochs over a `SupervisedDataset` on the
 * pipelined `trainLoop`, a learning-rate schedule applied through each step's AdamParams, held-out
 * NLL at a fixed cadence, periodic checkpoints with retention, and exact resume.
 *
 * Step numbers here count steps applied (1 = after the first step), the count checkpoint names
 * (`step-000012`) and `resume.step` use: "eval at step 12" is the weights after 12 steps, and step
 * 0 is the starting weights. The schedule and the dataset are indexed by the step's 0-based index,
 * `step - 1`.
 *
 * Why a resume ends with the same weights as an uninterrupted run: the batch of each step is a pure
 * function of (seed, epoch, index) and the learning rate a pure function of the index, so the
 * resumed run submits exactly the operations the first one would have from that step on; the
 * checkpoint holds the Adam moments (resume with `resumeFromLatest`, which loads the state with its
 * optimizer); and the loop drains before every checkpoint and evaluation, so a checkpoint named
 * `step-N` holds exactly N steps even with steps in flight.
 */
import type { TrainingClient } from "../../clients/training.js";
import { ValidationError, type ValidationIssue } from "../../core/errors.js";
import { ModelInput } from "../../lib/model-input.js";
import type { AdamParams, Datum } from "../../wire/types.js";
import { validateGivenAdam } from "../adam.js";
import { CheckpointManager, type CheckpointManagerOptions } from "../checkpoints/manager.js";
import { evaluateForward } from "../evaluation.js";
import { trainLoop } from "../loop.js";
import type { SupervisedDataset } from "./dataset.js";
import { LR_SCHEDULE_KINDS, type LRScheduleKind, lrSchedule, scheduledAdam } from "./schedules.js";

/**
 * The learning-rate schedule, scaled to `learningRate` and to the run's length (epochs × batches
 * per epoch): a kind, a kind with warmup and floor, or any function of the 0-based step index.
 */
export type ScheduleSpec =
  | LRScheduleKind
  | { kind: LRScheduleKind; warmupSteps?: number; minLR?: number }
  | ((stepIndex: number) => number);

/** The CheckpointManager's options, but for the run (the driver's) and the cadence (`checkpointEvery`). */
export type SupervisedCheckpointOptions = Omit<
  CheckpointManagerOptions,
  "training" | "everySteps" | "everySeconds"
>;

export interface TrainSupervisedOptions {
  /** The run to train (a new one). Give either this or `resume`. */
  trainingClient?: TrainingClient;
  /**
   * Continue a run: the client made from a checkpoint with its optimizer state, and the steps that
   * checkpoint holds — what `resumeFromLatest` returns. Training continues at that step's epoch
   * and batch.
   */
  resume?: { training: TrainingClient; step: number };
  /** The training data: its batches, in its (seeded) order, epoch after epoch. */
  dataset: SupervisedDataset;
  /** Passes over the dataset (default 1). The run has epochs × dataset.batchesPerEpoch steps. */
  epochs?: number;
  /** The base learning rate: the constant one, or the peak of a decay. Not with a schedule function. */
  learningRate?: number;
  /** Default `"constant"`. */
  schedule?: ScheduleSpec;
  /** The other AdamW settings of every step. */
  adam?: Omit<AdamParams, "learning_rate">;
  /** Held-out datums: their NLL is measured at the start, every `evalEvery` steps, and at the end. */
  evalDataset?: readonly Datum[];
  /** Evaluate after every this many steps (counted over the run). 0 or unset: start and end only. */
  evalEvery?: number;
  /** Save a checkpoint after every this many steps (needs `checkpoints`). 0 or unset: never periodically. */
  checkpointEvery?: number;
  /**
   * Where and how to checkpoint (`rest`, `store`, `keepLast`, `keepBest`, …). With it, the run's end
   * is saved too, and, unless `saveOnAbort` is false, the point where `signal` stopped it.
   * The ledger metrics are `train_mean_nll` and, at evaluation steps, `eval_nll` (for keepBest).
   */
  checkpoints?: SupervisedCheckpointOptions;
  /** Save a checkpoint when `signal` stops the run (default true, with `checkpoints`). */
  saveOnAbort?: boolean;
  /** Steps on the server ahead of the one being read (default 2; see trainLoop). */
  inFlight?: number;
  /** Each step's metrics, in order, awaited before later steps are read. */
  onMetrics?: (metrics: SupervisedStepMetrics) => void | Promise<void>;
  /** Each evaluation, the starting one included. */
  onEval?: (evaluation: SupervisedEvaluation) => void | Promise<void>;
  /**
   * Stops the run cleanly: nothing new is submitted, the steps in flight are applied and reported,
   * then (with `checkpoints`) the stopping point is saved and the result says `aborted`.
   */
  signal?: AbortSignal;
}

export interface SupervisedStepMetrics {
  /** Steps applied, this one included (1-based). */
  step: number;
  /** The epoch of this step's batch (0-based). */
  epoch: number;
  /** The index of this step's batch within its epoch. */
  batch: number;
  learningRate: number;
  /** The batch's weighted mean NLL before the update (`loss:sum` / Σ weights). */
  trainMeanNll: number;
  /** Σ weights of the batch's targets: the tokens trained on (for 0/1 weights). */
  lossTokens: number;
  /** Tokens of the batch's model inputs. */
  inputTokens: number;
  /** Datums in the batch. */
  examples: number;
  /**
   * Seconds from the end of the previous step's reporting (or the start) to this step's result: the
   * wait for training, without the evaluations, checkpoints and `onMetrics` of the step before.
   */
  stepSeconds: number;
  /** Held-out NLL after this step, when it was an evaluation step. */
  evalNll?: number;
  /** The checkpoint saved after this step, if any. */
  checkpoint?: string;
  /** The server's metrics of the step (forward_backward and optim_step). */
  server: Record<string, number>;
}

export interface SupervisedEvaluation {
  /** Steps applied when measured (0: the starting weights of a new run). */
  step: number;
  /** Weighted mean NLL of `evalDataset`, nats per token. */
  nll: number;
  perplexity: number;
  /** Weighted target tokens evaluated. */
  tokens: number;
  seconds: number;
}

export interface TrainSupervisedResult {
  training: TrainingClient;
  /** Steps the run started from (0, or `resume.step`). */
  startStep: number;
  /** Steps applied in total when this call returned. */
  step: number;
  /** epochs × batchesPerEpoch. */
  totalSteps: number;
  aborted: boolean;
  evaluations: SupervisedEvaluation[];
  /** Paths of the checkpoints this call saved, in order. */
  checkpoints: string[];
  /** The last step's metrics, if any step ran. */
  last?: SupervisedStepMetrics;
}

/** What the generator knows about a batch when it hands it to the loop. */
interface BatchInfo {
  epoch: number;
  batch: number;
  lossTokens: number;
  inputTokens: number;
  examples: number;
}

/** Trains `dataset` for `epochs` (see the module comment). Bad options throw before any request. */
export async function trainSupervised(options: TrainSupervisedOptions): Promise<TrainSupervisedResult> {
  const { training, startStep, totalSteps, lrAt, dataset, evalEvery, manager } = checkOptions(options);
  const { evalDataset, onMetrics, onEval, signal } = options;
  const adam = options.adam ?? {};

  const evaluations: SupervisedEvaluation[] = [];
  const saved: string[] = [];
  const evaluate = async (step: number): Promise<SupervisedEvaluation | undefined> => {
    if (evalDataset === undefined) return undefined;
    const started = performance.now();
    // Not cancelled by `signal`: an evaluation at a drain point is part of the steps in flight.
    const result = await evaluateForward(training, evalDataset);
    const evaluation = {
      step,
      nll: result.nll,
      perplexity: result.perplexity,
      tokens: result.tokens,
      seconds: (performance.now() - started) / 1000,
    };
    evaluations.push(evaluation);
    await onEval?.(evaluation);
    return evaluation;
  };
  const isEvalPoint = (step: number) =>
    evalDataset !== undefined && ((evalEvery > 0 && step % evalEvery === 0) || step === totalSteps);

  let lastSaved = startStep;

  // Stopped before it started: nothing is sent, not even the starting evaluation.
  const stoppedEarly = signal?.aborted ?? false;
  if (!stoppedEarly) await evaluate(startStep);
  if (stoppedEarly || startStep >= totalSteps) {
    return {
      training,
      startStep,
      step: startStep,
      totalSteps,
      aborted: stoppedEarly,
      evaluations,
      checkpoints: saved,
    };
  }

  const info = new Map<number, BatchInfo>();
  function* batches(): Generator<Datum[]> {
    for (const { step, epoch, batch, data } of dataset.batches(startStep, totalSteps)) {
      info.set(step, { epoch, batch, ...batchCounts(data) });
      yield data;
    }
  }

  let lastRead = performance.now();
  let last: SupervisedStepMetrics | undefined;
  const outcome = await trainLoop(training, batches(), {
    adam: scheduledAdam({ lrAt }, adam),
    inFlight: options.inFlight ?? 2,
    startStep,
    signal,
    // Drain before evaluations and checkpoints, so that they see exactly `index + 1` steps.
    shouldDrain: (index) => isEvalPoint(index + 1) || (manager?.isDue(index + 1) ?? false),
    onStep: async (result) => {
      const now = performance.now();
      const step = result.step + 1;
      const batch = info.get(result.step)!;
      info.delete(result.step);
      const metrics: SupervisedStepMetrics = {
        step,
        ...batch,
        learningRate: lrAt(result.step),
        trainMeanNll: result.metrics.mean_nll ?? Number.NaN,
        stepSeconds: (now - lastRead) / 1000,
        server: result.metrics,
      };
      const ledger: Record<string, number> = { train_mean_nll: metrics.trainMeanNll };
      if (isEvalPoint(step)) {
        const evaluation = (await evaluate(step))!;
        metrics.evalNll = evaluation.nll;
        ledger.eval_nll = evaluation.nll;
      }
      // The end of the run is always saved; maybeSave covers the periodic ones.
      const checkpoint =
        step === totalSteps ? await manager?.save(step, ledger) : await manager?.maybeSave(step, ledger);
      if (checkpoint) {
        metrics.checkpoint = checkpoint.path;
        saved.push(checkpoint.path);
        lastSaved = step;
      }
      last = metrics;
      await onMetrics?.(metrics);
      lastRead = performance.now();
    },
  });

  const step = startStep + outcome.steps;
  if (outcome.aborted && manager !== undefined && options.saveOnAbort !== false && step > lastSaved) {
    // Everything submitted has been applied: the state holds exactly `step` steps.
    const checkpoint = await manager.save(step, last ? { train_mean_nll: last.trainMeanNll } : {});
    saved.push(checkpoint.path);
  }
  const result: TrainSupervisedResult = {
    training,
    startStep,
    step,
    totalSteps,
    aborted: outcome.aborted,
    evaluations,
    checkpoints: saved,
  };
  if (last !== undefined) result.last = last;
  return result;
}

function batchCounts(data: readonly Datum[]): Omit<BatchInfo, "epoch" | "batch"> {
  let lossTokens = 0;
  let inputTokens = 0;
  for (const datum of data) {
    inputTokens += ModelInput.length(datum.model_input);
    const weights = datum.loss_fn_inputs.weights?.data;
    if (weights) for (const w of weights) lossTokens += Number(w);
  }
  return { lossTokens, inputTokens, examples: data.length };
}

interface Plan {
  training: TrainingClient;
  startStep: number;
  totalSteps: number;
  lrAt: (index: number) => number;
  dataset: SupervisedDataset;
  evalEvery: number;
  manager: CheckpointManager | undefined;
}

/** Every option checked, all problems reported at once, before anything is sent. */
function checkOptions(options: TrainSupervisedOptions): Plan {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError([{ path: "options", message: "must be an object" }]);
  }
  const issues: ValidationIssue[] = [];
  const nonNegativeInteger = (value: unknown, path: string): number => {
    if (value === undefined) return 0;
    if (!(typeof value === "number" && Number.isSafeInteger(value) && value >= 0)) {
      issues.push({ path, message: `must be an integer ≥ 0, got ${String(value)}` });
      return 0;
    }
    return value;
  };

  const { trainingClient, resume, dataset } = options;
  let training: TrainingClient | undefined;
  let startStep = 0;
  if (trainingClient !== undefined && resume !== undefined) {
    issues.push({ path: "resume", message: "give either trainingClient (a new run) or resume, not both" });
  } else if (resume !== undefined) {
    if (!isTrainingClient(resume?.training)) {
      issues.push({ path: "resume.training", message: "must be a TrainingClient" });
    } else training = resume.training;
    startStep = nonNegativeInteger(resume?.step, "resume.step");
  } else if (!isTrainingClient(trainingClient)) {
    issues.push({ path: "trainingClient", message: "must be a TrainingClient (or give resume)" });
  } else training = trainingClient;

  let totalSteps = 0;
  const datasetOk =
    typeof dataset === "object" &&
    dataset !== null &&
    typeof dataset.batches === "function" &&
    Number.isSafeInteger(dataset.batchesPerEpoch) &&
    dataset.batchesPerEpoch >= 1;
  if (!datasetOk)
    issues.push({
      path: "dataset",
      message: "must be a SupervisedDataset (supervisedDataset, datasetFrom…)",
    });
  const epochs = options.epochs ?? 1;
  if (!(Number.isSafeInteger(epochs) && epochs >= 1)) {
    issues.push({ path: "epochs", message: `must be an integer ≥ 1, got ${String(epochs)}` });
  } else if (datasetOk) {
    totalSteps = epochs * dataset.batchesPerEpoch;
    if (startStep > totalSteps) {
      issues.push({
        path: "resume.step",
        message: `is ${startStep}, past the run's ${totalSteps} steps (${epochs} epochs × ${dataset.batchesPerEpoch} batches): is it the same dataset?`,
      });
    }
  }

  const evalEvery = nonNegativeInteger(options.evalEvery, "evalEvery");
  const { evalDataset } = options;
  if (evalDataset !== undefined && !(Array.isArray(evalDataset) && evalDataset.length > 0)) {
    issues.push({ path: "evalDataset", message: "must be a non-empty array of datums" });
  }
  if (evalEvery > 0 && evalDataset === undefined) {
    issues.push({ path: "evalEvery", message: "needs evalDataset" });
  }
  const checkpointEvery = nonNegativeInteger(options.checkpointEvery, "checkpointEvery");
  if (checkpointEvery > 0 && options.checkpoints === undefined) {
    issues.push({ path: "checkpointEvery", message: "needs checkpoints ({ rest, … })" });
  }
  if (options.inFlight !== undefined && !(Number.isSafeInteger(options.inFlight) && options.inFlight >= 1)) {
    issues.push({ path: "inFlight", message: `must be an integer ≥ 1, got ${String(options.inFlight)}` });
  }
  for (const name of ["onMetrics", "onEval"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      issues.push({ path: name, message: "must be a function" });
    }
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    issues.push({ path: "signal", message: "must be an AbortSignal" });
  }
  const lrAt = scheduleFunction(options, totalSteps, issues);
  if (issues.length > 0) throw new ValidationError(issues);

  // The AdamW settings with the first step's rate; later rates are checked as each step is sent.
  validateGivenAdam({ ...options.adam, learning_rate: lrAt(startStep) });
  // The manager checks its own options (rest, keepLast, …) when it is made, still before any request.
  const manager =
    options.checkpoints === undefined
      ? undefined
      : new CheckpointManager({
          ...options.checkpoints,
          training: training!,
          ...(checkpointEvery > 0 ? { everySteps: checkpointEvery } : {}),
        });
  return { training: training!, startStep, totalSteps, lrAt, dataset, evalEvery, manager };
}

function scheduleFunction(
  options: TrainSupervisedOptions,
  totalSteps: number,
  issues: ValidationIssue[],
): (index: number) => number {
  const { learningRate, schedule = "constant" } = options;
  if (typeof schedule === "function") {
    if (learningRate !== undefined) {
      issues.push({ path: "learningRate", message: "is set by the schedule function; leave it out" });
    }
    return schedule;
  }
  const spec = typeof schedule === "string" ? { kind: schedule } : schedule;
  if (typeof spec !== "object" || spec === null || !LR_SCHEDULE_KINDS.includes(spec.kind)) {
    issues.push({
      path: "schedule",
      message: `must be ${LR_SCHEDULE_KINDS.join(", ")}, { kind, warmupSteps, minLR } or a function of the step`,
    });
    return () => 0;
  }
  try {
    // lrSchedule checks baseLR itself (reported as learningRate below).
    return lrSchedule({ ...spec, baseLR: learningRate as number, totalSteps: Math.max(totalSteps, 1) }).lrAt;
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    for (const issue of error.issues) {
      issues.push({
        path: issue.path === "baseLR" ? "learningRate" : `schedule.${issue.path}`,
        message: issue.message,
      });
    }
    return () => 0;
  }
}

function isTrainingClient(value: unknown): value is TrainingClient {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as TrainingClient).forwardBackward === "function" &&
    typeof (value as TrainingClient).optimStep === "function"
  );
}
