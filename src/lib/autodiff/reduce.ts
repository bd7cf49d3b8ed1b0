/** Reductions of a tensor to a scalar. */
import { mul } from "./binary.js";
import { type Operand, result, type Tensor, toTensor } from "./tensor.js";

/** Σ x (a scalar's sum is itself). */
export function sum(operand: Operand): Tensor {
  const x = toTensor(operand);
  let total = 0;
  for (const v of x.values) total += v;
  // Every value contributes with weight 1, so each receives the upstream gradient unchanged.
  return result(Float64Array.of(total), [], [x], (upstream) => [new Float64Array(x.size).fill(upstream[0]!)]);
}

/** The average of the values (NaN for an empty vector, like 0/0). */
export function mean(operand: Operand): Tensor {
  const x = toTensor(operand);
  const n = x.size;
  let total = 0;
  for (const v of x.values) total += v;
  return result(Float64Array.of(total / n), [], [x], (upstream) => [
    new Float64Array(n).fill(upstream[0]! / n),
  ]);
}

/**
 * Σ a·b: the inner product of two vectors, or a weighted sum (`dot(logprobs, mask)` sums the
 * logprobs where the mask is 1). A scalar broadcasts as in `mul`.
 */
export function dot(a: Operand, b: Operand): Tensor {
  return sum(mul(a, b));
}
