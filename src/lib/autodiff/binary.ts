/**
 * Elementwise functions of two tensors. Shapes must match, except that a scalar broadcasts against
 * a vector; the gradient of a broadcast scalar is the sum of the gradients of the values it became.
 */
import { type Operand, result, type Shape, type Tensor, toTensor } from "./tensor.js";

/** ∂f/∂a and ∂f/∂b at (a, b). */
type Partials = (a: number, b: number) => readonly [number, number];

function broadcastShape(a: Tensor, b: Tensor, op: string): Shape {
  if (a.shape.length === 0) return b.shape;
  if (b.shape.length === 0) return a.shape;
  if (a.size !== b.size)
    throw new RangeError(`${op}: cannot combine vectors of ${a.size} and ${b.size} values`);
  return a.shape;
}

/** Undoes broadcasting in the backward pass: a scalar input collects the sum of its gradients. */
function reduceTo(input: Tensor, gradient: Float64Array): Float64Array {
  if (input.shape.length > 0) return gradient;
  let total = 0;
  for (const g of gradient) total += g;
  return Float64Array.of(total);
}

function elementwise(
  op: string,
  left: Operand,
  right: Operand,
  f: (a: number, b: number) => number,
  partials: Partials,
): Tensor {
  const a = toTensor(left);
  const b = toTensor(right);
  const shape = broadcastShape(a, b, op);
  const n = shape.length === 0 ? 1 : shape[0];
  // A scalar is read at index 0 for every position.
  const at = (t: Tensor, i: number) => t.values[t.shape.length === 0 ? 0 : i]!;
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = f(at(a, i), at(b, i));
  return result(values, shape, [a, b], (upstream) => {
    const da = new Float64Array(n);
    const db = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const [pa, pb] = partials(at(a, i), at(b, i));
      da[i] = upstream[i]! * pa;
      db[i] = upstream[i]! * pb;
    }
    return [reduceTo(a, da), reduceTo(b, db)];
  });
}

/** a + b */
export function add(a: Operand, b: Operand): Tensor {
  return elementwise(
    "add",
    a,
    b,
    (x, y) => x + y,
    () => [1, 1],
  );
}

/** a − b */
export function sub(a: Operand, b: Operand): Tensor {
  return elementwise(
    "sub",
    a,
    b,
    (x, y) => x - y,
    () => [1, -1],
  );
}

/** a · b (elementwise) */
export function mul(a: Operand, b: Operand): Tensor {
  return elementwise(
    "mul",
    a,
    b,
    (x, y) => x * y,
    (x, y) => [y, x],
  );
}

/** a / b */
export function div(a: Operand, b: Operand): Tensor {
  return elementwise(
    "div",
    a,
    b,
    (x, y) => x / y,
    (x, y) => [1 / y, -x / (y * y)],
  );
}

/**
 * Elementwise min(a, b). The gradient goes to the smaller input; on a tie it is split in half
 * (a valid subgradient, and what `torch.minimum` does).
 */
export function minimum(a: Operand, b: Operand): Tensor {
  return elementwise("minimum", a, b, Math.min, (x, y) => (x < y ? [1, 0] : x > y ? [0, 1] : [0.5, 0.5]));
}

/** Elementwise max(a, b); the gradient goes to the larger input, split in half on a tie. */
export function maximum(a: Operand, b: Operand): Tensor {
  return elementwise("maximum", a, b, Math.max, (x, y) => (x > y ? [1, 0] : x < y ? [0, 1] : [0.5, 0.5]));
}
