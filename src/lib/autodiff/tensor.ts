/**
 * The value type of the autodiff: a 0-D scalar or a 1-D vector of float64 values, plus (for values
 * computed from variables) the graph edge that `gradients()` walks backwards.
 *
 * Tensors are immutable. Every op returns a new tensor; a result remembers its inputs only when at
 * least one of them depends on a variable, so arithmetic on constants builds no graph.
 */

/** `[]` for a scalar, `[n]` for a vector of n values. */
export type Shape = readonly [] | readonly [number];

/** Anything an op accepts: a tensor, or a plain number / array of numbers taken as a constant. */
export type Operand = Tensor | number | ArrayLike<number>;

/**
 * How a result sends gradient back to its inputs. `backward` gets ∂out/∂result (shaped like the
 * result) and returns ∂out/∂input for each input, shaped like that input.
 *
 * @internal Used by the ops and by `gradients()`; not part of the public API.
 */
export interface GraphEdge {
  readonly inputs: readonly Tensor[];
  readonly backward: (upstream: Float64Array) => readonly Float64Array[];
}

/**
 * Marks tensors under a global symbol so that `instanceof Tensor` holds across two copies of this
 * module (the ESM and the CJS build), as for the SDK's errors.
 */
const TENSOR_BRAND = Symbol.for("tinker-ts.autodiff.Tensor");

export class Tensor {
  /** The values, row-major. Treat as read-only: other tensors and gradients may share the buffer. */
  readonly values: Float64Array;
  readonly shape: Shape;
  /** True for variables and for everything computed from one. */
  readonly requiresGrad: boolean;
  /** @internal How this result was computed; undefined for leaves and for constant results. */
  readonly edge: GraphEdge | undefined;

  /** @internal Use `variable`, `constant` or the ops. */
  constructor(values: Float64Array, shape: Shape, requiresGrad: boolean, edge?: GraphEdge) {
    const expected = shape.length === 0 ? 1 : shape[0];
    if (values.length !== expected) {
      throw new RangeError(
        `a tensor of shape [${shape.join(", ")}] needs ${expected} values, got ${values.length}`,
      );
    }
    this.values = values;
    this.shape = shape;
    this.requiresGrad = requiresGrad;
    this.edge = edge;
  }

  /** @internal */
  get [TENSOR_BRAND](): true {
    return true;
  }

  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && TENSOR_BRAND in value;
  }

  /** Number of values (1 for a scalar). */
  get size(): number {
    return this.values.length;
  }

  /** The value of a scalar (or of a one-element vector). */
  item(): number {
    if (this.size !== 1) throw new RangeError(`item() needs a single value, this tensor has ${this.size}`);
    return this.values[0]!;
  }

  /** A copy of the values as a plain array. */
  toArray(): number[] {
    return Array.from(this.values);
  }
}

/**
 * A leaf the gradients are taken with respect to: a number gives a scalar, an array a vector.
 * The values are copied.
 */
export function variable(values: number | ArrayLike<number>): Tensor {
  return leaf(values, true);
}

/** A value that carries no gradient (same shapes as `variable`). The values are copied. */
export function constant(values: number | ArrayLike<number>): Tensor {
  return leaf(values, false);
}

/** The same values with the graph cut: gradient does not flow through the result (stop-gradient). */
export function detach(x: Operand): Tensor {
  const t = toTensor(x);
  return t.requiresGrad ? new Tensor(t.values, t.shape, false) : t;
}

/** Tensors pass through; numbers and arrays become constants. */
export function toTensor(x: Operand): Tensor {
  return x instanceof Tensor ? x : constant(x);
}

function leaf(values: number | ArrayLike<number>, requiresGrad: boolean): Tensor {
  if (typeof values === "number") return new Tensor(Float64Array.of(values), [], requiresGrad);
  return new Tensor(Float64Array.from(values), [values.length], requiresGrad);
}

/**
 * The result of an op: with a graph edge when some input needs gradient, as a plain constant
 * otherwise (so the backward closure, and what it captures, is never kept alive for nothing).
 */
export function result(
  values: Float64Array,
  shape: Shape,
  inputs: readonly Tensor[],
  backward: GraphEdge["backward"],
): Tensor {
  if (!inputs.some((input) => input.requiresGrad)) return new Tensor(values, shape, false);
  return new Tensor(values, shape, true, { inputs, backward });
}
