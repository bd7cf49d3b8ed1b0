/**
 * Gradient check: the analytic LoRA gradients of every loss against central finite differences
 * of the loss value, for parameters in attention, MLP and unembedding adapters (A and B).
 */
import { describe, expect, it } from "vitest";
import {
  BOS_TOKEN,
  createBaseModel,
  DEFAULT_MODEL_CONFIG,
  type EngineDatum,
  type Parameter,
  TrainableModel,
} from "../src/local/engine/index.js";
import { Rng } from "../src/local/engine/rng.js";

const STEP = 1e-5;
const TOLERANCE = 1e-4;
/** Adapter tensors to probe: attention (q, k, v, o in both layers), MLP (up, down) and unembedding. */
const PROBED_TENSORS = [
  "layers.0.wq.lora_A",
  "layers.0.wk.lora_B",
  "layers.0.wv.lora_A",
  "layers.1.wo.lora_B",
  "layers.1.wq.lora_B",
  "layers.0.wUp.lora_B",
  "layers.0.wDown.lora_A",
  "layers.1.wUp.lora_A",
  "layers.1.wDown.lora_B",
  "unembed.lora_A",
  "unembed.lora_B",
];
const INDICES_PER_TENSOR = 2;

/** A model whose B matrices are non-zero, so gradients reach every A as well. */
function perturbedModel(targets = { trainAttn: true, trainMlp: true, trainUnembed: true }): TrainableModel {
  const base = createBaseModel(DEFAULT_MODEL_CONFIG, 1234);
  const model = new TrainableModel(base, { rank: 4, seed: 99, ...targets });
  const rng = new Rng(7);
  for (const p of model.parameters()) {
    if (p.name.endsWith("lora_B")) rng.fillNormal(p.value, 0.05);
  }
  return model;
}

function randomTokens(rng: Rng, length: number): number[] {
  return Array.from({ length }, (_, i) => (i === 0 ? BOS_TOKEN : 32 + (rng.nextUint32() % 95)));
}

/** Two short sequences of different lengths (exercises packing and per-sequence attention). */
function batchShapes(rng: Rng): { tokens: number[]; targets: number[] }[] {
  return [9, 6].map((length) => {
    const sequence = randomTokens(rng, length + 1);
    return { tokens: sequence.slice(0, -1), targets: sequence.slice(1) };
  });
}

function parameter(model: TrainableModel, name: string): Parameter {
  const found = model.parameters().find((p) => p.name === name);
  if (!found) throw new Error(`no parameter ${name}`);
  return found;
}

interface Case {
  lossFn: string;
  config?: Record<string, number>;
  /** The datum used for the analytic gradient. */
  batch: EngineDatum[];
  /**
   * The objective whose finite differences are taken; the same batch/loss unless the loss has a
   * stop-gradient (then an objective with that factor held constant, see CISPO below).
   */
  objective: { lossFn: string; config?: Record<string, number>; batch: EngineDatum[] };
}

function lossValue(model: TrainableModel, objective: Case["objective"]): number {
  return model.forwardBackward(objective.batch, objective.lossFn, objective.config, true).metrics["loss:sum"];
}

/** Runs the check and returns the largest relative error seen. */
function checkGradients(model: TrainableModel, testCase: Case, tensors = PROBED_TENSORS): number {
  model.zeroGradients();
  model.forwardBackward(testCase.batch, testCase.lossFn, testCase.config, false);
  const rng = new Rng(2024);
  let worst = 0;
  for (const name of tensors) {
    const p = parameter(model, name);
    const analytic = p.grad.slice();
    for (let probe = 0; probe < INDICES_PER_TENSOR; probe++) {
      const index = rng.nextUint32() % p.value.length;
      const original = p.value[index];
      p.value[index] = original + STEP;
      const plus = lossValue(model, testCase.objective);
      p.value[index] = original - STEP;
      const minus = lossValue(model, testCase.objective);
      p.value[index] = original;
      const numeric = (plus - minus) / (2 * STEP);
      const scale = Math.max(Math.abs(numeric), Math.abs(analytic[index]));
      // A vanishing gradient would make the comparison vacuous; every probed entry must matter.
      expect(scale, `${name}[${index}] has a negligible gradient`).toBeGreaterThan(1e-6);
      const relativeError = Math.abs(numeric - analytic[index]) / scale;
      expect(
        relativeError,
        `${testCase.lossFn} ${name}[${index}]: analytic ${analytic[index]}, numeric ${numeric}`,
      ).toBeLessThan(TOLERANCE);
      worst = Math.max(worst, relativeError);
    }
  }
  model.zeroGradients();
  return worst;
}

/** Current float64-accurate-enough logprobs of the batch (forward only). */
function currentLogprobs(
  model: TrainableModel,
  shapes: { tokens: number[]; targets: number[] }[],
): Float32Array[] {
  const batch = shapes.map(({ tokens, targets }) => ({ tokens, lossFnInputs: { target_tokens: targets } }));
  return model.forwardBackward(batch, "cross_entropy", undefined, true).logprobs;
}

/**
 * RL inputs: sampler logprobs q = lp + noise so that importance ratios spread over roughly
 * [0.6, 1.6] — some inside and some outside the default clip range — and mixed-sign advantages.
 * Ratios within 1e-3 of a clip boundary are nudged away: the PPO/CISPO losses have kinks there,
 * where a finite difference is meaningless.
 */
function rlBatch(
  model: TrainableModel,
  shapes: { tokens: number[]; targets: number[] }[],
  rng: Rng,
  ratioLogSpread: number,
): EngineDatum[] {
  const logprobs = currentLogprobs(model, shapes);
  return shapes.map(({ tokens, targets }, s) => {
    const q = Array.from(logprobs[s], (lp) => {
      let logRatio = rng.nextNormal() * ratioLogSpread;
      for (const boundary of [Math.log(0.8), Math.log(1.2)]) {
        if (Math.abs(logRatio - boundary) < 1e-3) logRatio += 5e-3;
      }
      return lp - logRatio;
    });
    const advantages = Array.from({ length: tokens.length }, () => rng.nextNormal());
    return { tokens, lossFnInputs: { target_tokens: targets, logprobs: q, advantages } };
  });
}

function ratiosOf(model: TrainableModel, batch: EngineDatum[]): number[][] {
  const shapes = batch.map((d) => ({
    tokens: [...d.tokens],
    targets: Array.from(d.lossFnInputs["target_tokens"]),
  }));
  const lp = currentLogprobs(model, shapes);
  return batch.map((d, s) =>
    Array.from(lp[s], (value, i) => Math.exp(value - d.lossFnInputs["logprobs"][i])),
  );
}

describe("engine gradient check (analytic vs central finite differences)", () => {
  const model = perturbedModel();
  const rng = new Rng(31337);
  const shapes = batchShapes(rng);

  it("cross_entropy with weights", () => {
    const batch = shapes.map(({ tokens, targets }) => ({
      tokens,
      lossFnInputs: {
        target_tokens: targets,
        weights: targets.map((_, i) => (i < 2 ? 0 : 0.5 + rng.nextFloat())),
      },
    }));
    const worst = checkGradients(model, {
      lossFn: "cross_entropy",
      batch,
      objective: { lossFn: "cross_entropy", batch },
    });
    expect(worst).toBeLessThan(TOLERANCE);
  });

  it("cross_entropy without weights (all ones)", () => {
    const batch = shapes.map(({ tokens, targets }) => ({ tokens, lossFnInputs: { target_tokens: targets } }));
    checkGradients(model, { lossFn: "cross_entropy", batch, objective: { lossFn: "cross_entropy", batch } });
  });

  it("importance_sampling", () => {
    const batch = rlBatch(model, shapes, rng, 0.3);
    checkGradients(model, {
      lossFn: "importance_sampling",
      batch,
      objective: { lossFn: "importance_sampling", batch },
    });
  });

  it("ppo (ratios inside and outside the clip range, custom thresholds)", () => {
    const batch = rlBatch(model, shapes, rng, 0.3);
    const ratios = ratiosOf(model, batch).flat();
    expect(ratios.some((r) => r < 0.8 || r > 1.2)).toBe(true);
    expect(ratios.some((r) => r > 0.8 && r < 1.2)).toBe(true);
    checkGradients(model, { lossFn: "ppo", batch, objective: { lossFn: "ppo", batch } });
    const config = { clip_low_threshold: 0.9, clip_high_threshold: 1.1 };
    checkGradients(model, { lossFn: "ppo", config, batch, objective: { lossFn: "ppo", config, batch } });
  });

  it("cispo where every ratio is clipped (the stop-gradient factor is locally constant)", () => {
    // Ratios far outside [0.8, 1.2]: clip(r) does not change under small perturbations, so the
    // finite difference of the CISPO loss value itself equals its (stop-gradient) gradient.
    const base = rlBatch(model, shapes, rng, 0);
    const batch = base.map((datum, s) => ({
      ...datum,
      lossFnInputs: {
        ...datum.lossFnInputs,
        logprobs: Array.from(datum.lossFnInputs["logprobs"], (q, i) => q + ((s + i) % 2 === 0 ? 1 : -1)),
      },
    }));
    expect(
      ratiosOf(model, batch)
        .flat()
        .every((r) => r < 0.5 || r > 2),
    ).toBe(true);
    checkGradients(model, { lossFn: "cispo", batch, objective: { lossFn: "cispo", batch } });
  });

  it("cispo with unclipped ratios (against the loss with its stop-gradient factor frozen)", () => {
    // CISPO's gradient is by definition −Σ clip(r)·A·∇lp with clip(r) treated as a constant.
    // Freezing that constant at the current parameters turns the objective into a weighted
    // cross-entropy with weights clip(r)·A, whose value we can finite-difference. (The weights
    // are computed from the float32 logprobs the engine returns, which perturbs them by
    // ~1e-7 relative — far below the tolerance.)
    const batch = rlBatch(model, shapes, rng, 0.1);
    const ratios = ratiosOf(model, batch);
    expect(ratios.flat().some((r) => r > 0.8 && r < 1.2)).toBe(true);
    const frozen = batch.map((datum, s) => ({
      tokens: datum.tokens,
      lossFnInputs: {
        target_tokens: datum.lossFnInputs["target_tokens"],
        weights: ratios[s].map(
          (r, i) => Math.min(Math.max(r, 0.8), 1.2) * datum.lossFnInputs["advantages"][i],
        ),
      },
    }));
    checkGradients(model, { lossFn: "cispo", batch, objective: { lossFn: "cross_entropy", batch: frozen } });
  });

  it("dro (default and custom beta)", () => {
    const batch = rlBatch(model, shapes, rng, 0.5);
    checkGradients(model, { lossFn: "dro", batch, objective: { lossFn: "dro", batch } });
    const config = { beta: 0.7 };
    checkGradients(model, { lossFn: "dro", config, batch, objective: { lossFn: "dro", config, batch } });
  });

  it("partial adapter sets (attention only, MLP only, unembedding only) get exact gradients too", () => {
    // The backward pass stops early below the lowest adapter; check every tensor of each variant.
    const batch = shapes.map(({ tokens, targets }) => ({ tokens, lossFnInputs: { target_tokens: targets } }));
    for (const targets of [
      { trainAttn: true, trainMlp: false, trainUnembed: false },
      { trainAttn: false, trainMlp: true, trainUnembed: false },
      { trainAttn: false, trainMlp: false, trainUnembed: true },
    ]) {
      const partial = perturbedModel(targets);
      const names = partial.parameters().map((p) => p.name);
      checkGradients(
        partial,
        { lossFn: "cross_entropy", batch, objective: { lossFn: "cross_entropy", batch } },
        names,
      );
    }
  });

  it("gradients accumulate across forward_backward calls until optim_step", () => {
    const batch = shapes.map(({ tokens, targets }) => ({ tokens, lossFnInputs: { target_tokens: targets } }));
    const p = parameter(model, "layers.1.wUp.lora_A");
    model.zeroGradients();
    model.forwardBackward(batch, "cross_entropy", undefined, false);
    const once = p.grad.slice();
    model.forwardBackward(batch, "cross_entropy", undefined, false);
    for (let i = 0; i < once.length; i += 97) expect(p.grad[i]).toBeCloseTo(2 * once[i], 12);
    model.forwardBackward(batch, "cross_entropy", undefined, true);
    for (let i = 0; i < once.length; i += 97) expect(p.grad[i]).toBeCloseTo(2 * once[i], 12);
    model.zeroGradients();
  });
});
