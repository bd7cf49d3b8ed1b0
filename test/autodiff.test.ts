/**
 * The autodiff: every op's gradient against central finite differences (float64, relative error
 * below 1e-6), composed expressions, stop-gradient, broadcasting and the error cases.
 */
import { describe, expect, it } from "vitest";
import {
  add,
  clip,
  concat,
  constant,
  detach,
  div,
  dot,
  exp,
  gradients,
  log,
  logSigmoid,
  maximum,
  mean,
  minimum,
  mul,
  neg,
  pow,
  sigmoid,
  softplus,
  square,
  sub,
  sum,
  Tensor,
  valueAndGrad,
  variable,
} from "../src/lib/autodiff/index.js";

type Point = number | number[];
type ScalarFn = (...args: Tensor[]) => Tensor;

/** f at plain values, with no gradient tracking. */
function evaluate(f: ScalarFn, point: Point[]): number {
  return f(...point.map((arg) => constant(arg))).item();
}

/** ∂f/∂(argument k, element i) by central differences, step scaled to the value. */
function numericGradients(f: ScalarFn, point: Point[]): number[][] {
  return point.map((arg, k) => {
    const values = typeof arg === "number" ? [arg] : arg;
    return values.map((x, i) => {
      const h = 1e-5 * Math.max(1, Math.abs(x));
      const at = (shifted: number) =>
        evaluate(
          f,
          point.map((a, j) => {
            if (j !== k) return a;
            if (typeof a === "number") return shifted;
            return a.map((v, m) => (m === i ? shifted : v));
          }),
        );
      return (at(x + h) - at(x - h)) / (2 * h);
    });
  });
}

function relativeError(a: number, b: number): number {
  if (a === b) return 0;
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
}

/** Checks value and every gradient entry of f at the point against finite differences. */
function expectGradientsMatch(f: ScalarFn, ...point: Point[]): void {
  const { value, gradients: analytic } = valueAndGrad(f)(...point);
  expect(value).toBe(evaluate(f, point));
  const numeric = numericGradients(f, point);
  analytic.forEach((gradient, k) => {
    expect(gradient.length).toBe(numeric[k]!.length);
    gradient.forEach((g, i) => {
      const error = relativeError(g, numeric[k]![i]!);
      if (error >= 1e-6) {
        throw new Error(
          `argument ${k}[${i}]: analytic ${g}, numeric ${numeric[k]![i]}, relative error ${error}`,
        );
      }
    });
  });
}

/** Reduces an elementwise result with distinct weights, so each element's gradient differs. */
const WEIGHTS = [0.7, -1.3, 2.1, 0.4, -0.9];
const reduce = (t: Tensor) => (t.size === 1 ? sum(mul(t, 1.7)) : dot(t, WEIGHTS.slice(0, t.size)));

const X = [-1.7, -0.4, 0.3, 1.1, 2.6];
const POSITIVE = [0.2, 0.7, 1.3, 2.9, 5.5];
const Y = [0.9, -2.2, 1.4, -0.6, 3.1];

describe("each op's gradient matches central finite differences", () => {
  const unary: [string, (x: Tensor) => Tensor, number[]][] = [
    ["neg", neg, X],
    ["exp", exp, X],
    ["log", log, POSITIVE],
    ["square", square, X],
    ["pow 3", (x) => pow(x, 3), X],
    ["pow 0.5", (x) => pow(x, 0.5), POSITIVE],
    ["pow −2", (x) => pow(x, -2), POSITIVE],
    ["sigmoid", sigmoid, X],
    ["logSigmoid", logSigmoid, [-9, -4.2, 0.3, 6.5, 9]],
    ["softplus", softplus, [-9, -3.3, 0.1, 4.4, 9]],
    ["clip (inside and outside the range)", (x) => clip(x, -1, 1.5), X],
  ];
  for (const [name, op, values] of unary) {
    it(`${name} on a vector and on a scalar`, () => {
      expectGradientsMatch((x) => reduce(op(x)), values);
      expectGradientsMatch((x) => reduce(op(x)), values[2]!);
    });
  }

  const binary: [string, (a: Tensor, b: Tensor) => Tensor, number[], number[]][] = [
    ["add", add, X, Y],
    ["sub", sub, X, Y],
    ["mul", mul, X, Y],
    ["div", div, X, Y],
    ["minimum", minimum, X, Y],
    ["maximum", maximum, X, Y],
  ];
  for (const [name, op, a, b] of binary) {
    it(`${name}: vector–vector, scalar–vector, vector–scalar, scalar–scalar`, () => {
      expectGradientsMatch((x, y) => reduce(op(x, y)), a, b);
      expectGradientsMatch((x, y) => reduce(op(x, y)), a[1]!, b);
      expectGradientsMatch((x, y) => reduce(op(x, y)), a, b[3]!);
      expectGradientsMatch((x, y) => reduce(op(x, y)), a[0]!, b[0]!);
    });
  }

  it("sum, mean and dot", () => {
    expectGradientsMatch((x) => mul(sum(x), sum(x)), X);
    expectGradientsMatch((x) => square(mean(x)), X);
    expectGradientsMatch((x, y) => dot(x, y), X, Y);
    expectGradientsMatch((x, y) => dot(x, y), X, 0.8);
  });

  it("concat of scalars and vectors", () => {
    expectGradientsMatch((x, s, y) => reduce(concat([s, x, 2, y])), [0.3, -1.2], 0.9, [1.5]);
    expectGradientsMatch((x, s) => mean(square(concat([sum(x), s, mul(x, s)]))), X, -0.7);
  });
});

describe("composed expressions", () => {
  it("the DPO loss over per-datum summed logprobs", () => {
    const beta = 0.3;
    const mask = [0, 1, 1, 1, 0];
    const dpo = (chosen: Tensor, rejected: Tensor, refChosen: Tensor, refRejected: Tensor) =>
      neg(
        logSigmoid(mul(beta, sub(sub(dot(chosen, mask), refChosen), sub(dot(rejected, mask), refRejected)))),
      );
    expectGradientsMatch(dpo, [-1.2, -0.5, -2.2, -0.1, -3], [-0.7, -1.9, -0.4, -2.5, -1], -2.4, -3.1);
  });

  it("a PPO-style clipped objective", () => {
    const ppo = (lp: Tensor, old: Tensor, advantages: Tensor) => {
      const ratio = exp(sub(lp, old));
      return neg(sum(minimum(mul(ratio, advantages), mul(clip(ratio, 0.8, 1.2), advantages))));
    };
    // Ratios 1.105, 0.670, 1.0, 1.35: inside and outside the clip range, with both signs of advantage.
    expectGradientsMatch(ppo, [-1.0, -1.4, -0.5, -0.2], [-1.1, -1.0, -0.5, -0.5], [1.5, -0.7, 0.4, 2.0]);
  });

  it("log-sum-exp, softmax cross-entropy and a reused subexpression", () => {
    expectGradientsMatch((x) => log(sum(exp(x))), X);
    expectGradientsMatch((x) => sub(log(sum(exp(x))), dot(x, [0, 0, 1, 0, 0])), X);
    expectGradientsMatch((x) => {
      const shared = sigmoid(x);
      return sum(add(mul(shared, shared), div(shared, add(x, 3))));
    }, X);
  });

  it("a regression-style loss with softplus, pow and broadcasting scalars", () => {
    expectGradientsMatch(
      (x, scale, shift) => mean(add(softplus(mul(scale, x)), pow(sub(x, shift), 4))),
      X,
      0.6,
      0.25,
    );
  });
});

describe("graph semantics", () => {
  it("detach stops the gradient but keeps the value", () => {
    const x = variable([1.5, -2]);
    const y = mul(x, detach(x));
    expect(y.toArray()).toEqual([2.25, 4]);
    expect(Array.from(gradients(sum(y), [x])[0]!)).toEqual([1.5, -2]);
    expect(gradients(sum(detach(y)), [x])[0]).toBeUndefined();
  });

  it("reports no gradient for constants and unused variables, and zeros from valueAndGrad", () => {
    const x = variable(2);
    const unused = variable([1, 2]);
    const c = constant(3);
    const out = mul(x, c);
    expect(out.requiresGrad).toBe(true);
    const [dx, dUnused, dc] = gradients(out, [x, unused, c]);
    expect(Array.from(dx!)).toEqual([3]);
    expect(dUnused).toBeUndefined();
    expect(dc).toBeUndefined();
    expect(mul(c, 2).requiresGrad).toBe(false);
    expect(mul(c, 2).edge).toBeUndefined();
    const result = valueAndGrad((a, _b) => square(a))(3, [1, 2, 3]);
    expect(result.value).toBe(9);
    expect(result.gradients.map((g) => Array.from(g))).toEqual([[6], [0, 0, 0]]);
  });

  it("splits the gradient of minimum and maximum on ties, and passes it at clip boundaries", () => {
    const a = variable([1, 2]);
    const b = variable([1, 3]);
    const [da, db] = gradients(sum(minimum(a, b)), [a, b]);
    expect(Array.from(da!)).toEqual([0.5, 1]);
    expect(Array.from(db!)).toEqual([0.5, 0]);
    const [dMax] = gradients(sum(maximum(a, b)), [a]);
    expect(Array.from(dMax!)).toEqual([0.5, 0]);
    const x = variable([-1, 0, 1, 2]);
    expect(Array.from(gradients(sum(clip(x, -1, 1)), [x])[0]!)).toEqual([1, 1, 1, 0]);
  });

  it("computes the stable functions without overflow at extreme arguments", () => {
    const x = variable([-1000, 1000]);
    expect(logSigmoid(x).toArray()).toEqual([-1000, -0]);
    expect(softplus(x).toArray()).toEqual([0, 1000]);
    expect(sigmoid(x).toArray()).toEqual([0, 1]);
    expect(Array.from(gradients(sum(logSigmoid(x)), [x])[0]!)).toEqual([1, 0]);
    expect(Array.from(gradients(sum(softplus(x)), [x])[0]!)).toEqual([0, 1]);
  });

  it("accumulates through a long chain without overflowing the stack", () => {
    const x = variable(0.5);
    let total: Tensor = constant(0);
    for (let i = 0; i < 20_000; i++) total = add(total, mul(x, i % 3));
    const [dx] = gradients(total, [x]);
    expect(dx![0]).toBe(19_999);
  });

  it("takes gradients with respect to intermediate results too", () => {
    const x = variable([1, 2]);
    const y = square(x);
    const [dy, dx] = gradients(sum(mul(y, 3)), [y, x]);
    expect(Array.from(dy!)).toEqual([3, 3]);
    expect(Array.from(dx!)).toEqual([6, 12]);
  });

  it("recognises tensors by brand, so that instanceof holds across module copies", () => {
    const foreign = Object.create({ [Symbol.for("tinker-ts.autodiff.Tensor")]: true });
    expect(foreign instanceof Tensor).toBe(true);
    expect(variable(1) instanceof Tensor).toBe(true);
    expect({ values: [] } instanceof Tensor).toBe(false);
  });
});

describe("errors", () => {
  it("rejects mismatched vectors, non-scalar outputs, empty clip ranges and item() of a vector", () => {
    expect(() => add([1, 2], [1, 2, 3])).toThrow(/add: cannot combine vectors of 2 and 3 values/);
    expect(() => gradients(variable([1, 2]), [])).toThrow(/single-valued output/);
    expect(() => clip(1, 2, 1)).toThrow(/low ≤ high/);
    expect(() => variable([1, 2]).item()).toThrow(/single value/);
    expect(concat([]).shape).toEqual([0]);
  });
});
