/**
 * Every client-side validation rule: the call fails with a ValidationError naming the field, and
 * nothing is sent (the recorded request count does not move).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Datum,
  ModelInput,
  type SamplingClient,
  ServiceClient,
  type TrainingClient,
  ValidationError,
} from "../src/index.js";
import { localService, qaDatum } from "./helpers.js";

let t: ReturnType<typeof localService>;
let training: TrainingClient;
let sampler: SamplingClient;

beforeAll(async () => {
  t = localService();
  training = await t.service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
  sampler = await t.service.createSamplingClient({ baseModel: "tinker-ts/byte-lm-tiny" });
});
afterAll(async () => {
  await t.close();
});

const good = qaDatum("Q", "A");
const withInputs = (inputs: Record<string, unknown>): Datum =>
  ({ ...good, loss_fn_inputs: { ...good.loss_fn_inputs, ...inputs } }) as Datum;
const length = ModelInput.toInts(good.model_input).length;
const floats = (n: number) => ({ data: new Array(n).fill(0.5), dtype: "float32" as const, shape: [n] });
const image = (extra: Record<string, unknown>) =>
  ({
    ...good,
    model_input: { chunks: [{ type: "image", data: "AAAA", format: "png", ...extra }] },
  }) as unknown as Datum;

/** [rule, call, path of the first issue] */
const CASES: [string, () => unknown, RegExp][] = [
  ["unknown loss", () => training.forwardBackward([good], "mse" as never), /^loss_fn$/],
  ["no data", () => training.forwardBackward([], "cross_entropy"), /^data$/],
  // fast-check found it: an object without toString must not turn the error into a TypeError.
  [
    "loss that cannot be printed",
    () => training.forwardBackward([good], { toString: false } as never),
    /^loss_fn$/,
  ],
  [
    "token that cannot be printed",
    () => sampler.sample({ chunks: [{ type: "encoded_text", tokens: [Object.create(null)] }] }, 1, {}),
    /tokens\[0\]$/,
  ],
  [
    "non-finite config",
    () => training.forwardBackward([good], "dro", { beta: Number.NaN }),
    /^loss_fn_config\.beta$/,
  ],
  [
    "config key of another loss",
    () => training.forwardBackward([good], "cross_entropy", { beta: 1 }),
    /^loss_fn_config\.beta$/,
  ],
  ["datum not an object", () => training.forwardBackward([null as never], "cross_entropy"), /^data\[0\]$/],
  [
    "model_input without chunks",
    () => training.forwardBackward([{ ...good, model_input: {} as never }], "cross_entropy"),
    /^data\[0\]\.model_input$/,
  ],
  [
    "bad token id",
    () => training.forwardBackward([{ ...good, model_input: ModelInput.fromInts([1, -2]) }], "cross_entropy"),
    /tokens\[1\]$/,
  ],
  [
    "unknown chunk type",
    () =>
      training.forwardBackward(
        [{ ...good, model_input: { chunks: [{ type: "video" } as never] } }],
        "cross_entropy",
      ),
    /chunks\[0\]\.type$/,
  ],
  [
    "asset pointer in training",
    () =>
      training.forwardBackward(
        [
          {
            ...good,
            model_input: {
              chunks: [{ type: "image_asset_pointer", format: "png", location: "x", expected_tokens: 2 }],
            },
          },
        ],
        "cross_entropy",
      ),
    /chunks\[0\]$/,
  ],
  [
    "image format",
    () => training.forwardBackward([image({ format: "gif", expected_tokens: 4 })], "cross_entropy"),
    /chunks\[0\]\.format$/,
  ],
  [
    "image expected_tokens invalid",
    () => training.forwardBackward([image({ expected_tokens: 0 })], "cross_entropy"),
    /expected_tokens$/,
  ],
  [
    "image expected_tokens missing in training",
    () => training.forwardBackward([image({})], "cross_entropy"),
    /expected_tokens$/,
  ],
  [
    "required input missing",
    () => training.forwardBackward([good], "importance_sampling"),
    /loss_fn_inputs\.logprobs$/,
  ],
  [
    "input not read by the loss",
    () => training.forwardBackward([withInputs({ advantages: floats(length) })], "cross_entropy"),
    /loss_fn_inputs\.advantages$/,
  ],
  [
    "bad dtype",
    () =>
      training.forwardBackward([withInputs({ weights: { data: [1], dtype: "float16" } })], "cross_entropy"),
    /weights\.dtype$/,
  ],
  [
    "non-integer int64",
    () =>
      training.forwardBackward(
        [withInputs({ target_tokens: { data: [0.5], dtype: "int64" } })],
        "cross_entropy",
      ),
    /target_tokens\.data\[0\]$/,
  ],
  [
    "shape does not match data",
    () =>
      training.forwardBackward(
        [withInputs({ weights: { data: [1, 1], dtype: "float32", shape: [3] } })],
        "cross_entropy",
      ),
    /weights\.shape$/,
  ],
  [
    "input length differs from tokens",
    () => training.forwardBackward([withInputs({ weights: floats(length - 1) })], "cross_entropy"),
    /loss_fn_inputs\.weights$/,
  ],
  [
    "longer than the context",
    () =>
      training.forward(
        [
          {
            model_input: ModelInput.fromInts(new Array(300).fill(65)),
            loss_fn_inputs: { target_tokens: { data: new Array(300).fill(65), dtype: "int64" } },
          },
        ],
        "cross_entropy",
      ),
    /model_input$/,
  ],
  ["adam learning rate", () => training.optimStep({ learning_rate: -1 }), /adam_params\.learning_rate$/],
  ["adam beta", () => training.optimStep({ beta2: 1 }), /adam_params\.beta2$/],
  ["checkpoint name", () => training.saveState("a/b"), /^name$/],
  ["checkpoint path", () => training.loadStateWithOptimizer("s3://x"), /^path$/],
  ["num_samples", () => sampler.sample(ModelInput.fromInts([1]), 0, {}), /^num_samples$/],
  ["max_tokens", () => sampler.sample(ModelInput.fromInts([1]), 1, { max_tokens: 0 }), /max_tokens$/],
  ["temperature", () => sampler.sample(ModelInput.fromInts([1]), 1, { temperature: -0.1 }), /temperature$/],
  ["top_p", () => sampler.sample(ModelInput.fromInts([1]), 1, { top_p: 0 }), /top_p$/],
  ["top_k", () => sampler.sample(ModelInput.fromInts([1]), 1, { top_k: 0 }), /top_k$/],
  ["seed", () => sampler.sample(ModelInput.fromInts([1]), 1, { seed: 1.5 }), /seed$/],
  [
    "topk prompt logprobs",
    () => sampler.sample(ModelInput.fromInts([1]), 1, {}, { topkPromptLogprobs: -1 }),
    /topk_prompt_logprobs$/,
  ],
  [
    "prompt + max_tokens over the context",
    () => sampler.sample(ModelInput.fromInts(new Array(250).fill(65)), 1, { max_tokens: 10 }),
    /max_tokens$/,
  ],
  [
    "image format in a prompt",
    () => sampler.sample({ chunks: [{ type: "image", data: "AAAA", format: "bmp" as never }] }, 1, {}),
    /format$/,
  ],
];

describe("client-side validation", () => {
  it.each(CASES)("%s", (_rule, call, path) => {
    const sent = t.requests.length;
    let error: unknown;
    try {
      call();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues[0]!.path).toMatch(path);
    expect(t.requests.length).toBe(sent);
  });

  it("rejects bad client and training-client options before any request", async () => {
    const sent = t.requests.length;
    await expect(t.service.createLoraTrainingClient("", { rank: 4 })).rejects.toThrow(/base_model/);
    await expect(t.service.createLoraTrainingClient("m", { rank: 0 })).rejects.toThrow(/rank/);
    await expect(t.service.createLoraTrainingClient("m", { seed: 0.5 })).rejects.toThrow(/seed/);
    await expect(
      t.service.createLoraTrainingClient("m", { trainAttn: false, trainMlp: false, trainUnembed: false }),
    ).rejects.toThrow(/at least one/);
    await expect(t.service.createSamplingClient({})).rejects.toThrow(ValidationError);
    await expect(t.service.createSamplingClient({ modelPath: "s3://bucket/x" })).rejects.toThrow(
      /tinker:\/\//,
    );
    await expect(t.service.createTrainingClientFromState("tinker://run/sampler_weights/x")).rejects.toThrow(
      ValidationError,
    );
    expect(() => new ServiceClient({ apiKey: "bad", baseURL: "http://x" })).toThrow(ValidationError);
    expect(() => new ServiceClient({ apiKey: "tml-x", maxRetries: -1 })).toThrow(/maxRetries/);
    expect(t.requests.length).toBe(sent);
  });

  it("accepts what the rules allow (so they are not over-strict)", async () => {
    const ppo = withInputs({ logprobs: floats(length), advantages: floats(length) });
    await expect(
      training.forward([ppo], "ppo", { clip_low_threshold: 0.8, clip_high_threshold: 1.2 }),
    ).resolves.toBeDefined();
    await expect(training.forward([ppo], "dro", { beta: 0.1 })).resolves.toBeDefined();
    await expect(
      sampler.sample(ModelInput.fromInts(new Array(200).fill(65)), 1, { max_tokens: 56 }),
    ).resolves.toBeDefined();
  });
});
