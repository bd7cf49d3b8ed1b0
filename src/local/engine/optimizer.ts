/**
 * The optimizer of a training run: AdamW or Dimuon, chosen when the run is created and fixed for
 * its lifetime (Tinker's `optimizer_config`). This module dispatches a step to the run's family
 * and lists each family's state tensors in checkpoint order.
 */

import { type AdamSettings, type AdamState, adamwStep, createAdamState } from "./adamw.js";
import { createDimuonState, type DimuonSettings, type DimuonState, dimuonStep } from "./dimuon.js";
import { EngineError, OptimizerMismatchError } from "./errors.js";
import type { Parameter } from "./lora.js";

export type OptimizerFamily = "adamw" | "dimuon";

export const OPTIMIZER_FAMILIES: readonly OptimizerFamily[] = Object.freeze(["adamw", "dimuon"]);

export function isOptimizerFamily(value: unknown): value is OptimizerFamily {
  return value === "adamw" || value === "dimuon";
}

/** The settings of one step; Adam settings without a `type` are AdamW (the pre-Dimuon API). */
export type OptimizerSettings =
  | (AdamSettings & { readonly type?: "adamw" })
  | (DimuonSettings & { readonly type: "dimuon" });

export type OptimizerState =
  | { readonly family: "adamw"; readonly adam: AdamState }
  | { readonly family: "dimuon"; readonly dimuon: DimuonState };

/** How many per-parameter tensor groups each family keeps: Adam's two moments, Dimuon's momentum. */
export const OPTIMIZER_TENSOR_GROUPS: Readonly<Record<OptimizerFamily, number>> = Object.freeze({
  adamw: 2,
  dimuon: 1,
});

export function createOptimizerState(
  family: OptimizerFamily,
  parameters: readonly Parameter[],
): OptimizerState {
  if (family === "adamw") return { family, adam: createAdamState(parameters) };
  if (family === "dimuon") return { family, dimuon: createDimuonState(parameters) };
  throw new EngineError(`unknown optimizer ${JSON.stringify(family)}; expected "adamw" or "dimuon"`);
}

/** The state's tensor groups in checkpoint order (live views). */
export function optimizerTensors(state: OptimizerState): Float64Array[][] {
  return state.family === "adamw"
    ? [state.adam.firstMoments, state.adam.secondMoments]
    : [state.dimuon.momenta];
}

export function optimizerStepCount(state: OptimizerState): number {
  return state.family === "adamw" ? state.adam.step : state.dimuon.step;
}

/** Overwrites the state with a checkpoint's tensor groups and step counter. */
export function restoreOptimizerState(
  state: OptimizerState,
  groups: readonly Float64Array[][],
  step: number,
) {
  optimizerTensors(state).forEach((group, g) => {
    group.forEach((tensor, i) => {
      tensor.set(groups[g][i]);
    });
  });
  if (state.family === "adamw") state.adam.step = step;
  else state.dimuon.step = step;
}

/** Back to the state of a fresh run: zero moments, step 0. */
export function resetOptimizerState(state: OptimizerState): void {
  for (const group of optimizerTensors(state)) for (const tensor of group) tensor.fill(0);
  if (state.family === "adamw") state.adam.step = 0;
  else state.dimuon.step = 0;
}

export interface OptimizerStepReport {
  gradNorm: number;
}

/**
 * One step of the run's optimizer over the accumulated gradients (then zeroed). Settings of the
 * other family are an OptimizerMismatchError, raised before anything changes.
 */
export function optimizerStep(
  state: OptimizerState,
  parameters: readonly Parameter[],
  settings: OptimizerSettings,
  loraRank: number,
): OptimizerStepReport {
  const requested: string = settings.type ?? "adamw";
  if (requested !== state.family) {
    throw new OptimizerMismatchError(
      state.family,
      requested,
      `this training run uses the ${state.family} optimizer (fixed at creation); got ${requested} params`,
    );
  }
  if (state.family === "adamw") return adamwStep(parameters, state.adam, settings as AdamSettings);
  return dimuonStep(parameters, state.dimuon, settings as DimuonSettings, loraRank);
}
