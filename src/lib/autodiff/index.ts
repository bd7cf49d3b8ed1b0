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
export { constant, detach, type Operand, type Shape, Tensor, variable } from "./tensor.js";
export { clip, exp, log, logSigmoid, neg, pow, sigmoid, softplus, square } from "./unary.js";
