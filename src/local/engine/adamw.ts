/**
 * AdamW (Loshchilov & Hutter): Adam with bias-corrected moments and weight decay decoupled from
 * the gradient, preceded by optional clipping of the global gradient norm — the optimizer
 * behind Tinker's optim_step.
 */

import { EngineError } from "./errors.js";
import type { Parameter } from "./lora.js";

export interface AdamSettings {
  learningRate: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global L2 norm of all gradients to this value; 0 (or less) disables clipping. */
  gradClipNorm: number;
}

/** Tinker's AdamParams defaults. */
export const DEFAULT_ADAM_SETTINGS: Readonly<AdamSettings> = Object.freeze({
  learningRate: 1e-4,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weightDecay: 0,
  gradClipNorm: 0,
});

/** First and second moments of every parameter plus the step counter. */
export interface AdamState {
  step: number;
  readonly firstMoments: Float64Array[];
  readonly secondMoments: Float64Array[];
}

export function createAdamState(parameters: readonly Parameter[]): AdamState {
  return {
    step: 0,
    firstMoments: parameters.map((p) => new Float64Array(p.value.length)),
    secondMoments: parameters.map((p) => new Float64Array(p.value.length)),
  };
}

export function validateAdamSettings(settings: AdamSettings): void {
  const check = (name: string, ok: boolean, value: number) => {
    if (!ok) throw new EngineError(`adam: invalid ${name} ${value}`);
  };
  const { learningRate, beta1, beta2, eps, weightDecay, gradClipNorm } = settings;
  check("learning_rate", Number.isFinite(learningRate) && learningRate >= 0, learningRate);
  check("beta1", beta1 >= 0 && beta1 < 1, beta1);
  check("beta2", beta2 >= 0 && beta2 < 1, beta2);
  check("eps", Number.isFinite(eps) && eps >= 0, eps);
  check("weight_decay", Number.isFinite(weightDecay) && weightDecay >= 0, weightDecay);
  check("grad_clip_norm", Number.isFinite(gradClipNorm), gradClipNorm);
}

/** Global L2 norm of all gradients. */
export function globalGradNorm(parameters: readonly Parameter[]): number {
  let sumSquares = 0;
  for (const p of parameters) for (let i = 0; i < p.grad.length; i++) sumSquares += p.grad[i] * p.grad[i];
  return Math.sqrt(sumSquares);
}

export interface AdamStepReport {
  /** Gradient norm before clipping. */
  gradNorm: number;
  /** Factor the gradients were multiplied by (1 when not clipped). */
  clipScale: number;
}

/**
 * One AdamW update of `parameters` from their accumulated gradients, which are then zeroed.
 * Order per element: clip → moments → decoupled decay (p ← p − lr·wd·p) → Adam step.
 */
export function adamwStep(
  parameters: readonly Parameter[],
  state: AdamState,
  settings: AdamSettings,
): AdamStepReport {
  validateAdamSettings(settings);
  const { learningRate: lr, beta1, beta2, eps, weightDecay, gradClipNorm } = settings;
  const gradNorm = globalGradNorm(parameters);
  // As torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) only when that is < 1.
  const clipScale = gradClipNorm > 0 && gradNorm > gradClipNorm ? gradClipNorm / (gradNorm + 1e-6) : 1;
  state.step += 1;
  const firstCorrection = 1 - beta1 ** state.step;
  const secondCorrection = 1 - beta2 ** state.step;
  const decay = 1 - lr * weightDecay;
  for (let index = 0; index < parameters.length; index++) {
    const { value, grad } = parameters[index];
    const m = state.firstMoments[index];
    const v = state.secondMoments[index];
    for (let i = 0; i < value.length; i++) {
      const g = grad[i] * clipScale;
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      const mHat = m[i] / firstCorrection;
      const vHat = v[i] / secondCorrection;
      const denominator = Math.sqrt(vHat) + eps;
      // With eps = 0 an element that never saw a gradient would give 0/0; it simply does not move.
      value[i] = value[i] * decay - (denominator > 0 ? (lr * mHat) / denominator : 0);
    }
    grad.fill(0);
  }
  return { gradNorm, clipScale };
}
