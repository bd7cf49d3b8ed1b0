/**
 * Checkpoint names that carry their step: `<prefix>step-000120`. The step lives in the name so that
 * "the latest checkpoint" and "the step to resume from" are read from the server's checkpoint list
 * alone, with no local state that a crash could lose or leave stale.
 */
import { ValidationError } from "../../core/errors.js";

/** Zero-padded so that names also sort by step in listings and file browsers. */
const STEP_DIGITS = 6;

export function checkpointName(prefix: string, step: number): string {
  return `${prefix}step-${String(step).padStart(STEP_DIGITS, "0")}`;
}

/** The step encoded in `name`, or undefined when the name is not `<prefix>step-<digits>`. */
export function stepFromCheckpointName(name: string, prefix: string): number | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const match = /^step-(\d+)$/.exec(name.slice(prefix.length));
  if (!match) return undefined;
  const step = Number(match[1]);
  return Number.isSafeInteger(step) ? step : undefined;
}

export function validatePrefix(prefix: unknown, field = "prefix"): string {
  if (typeof prefix !== "string" || prefix.includes("/")) {
    throw new ValidationError([
      { path: field, message: `must be a string without "/", got ${String(prefix)}` },
    ]);
  }
  return prefix;
}

export function validateStep(step: unknown, field = "step"): number {
  if (typeof step !== "number" || !Number.isSafeInteger(step) || step < 0) {
    throw new ValidationError([
      { path: field, message: `must be a non-negative integer, got ${String(step)}` },
    ]);
  }
  return step;
}
