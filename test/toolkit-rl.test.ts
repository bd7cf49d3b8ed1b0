/**
 * tinker-ts/toolkit RL helpers: advantages and datums as pure functions, and rollouts/trajectory
 * training against the real local backend.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ModelInput, ValidationError } from "../src/index.js";
import { BOS_TOKEN, BUILTIN_BASE_MODEL, encodeText } from "../src/local/index.js";
import {
  centerAdvantages,
  groupsToData,
  type RolloutGroup,
  removeConstantRewardGroups,
  sampleGroups,
  trajectoryToDatum,
} from "../src/toolkit/index.js";
import { localService } from "./helpers.js";

function validationPaths(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).issues.map((issue) => issue.path);
  }
  throw new Error("expected a ValidationError");
}

describe("centerAdvantages", () => {
  it("subtracts the group mean", () => {
    expect(centerAdvantages([1, 0, 0, 1])).toEqual([0.5, -0.5, -0.5, 0.5]);
    expect(centerAdvantages([3])).toEqual([0]);
    expect(centerAdvantages([])).toEqual([]);
  });

  it("divides by the population standard deviation plus epsilon when normalising", () => {
    const advantages = centerAdvantages([1, 0, 0, 1], { normalize: true, epsilon: 0 });
    expect(advantages).toEqual([1, -1, -1, 1]);
    const withEpsilon = centerAdvantages([2, 0], { normalize: true, epsilon: 1 });
    expect(withEpsilon).toEqual([0.5, -0.5]);
    // A constant group stays all zeros instead of 0/0.
    expect(centerAdvantages([0.3, 0.3], { normalize: true, epsilon: 0 })).toEqual([0, 0]);
  });

  it("rejects non-finite rewards and a bad epsilon with a field path", () => {
    expect(validationPaths(() => centerAdvantages([1, Number.NaN, Infinity]))).toEqual([
      "rewards[1]",
      "rewards[2]",
    ]);
    expect(validationPaths(() => centerAdvantages([1], { epsilon: -1 }))).toEqual(["options.epsilon"]);
  });
});

describe("removeConstantRewardGroups", () => {
  it("keeps only groups whose rewards differ, aligned with their rewards", () => {
    const kept = removeConstantRewardGroups(
      ["a", "b", "c"],
      [
        [1, 1],
        [0, 1],
        [0.2, 0.2],
      ],
    );
    expect(kept).toEqual({ groups: ["b"], rewards: [[0, 1]] });
  });

  it("rejects a rewards list that does not match the groups", () => {
    expect(validationPaths(() => removeConstantRewardGroups(["a"], []))).toEqual(["rewards"]);
    expect(validationPaths(() => removeConstantRewardGroups(["a"], [[Number.NaN]]))).toEqual([
      "rewards[0][0]",
    ]);
  });
});

describe("trajectoryToDatum", () => {
  it("shifts prompt + completion and puts logprobs and advantages on completion targets only", () => {
    const d = trajectoryToDatum({
      prompt: [10, 11, 12],
      completion: [20, 21],
      logprobs: [-1.5, -0.25],
      advantage: 0.75,
    });
    expect(ModelInput.toInts(d.model_input)).toEqual([10, 11, 12, 20]);
    expect(d.loss_fn_inputs.target_tokens).toEqual({ data: [11, 12, 20, 21], dtype: "int64", shape: [4] });
    expect(d.loss_fn_inputs.logprobs).toEqual({ data: [0, 0, -1.5, -0.25], dtype: "float32", shape: [4] });
    expect(d.loss_fn_inputs.advantages).toEqual({ data: [0, 0, 0.75, 0.75], dtype: "float32", shape: [4] });
  });

  it("rejects mismatched lengths, empty parts and bad numbers with field paths", () => {
    expect(
      validationPaths(() =>
        trajectoryToDatum({ prompt: [1], completion: [2, 3], logprobs: [-1], advantage: 1 }),
      ),
    ).toEqual(["logprobs"]);
    expect(
      validationPaths(() =>
        trajectoryToDatum({ prompt: [], completion: [], logprobs: [], advantage: Number.NaN }),
      ),
    ).toEqual(["prompt", "completion", "advantage"]);
    expect(
      validationPaths(() =>
        trajectoryToDatum({
          prompt: [1, -2],
          completion: [2.5],
          logprobs: [Number.POSITIVE_INFINITY],
          advantage: 0,
        }),
      ),
    ).toEqual(["prompt[1]", "completion[0]", "logprobs[0]"]);
  });
});

describe("groupsToData", () => {
  const group = (prompt: number[], completions: number[][]): RolloutGroup => ({
    prompt,
    completions: completions.map((tokens) => ({
      tokens,
      logprobs: tokens.map(() => -1),
      stopReason: "length",
    })),
  });

  it("scores, centres, drops constant groups and skips empty completions", () => {
    const groups = [group([1, 2], [[5], [6], []]), group([3, 4], [[7], [7]])];
    const result = groupsToData(groups, (completion, groupIndex) =>
      groupIndex === 0 ? (completion.tokens[0] ?? 0) : 1,
    );
    expect(result.rewards).toEqual([
      [5, 6, 0],
      [1, 1],
    ]);
    expect(result.droppedGroups).toBe(1);
    expect(result.advantages[1]).toEqual([0, 0]);
    // Group 0: mean 11/3; the empty completion is scored but has nothing to train on.
    expect(result.data).toHaveLength(2);
    expect(result.data[0]!.loss_fn_inputs.advantages!.data[1]).toBeCloseTo(5 - 11 / 3, 12);
    expect(result.data[1]!.loss_fn_inputs.advantages!.data[1]).toBeCloseTo(6 - 11 / 3, 12);
  });

  it("points a bad rollout or reward at its group and completion", () => {
    const bad: RolloutGroup = {
      prompt: [1],
      completions: [
        { tokens: [2], logprobs: [], stopReason: "length" },
        { tokens: [3], logprobs: [-1], stopReason: "length" },
      ],
    };
    expect(validationPaths(() => groupsToData([bad], (c) => c.tokens[0]!))).toEqual([
      "groups[0].completions[0].logprobs",
    ]);
    expect(validationPaths(() => groupsToData([bad], () => Number.NaN))).toEqual([
      "rewards[0][0]",
      "rewards[0][1]",
    ]);
  });
});

describe("RL helpers against the local backend", () => {
  let env: ReturnType<typeof localService>;
  beforeEach(() => {
    env = localService();
  });
  afterEach(async () => {
    await env.close();
  });

  const prompts = [
    [BOS_TOKEN, ...encodeText("2+3=")],
    [BOS_TOKEN, ...encodeText("Hi")],
  ];

  it("samples one group per prompt with tokens, logprobs and stop reasons, reproducibly", async () => {
    const training = await env.service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 4, seed: 1 });
    const sampler = await training.saveWeightsAndGetSamplingClient();
    const params = { max_tokens: 3, temperature: 1, seed: 42 };
    const groups = await sampleGroups(sampler, prompts, { groupSize: 4, params });
    expect(groups.map((g) => g.prompt)).toEqual(prompts);
    for (const g of groups) {
      expect(g.completions).toHaveLength(4);
      for (const c of g.completions) {
        expect(c.logprobs).toHaveLength(c.tokens.length);
        expect(["length", "stop"]).toContain(c.stopReason);
      }
    }
    const again = await sampleGroups(
      sampler,
      prompts.map((p) => ModelInput.fromInts(p)),
      { groupSize: 4, params },
    );
    expect(again).toEqual(groups);
    await expect(sampleGroups(sampler, prompts, { groupSize: 0, params })).rejects.toThrow(ValidationError);
    await expect(sampleGroups(sampler, [[1, -1]], { groupSize: 2, params })).rejects.toThrow(
      /prompts\[0\]\[1\]/,
    );
  });

  it("sampled logprobs at temperature 1 match computeLogprobs on the same tokens (ratio ≈ 1)", async () => {
    const training = await env.service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 4, seed: 2 });
    const sampler = await training.saveWeightsAndGetSamplingClient();
    const groups = await sampleGroups(sampler, prompts, {
      groupSize: 3,
      params: { max_tokens: 4, temperature: 1, seed: 7 },
    });
    for (const g of groups) {
      for (const c of g.completions) {
        const scored = await sampler.computeLogprobs(ModelInput.fromInts([...g.prompt, ...c.tokens]));
        const completionScores = scored.slice(g.prompt.length);
        expect(completionScores).toHaveLength(c.tokens.length);
        for (const [i, lp] of completionScores.entries()) expect(lp!).toBeCloseTo(c.logprobs[i]!, 4);
      }
    }
  });

  it("trains on trajectory datums with importance_sampling and ppo; zero advantages leave the weights unchanged", async () => {
    const training = await env.service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 4, seed: 3 });
    const sampler = await training.saveWeightsAndGetSamplingClient();
    const groups = await sampleGroups(sampler, prompts, {
      groupSize: 4,
      params: { max_tokens: 3, temperature: 1, seed: 11 },
    });
    const trajectories = (advantage: (j: number) => number) =>
      groups.flatMap((g) =>
        g.completions.map((c, j) =>
          trajectoryToDatum({
            prompt: g.prompt,
            completion: c.tokens,
            logprobs: c.logprobs,
            advantage: advantage(j),
          }),
        ),
      );
    const logprobsNow = async () => {
      const out = await training.forward(
        trajectories(() => 0),
        "importance_sampling",
      );
      return out.loss_fn_outputs.map((o) => Array.from(o.logprobs!.data as ArrayLike<number>));
    };

    // The trainer agrees with the sampler on the sampled tokens: the importance ratio starts at 1.
    const before = await logprobsNow();
    groups
      .flatMap((g) => g.completions.map((c) => ({ g, c })))
      .forEach(({ g, c }, k) => {
        const completionLogprobs = before[k]!.slice(g.prompt.length - 1);
        for (const [i, lp] of completionLogprobs.entries()) expect(lp).toBeCloseTo(c.logprobs[i]!, 4);
      });

    // Zero advantages: the loss and its gradient are 0, so Adam's step changes nothing.
    const fbZero = training.forwardBackward(
      trajectories(() => 0),
      "importance_sampling",
    );
    const optimZero = training.optimStep({ learning_rate: 1e-2 });
    const [zeroOutput] = await Promise.all([fbZero, optimZero]);
    expect(zeroOutput.metrics["loss:sum"]).toBe(0);
    expect(await logprobsNow()).toEqual(before);

    // Real advantages: both losses accept the datums and the step moves the policy.
    for (const lossFn of ["importance_sampling", "ppo"] as const) {
      const fb = training.forwardBackward(
        trajectories((j) => (j % 2 === 0 ? 1 : -1)),
        lossFn,
      );
      const optim = training.optimStep({ learning_rate: 1e-2 });
      const [output] = await Promise.all([fb, optim]);
      expect(Number.isFinite(output.metrics["loss:sum"])).toBe(true);
      expect(output.loss_fn_outputs).toHaveLength(groups.length * 4);
    }
    expect(await logprobsNow()).not.toEqual(before);
  });
});
