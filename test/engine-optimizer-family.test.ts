/**
 * The optimizer family of a training run (AdamW or Dimuon, fixed at creation): real training
 * with Dimuon, family mismatches, and checkpoints that carry the family and Dimuon's momentum.
 */
import { describe, expect, it } from "vitest";
import {
  type AdamSettings,
  BOS_TOKEN,
  createBaseModel,
  DEFAULT_DIMUON_SETTINGS,
  DEFAULT_MODEL_CONFIG,
  type EngineDatum,
  EngineError,
  encodeText,
  inspectState,
  type LoraSettings,
  OptimizerMismatchError,
  type OptimizerSettings,
  TrainableModel,
} from "../src/local/engine/index.js";

const LORA: LoraSettings = { rank: 8, seed: 42, trainAttn: true, trainMlp: true, trainUnembed: true };
const DIMUON = { type: "dimuon" as const, learningRate: 0.02, ...DEFAULT_DIMUON_SETTINGS };
const ADAM: AdamSettings = {
  learningRate: 1e-2,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weightDecay: 0,
  gradClipNorm: 0,
};

function datum(text: string, answer: string): EngineDatum {
  const prompt = [BOS_TOKEN, ...encodeText(text)];
  const all = [...prompt, ...encodeText(answer)];
  return {
    tokens: all.slice(0, -1),
    lossFnInputs: {
      target_tokens: all.slice(1),
      weights: all.slice(1).map((_, i) => (i + 1 < prompt.length ? 0 : 1)),
    },
  };
}

const BATCH = [datum("Q: one\nA:", " 1\n"), datum("Q: two\nA:", " 2\n"), datum("Q: three\nA:", " 3\n")];
const base = createBaseModel(DEFAULT_MODEL_CONFIG, 9);

function dimuonModel(): TrainableModel {
  return new TrainableModel(base, LORA, { optimizer: "dimuon" });
}

/** Trains `steps` steps and returns the loss before each. */
function train(model: TrainableModel, steps: number, settings: OptimizerSettings = DIMUON): number[] {
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    losses.push(model.forwardBackward(BATCH, "cross_entropy", undefined, false).metrics["loss:sum"]);
    model.optimStep(settings);
  }
  return losses;
}

function values(model: TrainableModel): Float64Array[] {
  return model.parameters().map((p) => p.value.slice());
}

describe("training with Dimuon", () => {
  it("drives the loss of a small supervised problem down", () => {
    const model = dimuonModel();
    expect(model.optimizer).toBe("dimuon");
    const losses = train(model, 12);
    const final = model.forwardBackward(BATCH, "cross_entropy", undefined, true).metrics["loss:sum"];
    expect(final).toBeLessThan(0.1 * losses[0]);
    for (let i = 1; i < losses.length; i++) expect(losses[i]).toBeLessThan(losses[i - 1]);
    expect(model.step).toBe(12);
  });

  it("is deterministic bit for bit", () => {
    const first = dimuonModel();
    const second = dimuonModel();
    train(first, 3);
    train(second, 3);
    expect(values(second)).toEqual(values(first));
  });

  it("reports the gradient norm and the learning rate as given", () => {
    const model = dimuonModel();
    model.forwardBackward(BATCH, "cross_entropy", undefined, false);
    const metrics = model.optimStep(DIMUON);
    expect(Object.keys(metrics).sort()).toEqual(["grad_norm:mean", "learning_rate:mean"]);
    expect(metrics["learning_rate:mean"]).toBe(DIMUON.learningRate);
    expect(metrics["grad_norm:mean"]).toBeGreaterThan(0);
  });

  it("rejects the other family's params with a typed error and changes nothing", () => {
    const dimuon = dimuonModel();
    dimuon.forwardBackward(BATCH, "cross_entropy", undefined, false);
    const before = values(dimuon);
    const grads = dimuon.parameters().map((p) => p.grad.slice());
    let error: unknown;
    try {
      dimuon.optimStep(ADAM);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(OptimizerMismatchError);
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({ expected: "dimuon", actual: "adamw" });
    expect(values(dimuon)).toEqual(before);
    expect(dimuon.parameters().map((p) => p.grad.slice())).toEqual(grads);
    expect(dimuon.step).toBe(0);

    const adam = new TrainableModel(base, LORA);
    expect(adam.optimizer).toBe("adamw");
    expect(() => adam.optimStep(DIMUON)).toThrow(OptimizerMismatchError);
    expect(() => adam.optimStep({ ...ADAM, type: "adamw" })).not.toThrow();
    expect(() => new TrainableModel(base, LORA, { optimizer: "sgd" as unknown as "adamw" })).toThrow(
      EngineError,
    );
  });
});

describe("Dimuon checkpoints", () => {
  it("save-with-optimizer → load-with-optimizer resumes bit for bit", () => {
    const original = dimuonModel();
    train(original, 2);
    const saved = original.exportState();
    const info = inspectState(saved);
    expect(info.optimizer).toBe("dimuon");
    expect(info.hasOptimizer).toBe(true);
    expect(info.step).toBe(2);
    const continued = train(original, 2);

    const restored = new TrainableModel(base, LORA, { optimizer: info.optimizer });
    restored.importState(saved, { withOptimizer: true });
    expect(restored.step).toBe(2);
    expect(train(restored, 2)).toEqual(continued);
    expect(values(restored)).toEqual(values(original));
    const [a, b] = [restored.exportState(), original.exportState()];
    expect(a.length).toBe(b.length);
    expect(a.every((byte, i) => byte === b[i])).toBe(true);

    // Without its momentum the next step differs.
    const weightsOnly = dimuonModel();
    weightsOnly.importState(saved, { withOptimizer: false });
    expect(weightsOnly.step).toBe(0);
    train(weightsOnly, 2);
    expect(values(weightsOnly)).not.toEqual(values(original));
  });

  it("stores one momentum group (AdamW stores two) and records the family in weights-only states", () => {
    const dimuon = dimuonModel();
    const adam = new TrainableModel(base, LORA);
    const bytes = dimuon.parameterCount * 8;
    expect(payloadLength(dimuon.exportState({ withOptimizer: false }))).toBe(bytes);
    expect(payloadLength(dimuon.exportState())).toBe(2 * bytes);
    expect(payloadLength(adam.exportState())).toBe(3 * bytes);
    expect(inspectState(dimuon.exportState({ withOptimizer: false })).optimizer).toBe("dimuon");
    expect(inspectState(adam.exportState()).optimizer).toBe("adamw");
  });

  it("loads the other family's weights only; its optimizer state is a typed error", () => {
    const dimuon = dimuonModel();
    train(dimuon, 1);
    const adam = new TrainableModel(base, LORA);
    train(adam, 1, ADAM);
    expect(() => adam.importState(dimuon.exportState(), { withOptimizer: true })).toThrow(
      OptimizerMismatchError,
    );
    expect(() => dimuon.importState(adam.exportState(), { withOptimizer: true })).toThrow(
      OptimizerMismatchError,
    );
    adam.importState(dimuon.exportState(), { withOptimizer: false });
    expect(values(adam)).toEqual(values(dimuon));
    expect(adam.step).toBe(0);
    expect(adam.optimizer).toBe("adamw");
  });

  it("reads a version-1 state (before Dimuon) as AdamW", () => {
    const adam = new TrainableModel(base, LORA);
    train(adam, 1, ADAM);
    const v1 = toVersion1(adam.exportState());
    const info = inspectState(v1);
    expect(info.optimizer).toBe("adamw");
    const restored = new TrainableModel(base, LORA);
    restored.importState(v1, { withOptimizer: true });
    expect(restored.step).toBe(1);
    expect(values(restored)).toEqual(values(adam));
    expect(() => dimuonModel().importState(v1, { withOptimizer: true })).toThrow(OptimizerMismatchError);
  });
});

/** Bytes after the header (state.ts layout: 12-byte preamble, JSON header, padding to 8). */
function payloadLength(bytes: Uint8Array): number {
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  return bytes.length - Math.ceil((12 + headerLength) / 8) * 8;
}

/** Rewrites a version-2 AdamW state as version 1 wrote it: no `optimizer` in the header. */
function toVersion1(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)));
  expect(header.optimizer).toBe("adamw");
  delete header.optimizer;
  const payload = bytes.subarray(Math.ceil((12 + headerLength) / 8) * 8);
  const newHeader = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((12 + newHeader.length) / 8) * 8;
  const out = new Uint8Array(start + payload.length);
  out.set(bytes.subarray(0, 4));
  const outView = new DataView(out.buffer);
  outView.setUint32(4, 1, true);
  outView.setUint32(8, newHeader.length, true);
  out.set(newHeader, 12);
  out.set(payload, start);
  return out;
}
