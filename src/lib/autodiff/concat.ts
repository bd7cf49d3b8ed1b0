/** Building a vector from parts. */
import { type Operand, result, type Tensor, toTensor } from "./tensor.js";

/**
 * Joins scalars and vectors, in order, into one vector, e.g. per-datum scores into one vector to
 * average: `mean(concat(scores))`. Each part's gradient is its slice of the result's.
 */
export function concat(parts: readonly Operand[]): Tensor {
  const tensors = parts.map(toTensor);
  const offsets: number[] = [];
  let total = 0;
  for (const t of tensors) {
    offsets.push(total);
    total += t.size;
  }
  const values = new Float64Array(total);
  tensors.forEach((t, k) => {
    values.set(t.values, offsets[k]);
  });
  return result(values, [total], tensors, (upstream) =>
    tensors.map((t, k) => upstream.slice(offsets[k], offsets[k]! + t.size)),
  );
}
