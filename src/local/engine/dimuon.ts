/**
 * Dimuon: a Muon-style optimizer for LoRA matrices (Tinker's `DimuonParams`). Tinker publishes
 * its parameters and a few facts, not its algorithm; this is the engine's reading of them.
 *
 * One step, for every LoRA matrix P (A [rank, in] or B [out, rank]) with gradient G:
 *   1. clip:           G ← G · c, with c from the global gradient norm exactly as AdamW clips
 *                      (grad_clip_norm ≤ 0 disables it);
 *   2. momentum:       M ← β1·M + G (heavy ball without dampening: steps 3–5 do not depend
 *                      on the scale of M, so a (1 − β1) factor would change nothing);
 *   3. precondition:   X[i,j] = M[i,j] · (r_i + δ·m̄)^(−1/4) · (c_j + δ·m̄)^(−1/4), where r_i and
 *                      c_j are the mean squares of row i and column j of M, m̄ is the mean square
 *                      of all of M and δ is `damping` — a diagonal two-sided (Shampoo-like)
 *                      preconditioner that evens out row and column energy before orthogonalising.
 *                      δ is relative to m̄, so X does not depend on the scale of the gradient
 *                      (Tinker losses are sums, whose scale grows with the batch); δ → ∞ turns
 *                      the preconditioner off (plain Muon), small δ normalises every row/column;
 *   4. orthogonalise:  O ≈ msign(X) = U·Vᵀ for X = U·Σ·Vᵀ, by a Newton–Schulz iteration on the
 *                      Frobenius-normalised X (MATRIX_SIGN_STEPS; internal constants);
 *   5. rescale:        D = O · √rank / ‖O‖_F — the "direction of Frobenius norm √rank" the
 *                      learning rate applies to (an exact sign of a full-rank [rank, n] matrix
 *                      already has that norm; rescaling makes it hold for rank-deficient momenta
 *                      and an inexact iteration too);
 *   6. update:         P ← P − lr · (rank / 32)^(−e) · D, with e = rank_lr_correction_exponent.
 *
 * A matrix whose momentum is all zero (e.g. every A on the first step, while B = 0) is left
 * unchanged. Every trainable tensor of the engine is a 2-D LoRA matrix (the base model, norms
 * included, is frozen and has no biases), so there is no vector parameter to fall back on;
 * `dimuonStep` rejects a parameter whose shape does not match its length.
 */

import { globalGradNorm } from "./adamw.js";
import { EngineError } from "./errors.js";
import { matmulNT, transpose } from "./linalg.js";
import type { Parameter } from "./lora.js";

export interface DimuonSettings {
  /** Step size for a direction of Frobenius norm √rank; ≥ 0. */
  learningRate: number;
  /** Clip the global L2 norm of all gradients to this value; 0 (or less) disables clipping. */
  gradClipNorm: number;
  /** Momentum coefficient, 0 ≤ β1 < 1. */
  beta1: number;
  /** Smoothing of the row/column preconditioner, relative to the mean square of the momentum; > 0. */
  damping: number;
  /** The step is scaled by (rank / 32)^(−exponent); 0 disables the correction. */
  rankLrCorrectionExponent: number;
}

/** The rank at which the rank correction is 1. */
export const DIMUON_REFERENCE_RANK = 32;

/**
 * Tinker does not publish its default damping. 0.1 (relative to the mean square, see step 3)
 * caps the boost of a near-silent row or column at 0.1^(−1/4) ≈ 1.8× per side: rarely seen
 * tokens of the unembedding adapter can still move, while a few dominant rows cannot flatten all
 * the others. It is not a sensitive choice: on the quickstart task (12 QA pairs, rank 32,
 * 25 steps) every damping from 1e-3 to 1e4 reached nearly the same loss at each learning rate.
 */
export const DEFAULT_DIMUON_DAMPING = 0.1;

/**
 * Tinker does not publish this default either. 0 leaves the learning rate as given: the
 * √rank-norm direction already keeps the change of B·A roughly rank-independent under the
 * alpha/rank LoRA scaling. On the quickstart task the best learning rate rose only from about
 * 0.02–0.05 at rank 8 to 0.05–0.1 at rank 128, so no positive exponent would have helped.
 */
export const DEFAULT_DIMUON_RANK_LR_CORRECTION_EXPONENT = 0;

/** Defaults of every Dimuon setting but the (required) learning rate; applied afresh on each step. */
export const DEFAULT_DIMUON_SETTINGS: Readonly<Omit<DimuonSettings, "learningRate">> = Object.freeze({
  gradClipNorm: 0,
  beta1: 0.9,
  damping: DEFAULT_DIMUON_DAMPING,
  rankLrCorrectionExponent: DEFAULT_DIMUON_RANK_LR_CORRECTION_EXPONENT,
});

/**
 * Newton–Schulz schedule of the matrix sign. The quintic steps (Muon's coefficients) lift small
 * singular values fast — slope 3.4445 at 0 — into roughly [0.7, 1.2]; the cubic steps
 * (1.5σ − 0.5σ³) then converge quadratically to 1, so singular values ≥ 1 % of the largest end
 * within about 1e-12 of 1 (smaller ones, which only an ill-conditioned momentum has, stay short
 * of 1; the rescale of step 5 keeps the step length exact regardless).
 */
const QUINTIC_STEPS = 5;
const QUINTIC = [3.4445, -4.775, 2.0315] as const;
const CUBIC_STEPS = 5;
const CUBIC = [1.5, -0.5, 0] as const;
export const MATRIX_SIGN_STEPS = QUINTIC_STEPS + CUBIC_STEPS;

/** Heavy-ball momentum of every parameter plus the step counter. */
export interface DimuonState {
  step: number;
  readonly momenta: Float64Array[];
}

export function createDimuonState(parameters: readonly Parameter[]): DimuonState {
  return { step: 0, momenta: parameters.map((p) => new Float64Array(p.value.length)) };
}

export function validateDimuonSettings(settings: DimuonSettings): void {
  const check = (name: string, ok: boolean, value: number) => {
    if (!ok) throw new EngineError(`dimuon: invalid ${name} ${value}`);
  };
  const { learningRate, gradClipNorm, beta1, damping, rankLrCorrectionExponent } = settings;
  check("learning_rate", Number.isFinite(learningRate) && learningRate >= 0, learningRate);
  check("grad_clip_norm", Number.isFinite(gradClipNorm), gradClipNorm);
  check("beta1", beta1 >= 0 && beta1 < 1, beta1);
  check("damping", Number.isFinite(damping) && damping > 0, damping);
  check("rank_lr_correction_exponent", Number.isFinite(rankLrCorrectionExponent), rankLrCorrectionExponent);
}

/** The factor (rank / 32)^(−exponent) on the learning rate. */
export function rankLrCorrection(rank: number, exponent: number): number {
  return exponent === 0 ? 1 : (rank / DIMUON_REFERENCE_RANK) ** -exponent;
}

/** Step 3: the damped row/column preconditioning of M [rows, cols]; null when M is all zero. */
export function preconditionRowsCols(
  m: Float64Array,
  rows: number,
  cols: number,
  damping: number,
): Float64Array | null {
  const rowSquares = new Float64Array(rows);
  const colSquares = new Float64Array(cols);
  let total = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const square = m[i * cols + j] * m[i * cols + j];
      rowSquares[i] += square;
      colSquares[j] += square;
      total += square;
    }
  }
  if (total === 0) return null;
  const floor = damping * (total / (rows * cols));
  const rowScale = rowSquares.map((sum) => (sum / cols + floor) ** -0.25);
  const colScale = colSquares.map((sum) => (sum / rows + floor) ** -0.25);
  const x = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) x[i * cols + j] = m[i * cols + j] * rowScale[i] * colScale[j];
  }
  return x;
}

function frobeniusNorm(x: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
  return Math.sqrt(sum);
}

/**
 * X ← a·X + (b·G + c·G²)·X with G = X·Xᵀ, for a wide X [rows ≤ cols], so the Gram matrices are
 * the small side.
 */
function newtonSchulzStep(x: Float64Array, rows: number, cols: number, a: number, b: number, c: number) {
  const gram = new Float64Array(rows * rows);
  matmulNT(x, rows, cols, x, rows, gram, false);
  const poly = new Float64Array(rows * rows);
  if (c !== 0) matmulNT(gram, rows, rows, gram, rows, poly, false); // G² (G is symmetric)
  for (let i = 0; i < poly.length; i++) poly[i] = b * gram[i] + c * poly[i];
  const next = new Float64Array(rows * cols);
  matmulNT(poly, rows, rows, transpose(x, rows, cols), cols, next, false);
  for (let i = 0; i < next.length; i++) next[i] += a * x[i];
  return next;
}

/**
 * Step 4: an approximation of the matrix sign U·Vᵀ of x [rows, cols] (its polar factor; the
 * singular values become 1, zero ones stay 0). x must not be all zero.
 */
export function matrixSign(x: Float64Array, rows: number, cols: number): Float64Array {
  const wide = rows <= cols;
  const [r, c] = wide ? [rows, cols] : [cols, rows];
  // Dividing by the Frobenius norm puts every singular value in (0, 1], where both polynomials
  // move it towards 1.
  const norm = frobeniusNorm(x);
  let y = wide ? x.slice() : transpose(x, rows, cols);
  for (let i = 0; i < y.length; i++) y[i] /= norm;
  for (let s = 0; s < QUINTIC_STEPS; s++) y = newtonSchulzStep(y, r, c, ...QUINTIC);
  for (let s = 0; s < CUBIC_STEPS; s++) y = newtonSchulzStep(y, r, c, ...CUBIC);
  return wide ? y : transpose(y, r, c);
}

/**
 * Steps 3–5 for one matrix: the update direction, of Frobenius norm √rank, for momentum m
 * [rows, cols]; null when m is all zero (the matrix does not move).
 */
export function dimuonDirection(
  m: Float64Array,
  rows: number,
  cols: number,
  damping: number,
  rank: number,
): Float64Array | null {
  const x = preconditionRowsCols(m, rows, cols, damping);
  if (x === null) return null;
  const direction = matrixSign(x, rows, cols);
  const norm = frobeniusNorm(direction);
  if (!(norm > 0) || !Number.isFinite(norm)) return null;
  const scale = Math.sqrt(rank) / norm;
  for (let i = 0; i < direction.length; i++) direction[i] *= scale;
  return direction;
}

export interface DimuonStepReport {
  /** Gradient norm before clipping. */
  gradNorm: number;
  /** Factor the gradients were multiplied by (1 when not clipped). */
  clipScale: number;
  /** learning_rate × the rank correction: the step length along a √rank-norm direction. */
  effectiveLearningRate: number;
}

/**
 * One Dimuon update of `parameters` (LoRA matrices of rank `rank`) from their accumulated
 * gradients, which are then zeroed.
 */
export function dimuonStep(
  parameters: readonly Parameter[],
  state: DimuonState,
  settings: DimuonSettings,
  rank: number,
): DimuonStepReport {
  validateDimuonSettings(settings);
  for (const p of parameters) {
    if (p.rows * p.cols !== p.value.length) {
      throw new Error(`internal: dimuon needs a matrix, ${p.name} has ${p.value.length} values`);
    }
  }
  const { learningRate, gradClipNorm, beta1, damping, rankLrCorrectionExponent } = settings;
  const gradNorm = globalGradNorm(parameters);
  // The same rule as AdamW (torch.nn.utils.clip_grad_norm_), so both families clip alike.
  const clipScale = gradClipNorm > 0 && gradNorm > gradClipNorm ? gradClipNorm / (gradNorm + 1e-6) : 1;
  const effectiveLearningRate = learningRate * rankLrCorrection(rank, rankLrCorrectionExponent);
  state.step += 1;
  for (let index = 0; index < parameters.length; index++) {
    const { value, grad, rows, cols } = parameters[index];
    const m = state.momenta[index];
    for (let i = 0; i < m.length; i++) m[i] = beta1 * m[i] + clipScale * grad[i];
    const direction = dimuonDirection(m, rows, cols, damping, rank);
    if (direction !== null) {
      for (let i = 0; i < value.length; i++) value[i] -= effectiveLearningRate * direction[i];
    }
    grad.fill(0);
  }
  return { gradNorm, clipScale, effectiveLearningRate };
}
