/**
 * A small reverse-mode autodiff for losses over per-datum logprob arrays (see
 * `forwardBackwardCustom`). Values are float64 scalars or vectors; a number or a plain array may be
 * passed wherever a tensor is expected and is taken as a constant. Ops build a graph only when an
 * input depends on a `variable`.
 *
 *   const lp = variable([-1.2, -0.3, -2.0]);
 *   const loss = neg(dot(lp, [0, 1, 1]));        // −Σ masked logprobs
 *   const [dLp] = gradients(loss, [lp]);          // Float64Array [0, −1, −1]
 */
export { add, div, maximum, minimum, mul, sub } from "./binary.js";
export { concat } from "./concat.js";
export { gradients, type ValueAndGradients, valueAndGrad } from "./gradients.js";
export { dot, mean, sum } from "./reduce.js";

import type { Operand as TensorOperand, Shape as TensorShape } from "./tensor.js";

// Declared here rather than re-exported: the .d.ts bundler turns a type re-exported from a shared
// declaration chunk into a `typeof` value inside the `autodiff` namespace, which does not compile.
/** What an op accepts: a tensor, a number, or an array of numbers (taken as constants). */
export type Operand = TensorOperand;
/** A tensor's shape: `[]` for a scalar, `[n]` for a vector. */
export type Shape = TensorShape;
export { constant, detach, Tensor, variable } from "./tensor.js";
export { clip, exp, log, logSigmoid, neg, pow, sigmoid, softplus, square } from "./unary.js";
