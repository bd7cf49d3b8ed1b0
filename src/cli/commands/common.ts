/** Small helpers shared by the command modules. */
import type { CallOptions } from "../../index.js";
import type { CommandContext } from "../app.js";
import { CliError, UsageError } from "../errors.js";

/** `{ timeout }` from --timeout, for every SDK call (the SDK's own policy without it). */
export function callOptions(ctx: CommandContext): CallOptions {
  return ctx.global.timeoutMs === undefined ? {} : { timeout: ctx.global.timeoutMs };
}

/** A `tinker://<run>/<kind>/<name>` path, split; a usage error otherwise. */
export function parseCheckpointPath(path: string): { runId: string; checkpointId: string } {
  const match = /^tinker:\/\/([^/]+)\/((?:weights|sampler_weights)\/[^/]+)$/.exec(path);
  if (!match) {
    throw new UsageError(
      `invalid checkpoint path "${path}": expected tinker://<run-id>/weights/<name> or tinker://<run-id>/sampler_weights/<name>`,
    );
  }
  return { runId: match[1], checkpointId: match[2] };
}

/** An integer option ≥ `min`, or `fallback` when absent. */
export function integerOption(ctx: CommandContext, name: string, fallback: number, min = 0): number {
  const text = ctx.values[name] as string | undefined;
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === "" || !Number.isInteger(value) || value < min) {
    const wanted =
      min === 1
        ? "a positive integer"
        : min === 0
          ? "a non-negative integer"
          : `an integer of at least ${min}`;
    throw new UsageError(`--${name} must be ${wanted}, got ${text.trim() === "" ? `"${text}"` : text}`);
  }
  return value;
}

/** A number option, or undefined when absent. */
export function numberOption(ctx: CommandContext, name: string): number | undefined {
  const text = ctx.values[name] as string | undefined;
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) {
    throw new UsageError(`--${name} must be a number, got ${text.trim() === "" ? `"${text}"` : text}`);
  }
  return value;
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

export { CliError };
