import { describe, expect, it } from "vitest";
import {
  type AdamSettings,
  BOS_TOKEN,
  createBaseModel,
  DEFAULT_MODEL_CONFIG,
  decodeTokens,
  EngineError,
  EOS_TOKEN,
  encodeText,
  LOSS_FUNCTIONS,
  TOKENIZER_ID,
  TrainableModel,
  VOCAB_SIZE,
} from "../src/local/engine/index.js";

const base = createBaseModel(DEFAULT_MODEL_CONFIG, 1);
const lora = { rank: 4, seed: 0, trainAttn: true, trainMlp: true, trainUnembed: true };
const adam: AdamSettings = {
  learningRate: 1e-2,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weightDecay: 0,
  gradClipNorm: 0,
};
const tokens = [BOS_TOKEN, ...encodeText("abc")];
const targets = [...encodeText("abc"), EOS_TOKEN];

describe("tokenizer", () => {
  it("is byte-level UTF-8 with two specials", () => {
    expect(VOCAB_SIZE).toBe(258);
    expect(BOS_TOKEN).toBe(256);
    expect(EOS_TOKEN).toBe(257);
    expect(TOKENIZER_ID).toBe("tinker-ts/byte-level");
    expect(encodeText("Hi é")).toEqual([72, 105, 32, 0xc3, 0xa9]);
    expect(encodeText("<|bos|>")).toEqual(Array.from("<|bos|>", (c) => c.charCodeAt(0)));
  });

  it("decodes round trips, renders specials by name and tolerates invalid UTF-8", () => {
    const text = "naïve 日本 🙂";
    expect(decodeTokens(encodeText(text))).toBe(text);
    expect(decodeTokens([BOS_TOKEN, 104, 105, EOS_TOKEN])).toBe("<|bos|>hi<|eos|>");
    expect(decodeTokens([0xff, 104])).toBe("\ufffdh");
    expect(decodeTokens([0xe6, 0x97])).toBe("\ufffd"); // truncated multi-byte character
  });
});

describe("forward_backward validation", () => {
  const model = new TrainableModel(base, lora);

  it("reports the summed loss under 'loss:sum'", () => {
    const weights = [0, 1, 1, 2];
    const result = model.forwardBackward(
      [{ tokens, lossFnInputs: { target_tokens: targets, weights } }],
      "cross_entropy",
      undefined,
      true,
    );
    const lp = result.logprobs[0];
    expect(lp).toBeInstanceOf(Float32Array);
    expect(lp).toHaveLength(tokens.length);
    expect(result.metrics["loss:sum"]).toBeCloseTo(-(lp[1] + lp[2] + 2 * lp[3]), 5);
    expect(Object.keys(result.metrics).every((key) => key.split(":").length === 2)).toBe(true);
  });

  it("sums (never averages) over tokens and data", () => {
    const single = model.forwardBackward(
      [{ tokens, lossFnInputs: { target_tokens: targets } }],
      "cross_entropy",
      undefined,
      true,
    );
    const double = model.forwardBackward(
      [
        { tokens, lossFnInputs: { target_tokens: targets } },
        { tokens, lossFnInputs: { target_tokens: targets } },
      ],
      "cross_entropy",
      undefined,
      true,
    );
    expect(double.metrics["loss:sum"]).toBeCloseTo(2 * single.metrics["loss:sum"], 10);
  });

  it("computes the RL losses from their definitions", () => {
    const lp = Array.from(
      model.forwardBackward(
        [{ tokens, lossFnInputs: { target_tokens: targets } }],
        "cross_entropy",
        undefined,
        true,
      ).logprobs[0],
    );
    const q = lp.map((x, i) => x + [0.5, -0.5, 0.05, 0][i]);
    const advantages = [1, -2, 0.5, 3];
    const inputs = { target_tokens: targets, logprobs: q, advantages };
    const loss = (name: string, config?: Record<string, number>) =>
      model.forwardBackward([{ tokens, lossFnInputs: inputs }], name, config, true).metrics["loss:sum"];
    const ratio = lp.map((x, i) => Math.exp(x - q[i]));
    const clip = (r: number, lo: number, hi: number) => Math.min(Math.max(r, lo), hi);
    const sum = (f: (i: number) => number) => [0, 1, 2, 3].reduce((acc, i) => acc + f(i), 0);

    expect(loss("importance_sampling")).toBeCloseTo(-sum((i) => ratio[i] * advantages[i]), 5);
    expect(loss("ppo")).toBeCloseTo(
      -sum((i) => Math.min(ratio[i] * advantages[i], clip(ratio[i], 0.8, 1.2) * advantages[i])),
      5,
    );
    expect(loss("ppo", { clip_low: 0.5, clip_high: 1.5 })).toBeCloseTo(
      -sum((i) => Math.min(ratio[i] * advantages[i], clip(ratio[i], 0.5, 1.5) * advantages[i])),
      5,
    );
    expect(loss("cispo", { clip_low_threshold: 0.9, clip_high_threshold: 1.1 })).toBeCloseTo(
      -sum((i) => clip(ratio[i], 0.9, 1.1) * advantages[i] * lp[i]),
      5,
    );
    expect(loss("dro", { beta: 0.3 })).toBeCloseTo(
      -sum((i) => lp[i] * advantages[i] - 0.15 * (lp[i] - q[i]) ** 2),
      5,
    );
    expect(LOSS_FUNCTIONS).toEqual(["cross_entropy", "importance_sampling", "ppo", "cispo", "dro"]);
  });

  it("throws EngineError for unknown losses and bad inputs, naming the datum and key", () => {
    const good = { tokens, lossFnInputs: { target_tokens: targets } };
    const run =
      (batch: Parameters<TrainableModel["forwardBackward"]>[0], lossFn = "cross_entropy") =>
      () =>
        model.forwardBackward(batch, lossFn, undefined, false);
    expect(run([good], "hinge")).toThrow(EngineError);
    expect(run([good], "hinge")).toThrow(/unknown loss function "hinge"/);
    expect(run([good, good], "ppo")).toThrow(/datum 0: loss_fn_inputs.logprobs is required by ppo/);
    expect(
      run(
        [good, { tokens, lossFnInputs: { target_tokens: targets, logprobs: [0, 0, 0, 0] } }],
        "importance_sampling",
      ),
    ).toThrow(/datum 0/);
    expect(
      run(
        [
          {
            tokens,
            lossFnInputs: { target_tokens: targets, logprobs: [0, 0, 0, 0], advantages: [1, 1, 1, 1] },
          },
          { tokens, lossFnInputs: { target_tokens: targets, logprobs: [0, 0, 0, 0] } },
        ],
        "dro",
      ),
    ).toThrow(/datum 1: loss_fn_inputs.advantages is required/);
    expect(run([good, { tokens, lossFnInputs: { target_tokens: targets.slice(1) } }])).toThrow(
      /datum 1: loss_fn_inputs.target_tokens has length 3, expected 4/,
    );
    expect(run([{ tokens, lossFnInputs: { target_tokens: targets, weights: [1, 1] } }])).toThrow(
      /datum 0: loss_fn_inputs.weights has length 2/,
    );
    expect(run([{ tokens, lossFnInputs: {} }])).toThrow(/target_tokens is required/);
    expect(
      run([{ tokens, lossFnInputs: { target_tokens: targets, weights: [1, Number.NaN, 1, 1] } }]),
    ).toThrow(/datum 0: loss_fn_inputs.weights\[1\] = NaN is not a finite number/);
    expect(run([{ tokens: [1, 2, 999], lossFnInputs: { target_tokens: [1, 2, 3] } }])).toThrow(
      /datum 0: token 2/,
    );
    expect(run([{ tokens: [1, 2, 3], lossFnInputs: { target_tokens: [1, 2, 258] } }])).toThrow(EngineError);
    const tooLong = Array.from({ length: DEFAULT_MODEL_CONFIG.maxSeqLen + 1 }, () => 65);
    expect(run([{ tokens: tooLong, lossFnInputs: { target_tokens: tooLong } }])).toThrow(
      /exceed the model's context/,
    );
    expect(() =>
      model.forwardBackward([good], "ppo", { clip_low_threshold: 1.5, clip_high_threshold: 1.2 }, true),
    ).toThrow(EngineError);
  });

  it("handles an empty batch and empty sequences", () => {
    expect(model.forwardBackward([], "cross_entropy", undefined, false)).toEqual({
      logprobs: [],
      metrics: { "loss:sum": 0 },
    });
    const result = model.forwardBackward(
      [
        { tokens: [], lossFnInputs: { target_tokens: [] } },
        { tokens, lossFnInputs: { target_tokens: targets } },
      ],
      "cross_entropy",
      undefined,
      false,
    );
    expect(result.logprobs[0]).toHaveLength(0);
    expect(result.logprobs[1]).toHaveLength(4);
    model.zeroGradients();
  });
});

describe("LoRA and AdamW", () => {
  it("creates adapters only where requested, of the requested rank", () => {
    const names = (settings: Partial<typeof lora>) =>
      new TrainableModel(base, { ...lora, ...settings }).parameters().map((p) => p.name);
    expect(names({ trainMlp: false, trainUnembed: false })).toEqual(
      [0, 1].flatMap((l) =>
        ["wq", "wk", "wv", "wo"].flatMap((m) => [`layers.${l}.${m}.lora_A`, `layers.${l}.${m}.lora_B`]),
      ),
    );
    expect(names({ trainAttn: false, trainUnembed: false })).toHaveLength(8);
    expect(names({ trainAttn: false, trainMlp: false })).toEqual(["unembed.lora_A", "unembed.lora_B"]);
    const rank64 = new TrainableModel(base, { ...lora, rank: 64 });
    expect(rank64.parameters().find((p) => p.name === "unembed.lora_A")?.value).toHaveLength(64 * 64);
    expect(rank64.parameters().find((p) => p.name === "unembed.lora_B")?.value).toHaveLength(258 * 64);
    expect(() => new TrainableModel(base, { ...lora, rank: 0 })).toThrow(EngineError);
    expect(() => new TrainableModel(base, { ...lora, rank: 2.5 })).toThrow(EngineError);
  });

  it("trains only the enabled adapters and reports name:reduction metrics", () => {
    const model = new TrainableModel(base, { ...lora, trainAttn: false, trainMlp: false });
    const before = model.parameters().map((p) => p.value.slice());
    model.forwardBackward(
      [{ tokens, lossFnInputs: { target_tokens: targets } }],
      "cross_entropy",
      undefined,
      false,
    );
    const metrics = model.optimStep(adam);
    expect(Object.keys(metrics).sort()).toEqual(["grad_norm:mean", "learning_rate:mean"]);
    expect(metrics["learning_rate:mean"]).toBe(1e-2);
    expect(metrics["grad_norm:mean"]).toBeGreaterThan(0);
    expect(model.step).toBe(1);
    // B moves first (A's gradient is zero while B = 0).
    const [a, b] = model.parameters();
    expect(Array.from(a.value)).toEqual(Array.from(before[0]));
    expect(Array.from(b.value)).not.toEqual(Array.from(before[1]));
    // Gradients are consumed by the step.
    expect(b.grad.every((g) => g === 0)).toBe(true);
  });

  it("applies bias-corrected AdamW with decoupled weight decay and global-norm clipping", () => {
    const model = new TrainableModel(base, { ...lora, trainAttn: false, trainMlp: false });
    const [a, b] = model.parameters();
    b.value.fill(0.5);
    const a0 = a.value.slice();
    const b0 = b.value.slice();
    model.forwardBackward(
      [{ tokens, lossFnInputs: { target_tokens: targets } }],
      "cross_entropy",
      undefined,
      false,
    );
    const gradA = a.grad.slice();
    const gradB = b.grad.slice();
    let squares = 0;
    for (const g of [...gradA, ...gradB]) squares += g * g;
    const norm = Math.sqrt(squares);
    const settings = { ...adam, weightDecay: 0.1, gradClipNorm: norm / 4 };
    const metrics = model.optimStep(settings);
    expect(metrics["grad_norm:mean"]).toBeCloseTo(norm, 10);
    // First step: m̂ = g', v̂ = g'², so the update is lr·g'/(|g'| + eps) plus the decay term.
    const scale = settings.gradClipNorm / (norm + 1e-6);
    const expected = (p0: number, g: number) => {
      const clipped = g * scale;
      return (
        p0 * (1 - settings.learningRate * settings.weightDecay) -
        (settings.learningRate * clipped) / (Math.abs(clipped) + settings.eps)
      );
    };
    for (let i = 0; i < a0.length; i += 37) expect(a.value[i]).toBeCloseTo(expected(a0[i], gradA[i]), 12);
    for (let i = 0; i < b0.length; i += 37) expect(b.value[i]).toBeCloseTo(expected(b0[i], gradB[i]), 12);
    expect(() => model.optimStep({ ...adam, beta1: 1 })).toThrow(EngineError);
  });
});
