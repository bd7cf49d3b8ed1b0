/** Reverse-mode differentiation: the backward pass over the graph recorded by the ops. */
import { type Tensor, variable } from "./tensor.js";

/**
 * ∂output/∂wrt[k] for each k, shaped like wrt[k]. `output` must hold a single value (reduce with
 * `sum` or `mean` first). An entry is `undefined` when output does not depend on that tensor at all
 * (it is a constant, or was not used, or only reached through `detach`), which is distinct from a
 * gradient that happens to be zero.
 */
export function gradients(output: Tensor, wrt: readonly Tensor[]): (Float64Array | undefined)[] {
  if (output.size !== 1) {
    throw new RangeError(
      `gradients() needs a single-valued output; reduce the ${output.size} values with sum() or mean()`,
    );
  }
  const accumulated = new Map<Tensor, Float64Array>();
  if (output.requiresGrad) accumulated.set(output, Float64Array.of(1));
  // Reverse topological order: a result's gradient is complete before it is passed on.
  for (const node of topologicalOrder(output).reverse()) {
    const upstream = accumulated.get(node);
    if (upstream === undefined || node.edge === undefined) continue;
    const inputGradients = node.edge.backward(upstream);
    node.edge.inputs.forEach((input, k) => {
      if (!input.requiresGrad) return;
      const g = inputGradients[k]!;
      const sofar = accumulated.get(input);
      // Copy on first arrival: backward closures may hand back a buffer they share with upstream.
      if (sofar === undefined) accumulated.set(input, Float64Array.from(g));
      else for (let i = 0; i < g.length; i++) sofar[i] += g[i]!;
    });
  }
  return wrt.map((t) => accumulated.get(t));
}

/** The tensors that depend on a variable and feed `output`, inputs before the results using them. */
function topologicalOrder(output: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  // Iterative depth-first search: a loss summed over thousands of terms must not overflow the stack.
  const stack: { node: Tensor; expanded: boolean }[] = [{ node: output, expanded: false }];
  while (stack.length > 0) {
    const top = stack.pop()!;
    if (top.expanded) {
      order.push(top.node);
      continue;
    }
    if (visited.has(top.node) || !top.node.requiresGrad) continue;
    visited.add(top.node);
    stack.push({ node: top.node, expanded: true });
    for (const input of top.node.edge?.inputs ?? []) {
      if (!visited.has(input)) stack.push({ node: input, expanded: false });
    }
  }
  return order;
}

export interface ValueAndGradients {
  value: number;
  /** One gradient per argument, shaped like it (zeros for an argument f does not use). */
  gradients: Float64Array[];
}

/**
 * Turns a function of tensors into one that takes plain values and returns f's value and its
 * gradient with respect to every argument (a number is a scalar argument, an array a vector):
 *
 *   const f = valueAndGrad((x, y) => sum(mul(x, y)));
 *   f([1, 2], [3, 4]); // { value: 11, gradients: [[3, 4], [1, 2]] }
 */
export function valueAndGrad(
  f: (...args: Tensor[]) => Tensor,
): (...args: (number | ArrayLike<number>)[]) => ValueAndGradients {
  return (...args) => {
    const inputs = args.map((arg) => variable(arg));
    const output = f(...inputs);
    const value = output.item();
    const grads = gradients(output, inputs);
    return { value, gradients: grads.map((g, k) => g ?? new Float64Array(inputs[k]!.size)) };
  };
}
