/** Dimuon (src/local/engine/dimuon.ts): the math of one step, on synthetic matrices. */
import { describe, expect, it } from "vitest";
import {
  createDimuonState,
  type DimuonSettings,
  dimuonDirection,
  dimuonStep,
  matrixSign,
  preconditionRowsCols,
} from "../src/local/engine/dimuon.js";
import { DEFAULT_DIMUON_SETTINGS, EngineError, type Parameter } from "../src/local/engine/index.js";
import { Rng } from "../src/local/engine/rng.js";

function randomMatrix(rows: number, cols: number, seed: number): Float64Array {
  return new Rng(seed).fillNormal(new Float64Array(rows * cols), 1);
}

/** a [m, k] · b [k, n]. */
function matmul(a: Float64Array, m: number, k: number, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let t = 0; t < k; t++) sum += a[i * k + t] * b[t * n + j];
      out[i * n + j] = sum;
    }
  return out;
}

function transposed(x: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j];
  return out;
}

function frobenius(x: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
  return Math.sqrt(sum);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function identity(n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
}

function matrixParameter(name: string, rows: number, cols: number, seed: number): Parameter {
  return {
    name,
    rows,
    cols,
    value: randomMatrix(rows, cols, seed),
    grad: randomMatrix(rows, cols, seed + 1000),
  };
}

const SETTINGS: DimuonSettings = { learningRate: 0.02, ...DEFAULT_DIMUON_SETTINGS };

describe("Dimuon math", () => {
  it("matrixSign returns the polar factor: orthonormal rows (wide) or columns (tall), X·Oᵀ symmetric PSD", () => {
    for (const [rows, cols] of [
      [4, 20],
      [20, 4],
      [6, 6],
    ]) {
      const x = randomMatrix(rows, cols, rows * 100 + cols);
      const o = matrixSign(x, rows, cols);
      const small = Math.min(rows, cols);
      const gram =
        rows <= cols
          ? matmul(o, rows, cols, transposed(o, rows, cols), rows)
          : matmul(transposed(o, rows, cols), cols, rows, o, cols);
      expect(maxAbsDiff(gram, identity(small))).toBeLessThan(1e-6);
      // X = U·Σ·Vᵀ and O = U·Vᵀ ⇒ X·Oᵀ = U·Σ·Uᵀ.
      const xo = matmul(x, rows, cols, transposed(o, rows, cols), rows);
      expect(maxAbsDiff(xo, transposed(xo, rows, rows))).toBeLessThan(1e-9);
      for (let i = 0; i < rows; i++) expect(xo[i * rows + i]).toBeGreaterThanOrEqual(-1e-12);
    }
  });

  it("matrixSign of a rank-1 matrix u·vᵀ is û·v̂ᵀ", () => {
    const u = [1, -2, 0.5];
    const v = [3, 0, -1, 2, 0.25];
    const x = new Float64Array(u.length * v.length);
    for (let i = 0; i < u.length; i++) for (let j = 0; j < v.length; j++) x[i * v.length + j] = u[i] * v[j];
    const o = matrixSign(x, u.length, v.length);
    const expected = x.map((value) => value / (frobenius(u) * frobenius(v)));
    expect(maxAbsDiff(o, expected)).toBeLessThan(1e-9);
  });

  it("the preconditioner ignores the gradient scale, fades out with large damping, and skips zero momenta", () => {
    const m = randomMatrix(5, 7, 3);
    for (let j = 0; j < 7; j++) m[j] *= 50; // one loud row
    const x = preconditionRowsCols(m, 5, 7, 0.1)!;
    const scaled = preconditionRowsCols(
      m.map((v) => v * 1e-6),
      5,
      7,
      0.1,
    )!;
    expect(maxAbsDiff(x, scaled)).toBeLessThan(1e-12 * frobenius(x));
    // The loud row is evened out: its norm relative to a quiet row shrinks.
    const loudness = (y: Float64Array) => frobenius(y.subarray(0, 7)) / frobenius(y.subarray(7, 14));
    expect(loudness(x)).toBeLessThan(loudness(m) / 2);
    // δ → ∞: a uniform rescale of M, i.e. plain Muon.
    const flat = preconditionRowsCols(m, 5, 7, 1e12)!;
    const ratio = flat[0] / m[0];
    expect(
      maxAbsDiff(
        flat,
        m.map((v) => v * ratio),
      ),
    ).toBeLessThan(1e-9 * frobenius(flat));
    expect(preconditionRowsCols(new Float64Array(35), 5, 7, 0.1)).toBeNull();
  });

  it("the direction has Frobenius norm √rank, also for a rank-deficient momentum", () => {
    const rank = 8;
    const full = dimuonDirection(randomMatrix(rank, 64, 5), rank, 64, 0.1, rank)!;
    expect(frobenius(full)).toBeCloseTo(Math.sqrt(rank), 12);
    const rankOne = new Float64Array(40 * rank);
    for (let i = 0; i < 40; i++) for (let r = 0; r < rank; r++) rankOne[i * rank + r] = (i - 20) * (r + 1);
    expect(frobenius(dimuonDirection(rankOne, 40, rank, 0.1, rank)!)).toBeCloseTo(Math.sqrt(rank), 12);
    expect(dimuonDirection(new Float64Array(40 * rank), 40, rank, 0.1, rank)).toBeNull();
  });
});

describe("dimuonStep", () => {
  it("moves each matrix by lr·(rank/32)^(−e)·√rank in Frobenius norm and consumes the gradients", () => {
    const rank = 8;
    const params = [matrixParameter("a", rank, 16, 1), matrixParameter("b", 24, rank, 2)];
    const before = params.map((p) => p.value.slice());
    const settings = { ...SETTINGS, rankLrCorrectionExponent: 0.5 };
    const report = dimuonStep(params, createDimuonState(params), settings, rank);
    const effective = settings.learningRate * (rank / 32) ** -0.5;
    expect(report.effectiveLearningRate).toBeCloseTo(effective, 15);
    params.forEach((p, i) => {
      const delta = p.value.map((v, j) => v - before[i][j]);
      expect(frobenius(delta)).toBeCloseTo(effective * Math.sqrt(rank), 12);
      expect(p.grad.every((g) => g === 0)).toBe(true);
    });
  });

  it("keeps heavy-ball momentum M ← β1·M + clip·G and clips the global norm as AdamW does", () => {
    const rank = 4;
    const params = [matrixParameter("a", rank, 10, 3), matrixParameter("b", 12, rank, 4)];
    const state = createDimuonState(params);
    const grads1 = params.map((p) => p.grad.slice());
    const norm = frobenius([...grads1[0], ...grads1[1]]);
    const first = dimuonStep(params, state, { ...SETTINGS, gradClipNorm: norm / 3 }, rank);
    expect(first.gradNorm).toBeCloseTo(norm, 12);
    expect(first.clipScale).toBeCloseTo(norm / 3 / (norm + 1e-6), 15);
    params.forEach((p, i) => {
      p.grad.set(randomMatrix(p.rows, p.cols, 50 + i));
    });
    const grads2 = params.map((p) => p.grad.slice());
    const second = dimuonStep(params, state, { ...SETTINGS, gradClipNorm: 0 }, rank);
    expect(second.clipScale).toBe(1);
    expect(state.step).toBe(2);
    params.forEach((_, i) => {
      const expected = grads1[i].map((g, j) => SETTINGS.beta1 * first.clipScale * g + grads2[i][j]);
      expect(maxAbsDiff(state.momenta[i], expected)).toBeLessThan(1e-15);
    });
  });

  it("leaves a matrix with zero momentum where it is", () => {
    const params = [matrixParameter("a", 4, 10, 5), matrixParameter("b", 12, 4, 6)];
    params[0].grad.fill(0);
    const a0 = params[0].value.slice();
    dimuonStep(params, createDimuonState(params), SETTINGS, 4);
    expect(params[0].value).toEqual(a0);
  });

  it("rejects NaN, infinite and out-of-range settings before changing anything", () => {
    const params = [matrixParameter("a", 4, 10, 7)];
    const state = createDimuonState(params);
    const value = params[0].value.slice();
    const grad = params[0].grad.slice();
    const bad: Partial<DimuonSettings>[] = [
      { learningRate: Number.NaN },
      { learningRate: Number.POSITIVE_INFINITY },
      { learningRate: -1e-3 },
      { gradClipNorm: Number.NaN },
      { beta1: 1 },
      { beta1: -0.1 },
      { beta1: Number.NaN },
      { damping: 0 },
      { damping: -1 },
      { damping: Number.POSITIVE_INFINITY },
      { rankLrCorrectionExponent: Number.NaN },
      { rankLrCorrectionExponent: Number.NEGATIVE_INFINITY },
    ];
    for (const override of bad) {
      expect(() => dimuonStep(params, state, { ...SETTINGS, ...override }, 4)).toThrow(EngineError);
    }
    expect(state.step).toBe(0);
    expect(params[0].value).toEqual(value);
    expect(params[0].grad).toEqual(grad);
    // learning_rate 0 is valid: momentum builds, weights stay.
    dimuonStep(params, state, { ...SETTINGS, learningRate: 0 }, 4);
    expect(params[0].value).toEqual(value);
    expect(state.momenta[0]).toEqual(grad);
  });
});
