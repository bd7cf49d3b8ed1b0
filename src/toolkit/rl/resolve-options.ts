/**
 * trainRL's option checks: every mistake is reported (all at once, with the option's path) as a
 * ValidationError before the driver sends any request; defaults are applied here. Internal (not
 * exported from the toolkit).
 */
import { ValidationError, type ValidationIssue } from "../../core/errors.js";
import { parseTinkerPath } from "../../lib/tinker-path.js";
import type { AdamParams } from "../../wire/types.js";
import { validateGivenAdam } from "../adam.js";
import { nameOf } from "../checkpoints/listing.js";
import { stepFromCheckpointName, validatePrefix } from "../checkpoints/names.js";
import type { RLDataset } from "./env.js";
import type { RLLossFn, TrainRLOptions } from "./options.js";
import { DEFAULT_MAX_TURNS } from "./rollouts.js";

const RL_LOSSES: readonly RLLossFn[] = ["importance_sampling", "ppo", "cispo", "dro"];

/** The options after validation, with defaults applied. */
export interface ResolvedRLOptions {
  dataset: RLDataset;
  startStep: number | undefined;
  resume: { path: string; step: number } | undefined;
  endStep: number;
  lossFn: RLLossFn;
  adamFor: (step: number) => AdamParams;
  maxStaleness: number;
  minibatches: number;
  maxTurns: number;
  temperature: number;
  removeConstantRewardGroups: boolean;
}

const isPositiveInteger = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 1;
const isNonNegativeInteger = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
const isFiniteNumber = (value: unknown): value is number =>
  typeof value === "number" && Number.isFinite(value);

/** Checks every option (collecting all problems) and resolves defaults; throws a ValidationError. */
export function resolveRLOptions(options: TrainRLOptions): ResolvedRLOptions {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError([{ path: "options", message: "must be an object" }]);
  }
  const issues: ValidationIssue[] = [];
  const issue = (path: string, message: string) => issues.push({ path, message });
  const got = (value: unknown) => `got ${typeof value === "string" ? JSON.stringify(value) : String(value)}`;

  // The run.
  const { training, service } = options;
  if (training !== undefined && typeof training?.forwardBackward !== "function") {
    issue("training", "must be a TrainingClient");
  }
  if (service !== undefined && typeof service?.createLoraTrainingClient !== "function") {
    issue("service", "must be a ServiceClient");
  }
  if (training === undefined && service === undefined)
    issue("training", "give a TrainingClient, or a service");
  if (
    training !== undefined &&
    (service !== undefined || options.baseModel !== undefined || options.resumeFrom !== undefined)
  ) {
    issue("training", "give either training, or service with baseModel / resumeFrom, not both");
  }
  if (training === undefined && service !== undefined) {
    const hasBase = options.baseModel !== undefined;
    const hasResume = options.resumeFrom !== undefined;
    if (hasBase === hasResume) issue("baseModel", "give exactly one of baseModel (a new run) and resumeFrom");
    if (hasBase && (typeof options.baseModel !== "string" || options.baseModel === "")) {
      issue("baseModel", `must be a non-empty string, ${got(options.baseModel)}`);
    }
  }
  if (
    options.lora !== undefined &&
    (typeof options.lora !== "object" || options.lora === null || options.baseModel === undefined)
  ) {
    issue("lora", "must be an object, used with service and baseModel");
  }
  let resume: { path: string; step: number } | undefined;
  if (options.resumeFrom !== undefined) {
    const prefix = options.checkpoint?.prefix ?? "";
    resume = resumeTarget(options.resumeFrom, typeof prefix === "string" ? prefix : "", issue);
    if (options.startStep !== undefined) issue("startStep", "comes from resumeFrom; do not give both");
  }
  if (options.startStep !== undefined && !isNonNegativeInteger(options.startStep)) {
    issue("startStep", `must be an integer ≥ 0, ${got(options.startStep)}`);
  }
  if (options.maxSteps !== undefined && !isNonNegativeInteger(options.maxSteps)) {
    issue("maxSteps", `must be an integer ≥ 0, ${got(options.maxSteps)}`);
  }

  // The data.
  const { dataset } = options;
  if (typeof dataset !== "object" || dataset === null || typeof dataset.getBatch !== "function") {
    issue("dataset", "must be an RLDataset ({ length, getBatch(index) })");
  } else if (!isNonNegativeInteger(dataset.length)) {
    issue("dataset.length", `must be an integer ≥ 0, ${got(dataset.length)}`);
  }
  if (options.groupSize !== undefined && !isPositiveInteger(options.groupSize)) {
    issue("groupSize", `must be a positive integer, ${got(options.groupSize)}`);
  }

  // The loss and optimizer.
  const lossFn = options.lossFn ?? "importance_sampling";
  if (!RL_LOSSES.includes(lossFn)) issue("lossFn", `must be one of ${RL_LOSSES.join(", ")}, ${got(lossFn)}`);
  if (options.lossFnConfig !== undefined) {
    if (typeof options.lossFnConfig !== "object" || options.lossFnConfig === null) {
      issue("lossFnConfig", "must be an object of numbers");
    } else {
      for (const [name, value] of Object.entries(options.lossFnConfig)) {
        if (!isFiniteNumber(value)) issue(`lossFnConfig.${name}`, `must be a finite number, ${got(value)}`);
      }
    }
  }
  let adamFor: (step: number) => AdamParams = () => ({});
  if (options.learningRate !== undefined && options.adam !== undefined) {
    issue("learningRate", "give learningRate or adam, not both");
  } else if (options.adam === undefined && options.learningRate === undefined) {
    issue("learningRate", "is required (or give adam)");
  } else if (options.learningRate !== undefined) {
    if (!(isFiniteNumber(options.learningRate) && options.learningRate >= 0)) {
      issue("learningRate", `must be a finite number ≥ 0, ${got(options.learningRate)}`);
    }
    const lr = options.learningRate;
    adamFor = () => ({ learning_rate: lr });
  } else if (typeof options.adam === "function") {
    const schedule = options.adam;
    adamFor = (step) => {
      const adam = schedule(step);
      checkAdam(adam, `adam(${step})`);
      return adam;
    };
  } else {
    const adam = options.adam!;
    collect(issues, () => checkAdam(adam, "adam"));
    adamFor = () => adam;
  }

  // Sampling.
  if (!isPositiveInteger(options.maxTokens))
    issue("maxTokens", `must be a positive integer, ${got(options.maxTokens)}`);
  const temperature = options.temperature ?? 1;
  if (!(isFiniteNumber(temperature) && temperature >= 0))
    issue("temperature", `must be a finite number ≥ 0, ${got(temperature)}`);
  if (options.seed !== undefined && !Number.isSafeInteger(options.seed))
    issue("seed", `must be a safe integer, ${got(options.seed)}`);
  const maxTurns = options.maxTurns ?? DEFAULT_MAX_TURNS;
  if (!isPositiveInteger(maxTurns)) issue("maxTurns", `must be a positive integer, ${got(maxTurns)}`);
  for (const flag of ["normalizeAdvantages", "removeConstantRewardGroups"] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== "boolean")
      issue(flag, `must be a boolean, ${got(options[flag])}`);
  }

  // KL.
  if (options.kl !== undefined) {
    const kl = options.kl;
    if (typeof kl !== "object" || kl === null) issue("kl", "must be { reference, coefficient, discount? }");
    else {
      if (typeof kl.reference?.computeLogprobs !== "function")
        issue("kl.reference", "must be a SamplingClient");
      if (!(isFiniteNumber(kl.coefficient) && kl.coefficient >= 0)) {
        issue("kl.coefficient", `must be a finite number ≥ 0, ${got(kl.coefficient)}`);
      }
      if (
        kl.discount !== undefined &&
        !(isFiniteNumber(kl.discount) && kl.discount >= 0 && kl.discount < 1)
      ) {
        issue("kl.discount", `must be a number in [0, 1), ${got(kl.discount)}`);
      }
    }
  }

  // Mode.
  const mode = options.mode ?? "sync";
  if (mode !== "sync" && mode !== "async") issue("mode", `must be "sync" or "async", ${got(mode)}`);
  let maxStaleness = mode === "async" ? (options.maxStaleness ?? 1) : 0;
  if (options.maxStaleness !== undefined) {
    if (mode !== "async") issue("maxStaleness", 'applies to mode "async" only (sync is staleness 0)');
    else if (!isNonNegativeInteger(options.maxStaleness))
      issue("maxStaleness", `must be an integer ≥ 0, ${got(options.maxStaleness)}`);
  }
  if (!isNonNegativeInteger(maxStaleness)) maxStaleness = 0;
  const minibatches = options.minibatches ?? 1;
  if (!isPositiveInteger(minibatches))
    issue("minibatches", `must be a positive integer, ${got(minibatches)}`);

  // Checkpoints and callbacks.
  const checkpoint = options.checkpoint;
  if (checkpoint !== undefined) {
    if (typeof checkpoint !== "object" || checkpoint === null)
      issue("checkpoint", "must be { everySteps, rest, … }");
    else {
      if (!isPositiveInteger(checkpoint.everySteps)) {
        issue("checkpoint.everySteps", `must be a positive integer, ${got(checkpoint.everySteps)}`);
      }
      if (typeof checkpoint.rest?.listCheckpoints !== "function")
        issue("checkpoint.rest", "must be a RestClient");
      if (checkpoint.keepLast !== undefined && !isPositiveInteger(checkpoint.keepLast)) {
        issue("checkpoint.keepLast", `must be a positive integer, ${got(checkpoint.keepLast)}`);
      }
      if (checkpoint.prefix !== undefined)
        collect(issues, () => validatePrefix(checkpoint.prefix, "checkpoint.prefix"));
    }
  }
  if (options.onMetrics !== undefined && typeof options.onMetrics !== "function")
    issue("onMetrics", "must be a function");
  if (options.signal !== undefined && typeof options.signal?.aborted !== "boolean")
    issue("signal", "must be an AbortSignal");

  if (issues.length > 0) throw new ValidationError(issues);
  const endStep = Math.min(dataset.length, options.maxSteps ?? Number.POSITIVE_INFINITY);
  return {
    dataset,
    startStep: options.startStep,
    resume,
    endStep,
    lossFn,
    adamFor,
    maxStaleness,
    minibatches,
    maxTurns,
    temperature,
    removeConstantRewardGroups: options.removeConstantRewardGroups ?? options.kl === undefined,
  };
}

function collect(issues: ValidationIssue[], check: () => void): void {
  try {
    check();
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    issues.push(...error.issues);
  }
}

function checkAdam(adam: AdamParams, path: string): void {
  if (typeof adam !== "object" || adam === null) {
    throw new ValidationError([{ path, message: "must be an AdamParams object" }]);
  }
  try {
    validateGivenAdam(adam);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    // validateAdamParams names fields `adam_params.<field>`; report them under this option's path.
    throw new ValidationError(
      error.issues.map((i) => ({ ...i, path: i.path.replace(/^adam_params/, path) })),
    );
  }
}

/** The checkpoint to resume from and its step (read from a `<prefix>step-N` name when only a path is given). */
function resumeTarget(
  resumeFrom: string | { path: string; step: number },
  prefix: string,
  issue: (path: string, message: string) => void,
): { path: string; step: number } | undefined {
  const path = typeof resumeFrom === "string" ? resumeFrom : resumeFrom?.path;
  let parsed: ReturnType<typeof parseTinkerPath>;
  try {
    parsed = parseTinkerPath(path);
  } catch {
    issue(
      "resumeFrom",
      `must be a training checkpoint path (tinker://<run>/weights/<name>), got ${JSON.stringify(path)}`,
    );
    return undefined;
  }
  if (parsed.checkpointType !== "training") {
    issue(
      "resumeFrom",
      "must be a training checkpoint (weights/…, with optimizer state), not sampler weights",
    );
    return undefined;
  }
  if (typeof resumeFrom === "object") {
    if (!isNonNegativeInteger(resumeFrom.step)) {
      issue("resumeFrom.step", `must be an integer ≥ 0, got ${String(resumeFrom.step)}`);
      return undefined;
    }
    return { path, step: resumeFrom.step };
  }
  const name = nameOf(parsed.checkpointId);
  const step = stepFromCheckpointName(name, prefix);
  if (step === undefined) {
    issue("resumeFrom", `names no step (expected ${prefix}step-N); pass { path, step } instead`);
    return undefined;
  }
  return { path, step };
}
