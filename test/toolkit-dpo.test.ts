/**
 * DPO on forwardBackwardCustom: the closed-form gradient against finite differences of the loss,
 * the metrics, and a real run on the local backend where preference accuracy goes from 0 to 1 on
 * the training pairs and on held-out pairs of the same kind (replies ending "." preferred to "!!!").
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Datum, ServiceClient, ValidationError } from "../src/index.js";
import { ByteLevelTokenizer } from "../src/lib/tokenizer/index.js";
import { BUILTIN_BASE_MODEL, createLocalTinker } from "../src/local/index.js";
import {
  type DpoExample,
  dpoData,
  dpoLoss,
  dpoMetrics,
  dpoStep,
  evaluateDpo,
  getRenderer,
  preferencePairFromConversation,
  preferencePairFromPromptCompletion,
  withReferenceLogprobs,
} from "../src/toolkit/index.js";

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function setup() {
  const local = createLocalTinker({ longPollMs: 2_000 });
  let requests = 0;
  const service = new ServiceClient({
    apiKey: "tml-test",
    baseURL: "http://local.tinker",
    fetch: (request: Request) => {
      requests++;
      return local.fetch(request);
    },
  });
  closers.push(async () => {
    await service.close();
    await local.close();
  });
  return { service, requests: () => requests };
}

const tokenizer = new ByteLevelTokenizer();
const pairOf = ([prompt, answer]: readonly [string, string]) =>
  preferencePairFromPromptCompletion(tokenizer, { prompt, chosen: ` ${answer}.`, rejected: ` ${answer}!!!` });
const TRAIN = (
  [
    ["Q: What is 2 + 2?\nA:", "Four"],
    ["Q: What color is the sky?\nA:", "Blue"],
    ["Q: Who wrote Hamlet?\nA:", "Shakespeare"],
    ["Q: What do bees make?\nA:", "Honey"],
    ["Q: What is frozen water?\nA:", "Ice"],
    ["Q: Which animal says moo?\nA:", "A cow"],
  ] as const
).map(pairOf);
const HELD_OUT = (
  [
    ["Q: What is the opposite of hot?\nA:", "Cold"],
    ["Q: How many legs has a spider?\nA:", "Eight"],
    ["Q: What is the largest planet?\nA:", "Jupiter"],
  ] as const
).map(pairOf);

describe("dpoMetrics and dpoLoss", () => {
  it("gives log 2 at zero margin, and counts accuracy strictly", () => {
    const m = dpoMetrics(
      [
        { chosen: -1, rejected: -1 },
        { chosen: -1, rejected: -3 },
      ],
      [
        { chosen: -1, rejected: -1 },
        { chosen: -2, rejected: -2 },
      ],
      0.5,
    );
    // Pair 0: z = 0. Pair 1: chosen ratio +1, rejected ratio −1, z = 0.5·2 = 1.
    expect(m.accuracy).toBe(0.5);
    expect(m.margin).toBeCloseTo(0.5, 12);
    expect(m.loss).toBeCloseTo((Math.LN2 + Math.log1p(Math.exp(-1))) / 2, 12);
    expect(m.chosenReward).toBeCloseTo(0.25, 12);
    expect(m.rejectedReward).toBeCloseTo(-0.25, 12);
  });

  it("has the gradient of its loss (finite differences)", async () => {
    const examples: DpoExample[] = TRAIN.slice(0, 3).map((pair, i) => ({
      ...pair,
      referenceChosen: -3 - i,
      referenceRejected: -4 + i,
    }));
    const data = dpoData(examples);
    const beta = 0.7;
    const loss = dpoLoss(examples, { beta });
    // Made-up logprobs, different at every position.
    const logprobs = data.map((d, i) =>
      d.loss_fn_inputs.target_tokens!.data.map((_, t) => -0.1 - 0.05 * ((i * 7 + t) % 11)),
    );
    const at = async (values: number[][]) => (await loss.gradient(data, values)).loss;
    const { gradients, metrics } = await loss.gradient(data, logprobs);
    expect(Object.keys(metrics!).sort()).toEqual([
      "accuracy:mean",
      "chosen_reward:mean",
      "dpo_loss:mean",
      "margin:mean",
      "rejected_reward:mean",
    ]);
    const h = 1e-6;
    let checked = 0;
    for (let i = 0; i < data.length; i++) {
      for (let t = 0; t < logprobs[i]!.length; t += 3) {
        const plus = logprobs.map((row) => [...row]);
        const minus = logprobs.map((row) => [...row]);
        plus[i]![t]! += h;
        minus[i]![t]! -= h;
        const numeric = ((await at(plus)) - (await at(minus))) / (2 * h);
        expect(gradients[i]![t]).toBeCloseTo(numeric, 6);
        checked++;
      }
    }
    // The prompt positions (weight 0) get no gradient; the reply positions do.
    expect(checked).toBeGreaterThan(20);
    const weights = data[0]!.loss_fn_inputs.weights!.data;
    expect(Array.from(gradients[0]!).filter((g, t) => weights[t] === 0 && g !== 0)).toEqual([]);
    expect(Array.from(gradients[0]!).some((g) => g !== 0)).toBe(true);
  });

  it("rejects bad input before any request", async () => {
    const { service, requests } = setup();
    const training = await service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 4, seed: 1 });
    const sent = requests();
    const examples: DpoExample[] = [{ ...TRAIN[0]!, referenceChosen: -1, referenceRejected: -2 }];
    await expect(dpoStep(training, examples, { beta: 0, adam: { learning_rate: 1e-2 } })).rejects.toThrow(
      ValidationError,
    );
    await expect(dpoStep(training, examples, { beta: 0.1, adam: { learning_rate: -1 } })).rejects.toThrow(
      ValidationError,
    );
    await expect(
      dpoStep(training, [{ ...examples[0]!, referenceChosen: Number.NaN }], { beta: 0.1, adam: {} }),
    ).rejects.toThrow(/examples\[0\]\.referenceChosen/);
    const unweighted: Datum = {
      ...TRAIN[0]!.rejected,
      loss_fn_inputs: {
        ...TRAIN[0]!.rejected.loss_fn_inputs,
        weights: {
          ...TRAIN[0]!.rejected.loss_fn_inputs.weights!,
          data: TRAIN[0]!.rejected.loss_fn_inputs.weights!.data.map(() => 0),
        },
      },
    };
    const sampler = await training.saveWeightsAndGetSamplingClient();
    const afterSampler = requests();
    await expect(
      withReferenceLogprobs(sampler, [{ chosen: TRAIN[0]!.chosen, rejected: unweighted }]),
    ).rejects.toThrow(/pairs\[0\]\.rejected: has no weighted target/);
    expect(sent).toBeGreaterThan(0);
    expect(requests()).toBe(afterSampler);
  });
});

describe("preferencePairFromConversation", () => {
  it("weights the reply only, after the same rendered prompt", () => {
    const renderer = getRenderer("role_colon", tokenizer);
    const pair = preferencePairFromConversation(renderer, {
      messages: [{ role: "user", content: "Greet me." }],
      chosen: "Hello.",
      rejected: "Go away!!!",
    });
    const prompt = renderer.buildGenerationPrompt([{ role: "user", content: "Greet me." }]);
    for (const [datum, reply] of [
      [pair.chosen, "Hello."],
      [pair.rejected, "Go away!!!"],
    ] as const) {
      const weights = datum.loss_fn_inputs.weights!.data;
      const targets = datum.loss_fn_inputs.target_tokens!.data.map(Number);
      const trained = targets.filter((_, t) => weights[t] === 1);
      expect(tokenizer.decode(trained.slice(0, -1))).toBe(reply);
      expect(trained.at(-1)).toBe(tokenizer.eosTokenId);
      // Everything before the reply is the generation prompt, untrained.
      expect(weights.slice(0, prompt.length - 1).every((w) => w === 0)).toBe(true);
    }
  });
});

describe("DPO on the local backend", () => {
  it("raises preference accuracy from 0 to 1, on training and held-out pairs", async () => {
    const { service } = setup();
    const training = await service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 8, seed: 0 });
    // The frozen reference: a sampler of the starting weights, scored once.
    const reference = await training.saveWeightsAndGetSamplingClient();
    const train = await withReferenceLogprobs(reference, TRAIN);
    const heldOut = await withReferenceLogprobs(reference, HELD_OUT);
    const beta = 0.1;

    // The policy is the reference: every margin is 0 (the sampler and the trainer agree to the bit).
    const before = await evaluateDpo(training, train, { beta });
    const heldOutBefore = await evaluateDpo(training, heldOut, { beta });
    for (const m of [before, heldOutBefore]) {
      expect(m.margin).toBe(0);
      expect(m.accuracy).toBe(0);
      expect(m.loss).toBeCloseTo(Math.LN2, 12);
    }

    const history = [];
    for (let step = 0; step < 6; step++) {
      history.push((await dpoStep(training, train, { beta, adam: { learning_rate: 1e-2 } })).metrics);
    }
    // A step reports the metrics of the weights it started from.
    expect(history[0]).toEqual(before);
    expect(history.at(-1)!.loss).toBeLessThan(history[1]!.loss);

    const after = await evaluateDpo(training, train, { beta });
    const heldOutAfter = await evaluateDpo(training, heldOut, { beta });
    expect(after.accuracy).toBe(1);
    expect(after.margin).toBeGreaterThan(1);
    expect(after.loss).toBeLessThan(0.3);
    expect(after.rejectedReward).toBeLessThan(after.chosenReward);
    // Generalises: the same preference on questions it never trained on.
    expect(heldOutAfter.accuracy).toBe(1);
    expect(heldOutAfter.margin).toBeGreaterThan(1);
  });
});
