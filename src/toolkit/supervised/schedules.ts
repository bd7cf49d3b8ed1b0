/**
 * Learning-rate schedules as pure functions of the step index: `lrSchedule(options).lrAt(step)`.
 * They hold no state, so a resumed run that starts at step k gets exactly the rates the
 * uninterrupted run used from step k on — the schedule is part of what makes a resume exact.
 *
 * Every kind can start with a linear warmup: step s < warmupSteps gets baseLR·(s + 1)/warmupSteps
 * (never 0, so the first step is not wasted). After it:
 * - `constant`: baseLR;
 * - `linear`: from baseLR down to minLR at `totalSteps`, linearly;
 * - `cosine`: from baseLR down to minLR at `totalSteps`, along half a cosine.
 * The decays reach minLR at step `totalSteps` (one past the last step of a run of that length, as in
 * the cookbook, where the last step still trains a little) and stay there.
 */

import { ValidationError, type ValidationIssue } from "../../core/errors.js";
import type { AdamParams } from "../../wire/types.js";

export const LR_SCHEDULE_KINDS = ["constant", "linear", "cosine"] as const;
export type LRScheduleKind = (typeof LR_SCHEDULE_KINDS)[number];

export interface LRScheduleOptions {
  /** `constant`, `linear` (decay) or `cosine` (decay); each with optional warmup. */
  kind: LRScheduleKind;
  /** The rate after warmup (the peak of the decays). */
  baseLR: number;
  /** Steps the decay spans (required for `linear` and `cosine`; the run's length, usually). */
  totalSteps?: number;
  /** Steps of linear warmup up to baseLR (default 0); at most `totalSteps`. */
  warmupSteps?: number;
  /** Where `linear` and `cosine` end (default 0); not allowed for `constant`. */
  minLR?: number;
}

export interface LRSchedule {
  readonly kind: LRScheduleKind;
  readonly baseLR: number;
  readonly totalSteps: number | undefined;
  readonly warmupSteps: number;
  readonly minLR: number;
  /** The learning rate of step `step` (0-based, counted over the whole run, resumes included). */
  lrAt(step: number): number;
}

/** Validates the options (ValidationError) and returns the schedule. */
export function lrSchedule(options: LRScheduleOptions): LRSchedule {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError([{ path: "schedule", message: "must be an object { kind, baseLR, … }" }]);
  }
  const { kind, baseLR, totalSteps, warmupSteps = 0, minLR } = options;
  const issues: ValidationIssue[] = [];
  if (!LR_SCHEDULE_KINDS.includes(kind)) {
    issues.push({
      path: "kind",
      message: `must be one of ${LR_SCHEDULE_KINDS.join(", ")}, got ${String(kind)}`,
    });
  }
  if (!(typeof baseLR === "number" && Number.isFinite(baseLR) && baseLR >= 0)) {
    issues.push({ path: "baseLR", message: `must be a finite number ≥ 0, got ${String(baseLR)}` });
  }
  const decays = kind === "linear" || kind === "cosine";
  if (totalSteps === undefined) {
    if (decays) issues.push({ path: "totalSteps", message: `is required by the ${kind} schedule` });
  } else if (!(Number.isSafeInteger(totalSteps) && totalSteps >= 1)) {
    issues.push({ path: "totalSteps", message: `must be an integer ≥ 1, got ${String(totalSteps)}` });
  }
  if (!(Number.isSafeInteger(warmupSteps) && warmupSteps >= 0)) {
    issues.push({ path: "warmupSteps", message: `must be an integer ≥ 0, got ${String(warmupSteps)}` });
  } else if (typeof totalSteps === "number" && warmupSteps > totalSteps) {
    issues.push({
      path: "warmupSteps",
      message: `must be at most totalSteps (${totalSteps}), got ${warmupSteps}`,
    });
  }
  if (minLR !== undefined) {
    if (kind === "constant") {
      issues.push({ path: "minLR", message: "applies to the linear and cosine schedules only" });
    } else if (!(typeof minLR === "number" && Number.isFinite(minLR) && minLR >= 0 && minLR <= baseLR)) {
      issues.push({ path: "minLR", message: `must be a number in [0, baseLR], got ${String(minLR)}` });
    }
  }
  if (issues.length > 0) throw new ValidationError(issues);

  const floor = minLR ?? 0;
  const decay = (progress: number): number => {
    if (kind === "linear") return floor + (baseLR - floor) * (1 - progress);
    return floor + ((baseLR - floor) * (1 + Math.cos(Math.PI * progress))) / 2;
  };
  return {
    kind,
    baseLR,
    totalSteps,
    warmupSteps,
    minLR: floor,
    lrAt(step: number): number {
      if (!(Number.isSafeInteger(step) && step >= 0)) {
        throw new ValidationError([{ path: "step", message: `must be an integer ≥ 0, got ${String(step)}` }]);
      }
      if (step < warmupSteps) return (baseLR * (step + 1)) / warmupSteps;
      if (kind === "constant") return baseLR;
      const total = totalSteps!;
      if (step >= total) return floor;
      return decay((step - warmupSteps) / (total - warmupSteps));
    },
  };
}

/** `trainLoop`'s `adam` for a schedule: the other AdamW settings, with the step's learning rate. */
export function scheduledAdam(
  schedule: Pick<LRSchedule, "lrAt">,
  adam: Omit<AdamParams, "learning_rate"> = {},
): (step: number) => AdamParams {
  return (step) => ({ ...adam, learning_rate: schedule.lrAt(step) });
}
