/**
 * Elementwise functions of one tensor. Each is given by its value and its derivative; the
 * derivative may use the output y = f(x) when that is cheaper or more stable (exp, sigmoid).
 */
import { type Operand, result, type Tensor, toTensor } from "./tensor.js";

type Scalar = (x: number) => number;
type Derivative = (x: number, y: number) => number;

function elementwise(operand: Operand, f: Scalar, df: Derivative): Tensor {
  const x = toTensor(operand);
  const xs = x.values;
  const ys = xs.map(f);
  return result(ys, x.shape, [x], (upstream) => [upstream.map((g, i) => g * df(xs[i]!, ys[i]!))]);
}

/** σ(x) = 1 / (1 + e^−x), without overflow for large |x|. */
function stableSigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** log(1 + e^x) = max(x, 0) + log1p(e^−|x|): no overflow for large x, no lost digits for small. */
function stableSoftplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** −x */
export function neg(x: Operand): Tensor {
  return elementwise(
    x,
    (v) => -v,
    () => -1,
  );
}

/** e^x */
export function exp(x: Operand): Tensor {
  return elementwise(x, Math.exp, (_, y) => y);
}

/** Natural logarithm. */
export function log(x: Operand): Tensor {
  return elementwise(x, Math.log, (v) => 1 / v);
}

/** x² */
export function square(x: Operand): Tensor {
  return elementwise(
    x,
    (v) => v * v,
    (v) => 2 * v,
  );
}

/** x^p for a constant exponent p (use `exp`/`log` for a variable one). */
export function pow(x: Operand, p: number): Tensor {
  // p·x^(p−1) is 0·∞ = NaN at x = 0 when p = 0; the derivative of a constant is 0.
  return elementwise(
    x,
    (v) => v ** p,
    (v) => (p === 0 ? 0 : p * v ** (p - 1)),
  );
}

/** Logistic sigmoid σ(x). */
export function sigmoid(x: Operand): Tensor {
  return elementwise(x, stableSigmoid, (_, y) => y * (1 - y));
}

/** log σ(x) = −softplus(−x), stable for any x (the DPO loss is −logSigmoid(margin)). */
export function logSigmoid(x: Operand): Tensor {
  // d/dx log σ(x) = 1 − σ(x) = σ(−x), computed directly so it does not round to 0 for large x.
  return elementwise(
    x,
    (v) => -stableSoftplus(-v),
    (v) => stableSigmoid(-v),
  );
}

/** softplus(x) = log(1 + e^x), stable for any x. */
export function softplus(x: Operand): Tensor {
  return elementwise(x, stableSoftplus, (v) => stableSigmoid(v));
}

/**
 * Limits x to [low, high]. The gradient passes where low ≤ x ≤ high (boundaries included, as in
 * `torch.clamp`) and is 0 outside.
 */
export function clip(x: Operand, low: number, high: number): Tensor {
  if (!(low <= high)) throw new RangeError(`clip needs low ≤ high, got [${low}, ${high}]`);
  return elementwise(
    x,
    (v) => Math.min(Math.max(v, low), high),
    (v) => (v >= low && v <= high ? 1 : 0),
  );
}
