/**
 * The Env abstraction and the trainRL driver (issue 18), against the real local backend:
 *
 * - examples/toolkit/rl-env.ts learns its two-turn game in sync and in async mode (real learning,
 *   seeded: the thresholds are well inside what the measured runs reach);
 * - staleness accounting: a rollout held back past the bound is dropped, counted and sampled
 *   again, every problem is trained exactly once, nothing trained is older than `maxStaleness`;
 * - KL shaping: the math on hand-made sequences, and against a reference snapshot of the initial
 *   weights (≈ 0 at the first step, positive once the policy has moved);
 * - checkpoint and resume: a run stopped through its AbortSignal resumes from its latest
 *   checkpoint with the same step numbering and dataset position, and (sync, seeded) the same
 *   rewards as an uninterrupted run; in async mode no rollout of a later batch starts before a
 *   checkpoint is saved;
 * - bad options are ValidationErrors before any request.
 */
import { describe, expect, it } from "vitest";
import { runRlEnv } from "../examples/toolkit/rl-env.js";
import { type TrainingClient, ValidationError } from "../src/index.js";
import { BOS_TOKEN, BUILTIN_BASE_MODEL, encodeText } from "../src/local/index.js";
import {
  canStartBatch,
  discountedFutureSum,
  type Env,
  type EnvGroupBuilder,
  type Episode,
  envGroupBuilder,
  episodeToSequences,
  klShapeAdvantages,
  latestCheckpoint,
  memoryCheckpointStore,
  type RLDataset,
  type RLStepReport,
  sequenceToDatum,
  stalenessStats,
  type TrainingSequence,
  type TrainRLOptions,
  takeForStep,
  trainRL,
} from "../src/toolkit/index.js";
import { closeAfterEach, localService } from "./helpers.js";

const closers = closeAfterEach();

function setup() {
  const t = localService();
  closers.add(t.close);
  return { ...t, rest: t.service.createRestClient() };
}

const isDigit = (token: number) => token >= 48 && token <= 57;

/** One turn: `<|bos|>a:` → reward 1 for a digit. */
function digitEnv(onStep?: () => Promise<void>): Env {
  return {
    initialObservation: () => ({ observation: [BOS_TOKEN, ...encodeText("a:")] }),
    async step(action) {
      await onStep?.();
      return { reward: isDigit(action[0]!) ? 1 : 0, done: true };
    },
  };
}

/** A dataset of `length` batches of `groups` digit-env groups, recording which batches were read. */
function digitDataset(length: number, groups: number, reads: number[] = []): RLDataset {
  return {
    length,
    getBatch(index) {
      reads.push(index);
      return Array.from({ length: groups }, () => envGroupBuilder(() => digitEnv()));
    },
  };
}

async function validationPaths(run: () => Promise<unknown>): Promise<string[]> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).issues.map((issue) => issue.path);
  }
  throw new Error("expected a ValidationError");
}

describe("examples/toolkit/rl-env", () => {
  it("raises the mean reward of the two-turn game in sync and in async mode", async () => {
    // Measured (seed 0): sync 0.02 at the first step → 0.76 over the last three; async 0.02 → 0.58.
    const short = { steps: 14, groups: 6, groupSize: 8, learningRate: 1e-2, seed: 0, log: () => {} };
    const sync = await runRlEnv({ ...short, mode: "sync" });
    const async = await runRlEnv({ ...short, mode: "async" });
    for (const run of [sync, async]) {
      expect(run.meanRewards).toHaveLength(14);
      const lastThree = run.meanRewards.slice(-3).reduce((a, b) => a + b, 0) / 3;
      // Start: chance (a digit is 10 of 258 bytes, twice). End: half the episodes or more score.
      expect(run.meanRewards[0]).toBeLessThan(0.1);
      expect(lastThree).toBeGreaterThan(0.45);
      expect(lastThree - run.meanRewards[0]!).toBeGreaterThan(0.4);
      expect(run.lastMean).toBeGreaterThan(run.firstMean);
    }
    expect(sync.staleness.every((s) => s === 0)).toBe(true);
    // Async: every step after the first trains on rollouts sampled one step earlier.
    expect(async.staleness[0]).toBe(0);
    expect(async.staleness.slice(1).every((s) => s === 1)).toBe(true);
  });
});

describe("staleness accounting", () => {
  it("admits batches up to maxStaleness ahead and takes the stalest fresh groups first", () => {
    expect(canStartBatch(3, 2, 1)).toBe(true);
    expect(canStartBatch(4, 2, 1)).toBe(false);
    expect(canStartBatch(2, 2, 0)).toBe(true);
    const g = (batch: number, index: number, samplerStep: number) => ({ batch, index, samplerStep });
    const finished = [g(5, 0, 4), g(4, 1, 2), g(4, 0, 3), g(3, 1, 1), g(5, 1, 4)];
    const pick = takeForStep(finished, 4, 2, 1);
    expect(pick.stale).toEqual([g(4, 1, 2), g(3, 1, 1)]);
    expect(pick.taken).toEqual([g(4, 0, 3), g(5, 0, 4)]);
    expect(pick.rest).toEqual([g(5, 1, 4)]);
    expect(stalenessStats(pick.taken, 4)).toEqual({ mean: 0.5, max: 1, min: 0 });
  });

  it("drops a rollout that finished too late, counts it, and trains its problem once, re-sampled", async () => {
    const t = setup();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const makeEnvsCalls = new Map<string, number>();
    const dataset: RLDataset = {
      length: 6,
      getBatch(batch) {
        return [0, 1].map((index): EnvGroupBuilder => {
          const key = `${batch}/${index}`;
          return {
            makeEnvs() {
              const calls = (makeEnvsCalls.get(key) ?? 0) + 1;
              makeEnvsCalls.set(key, calls);
              // Batch 1, group 0: its first rollout hangs until step 2 is reported.
              const slow = key === "1/0" && calls === 1;
              return Array.from({ length: 4 }, () => digitEnv(slow ? () => gate : undefined));
            },
          };
        });
      },
    };
    const reports: RLStepReport[] = [];
    const result = await trainRL({
      service: t.service,
      baseModel: BUILTIN_BASE_MODEL,
      lora: { rank: 4, seed: 0 },
      dataset,
      learningRate: 1e-3,
      maxTokens: 1,
      seed: 3,
      mode: "async",
      maxStaleness: 1,
      // Train constant groups too, so every group is visible in the counts.
      removeConstantRewardGroups: false,
      onMetrics: (report) => {
        reports.push(report);
        if (report.step === 2) release();
      },
    });
    expect(result).toMatchObject({ steps: 6, nextStep: 6, aborted: false, droppedStaleGroups: 1 });
    const metric = (name: string) => reports.map((r) => r.metrics[name]!);
    expect(metric("groups/dropped_stale").reduce((a, b) => a + b, 0)).toBe(1);
    // Only after the release (reported with step 2): sampled with step 0's weights, too old for step 3 on.
    expect(metric("groups/dropped_stale").slice(0, 3)).toEqual([0, 0, 0]);
    expect(Math.max(...metric("staleness/max"))).toBeLessThanOrEqual(1);
    expect(Math.max(...metric("staleness/mean"))).toBeGreaterThan(0);
    // Every problem trained exactly once: 6 batches × 2 groups; the slow one was sampled twice.
    expect(metric("groups/count").reduce((a, b) => a + b, 0)).toBe(12);
    expect(makeEnvsCalls.get("1/0")).toBe(2);
    for (const [key, calls] of makeEnvsCalls) if (key !== "1/0") expect(calls, key).toBe(1);
  });
});

describe("KL shaping", () => {
  const sequence = (
    tokens: number[],
    logprobs: number[],
    mask: number[],
    advantage: number,
  ): TrainingSequence => ({ tokens, logprobs, mask, advantages: mask.map((m) => m * advantage) });

  it("adds coefficient × (mean d − d) to action tokens, d = sampled − reference logprob", () => {
    const a = sequence([1, 2, 3, 4], [0, 0, -1, -2], [0, 0, 1, 1], 0.5);
    const b = sequence([1, 5, 6], [0, -0.5, -3], [0, 1, 1], -0.5);
    const refs = [
      [null, -9, -1.5, -1],
      [null, -0.5, -1],
    ];
    // d: a → [0.5, -1], b → [0, -2]; mean d = -0.625.
    const shaped = klShapeAdvantages([a, b], refs, 0.1);
    expect(shaped.meanLogprobDiff).toBeCloseTo(-0.625, 12);
    expect(shaped.sequences[0]!.advantages).toEqual([
      0,
      0,
      0.5 + 0.1 * (-0.625 - 0.5),
      0.5 + 0.1 * (-0.625 + 1),
    ]);
    expect(shaped.sequences[1]!.advantages[1]).toBeCloseTo(-0.5 + 0.1 * -0.625, 12);
    expect(shaped.sequences[1]!.advantages[2]).toBeCloseTo(-0.5 + 0.1 * (-0.625 + 2), 12);
    // The inputs are not changed; observation tokens get no penalty.
    expect(a.advantages).toEqual([0, 0, 0.5, 0.5]);
    expect(shaped.sequences[0]!.advantages.slice(0, 2)).toEqual([0, 0]);
  });

  it("charges each token the discounted KL of what follows with a discount", () => {
    expect(discountedFutureSum([1, 2, 4], 0.5)).toEqual([1 + 1 + 1, 2 + 2, 4]);
    const s = sequence([1, 2, 3], [0, -1, -1], [0, 1, 1], 0);
    const shaped = klShapeAdvantages([s], [[null, -2, 0]], 1, 0.5);
    // d = [1, -1], mean 0 → penalties [0, -1, 1] → discounted [0 - 0.5 + 0.25, -1 + 0.5, 1].
    expect(shaped.sequences[0]!.advantages).toEqual([-0.25, -0.5, 1]);
  });

  it("rejects misaligned reference logprobs and a bad coefficient", () => {
    const s = sequence([1, 2], [0, -1], [0, 1], 1);
    expect(() => klShapeAdvantages([s], [[null]], 1)).toThrow(ValidationError);
    expect(() => klShapeAdvantages([s], [], 1)).toThrow(ValidationError);
    expect(() => klShapeAdvantages([s], [[null, -1]], -1)).toThrow(ValidationError);
  });

  it("measures ≈ 0 KL against a snapshot of the starting weights, then a positive one as the policy moves", async () => {
    const t = setup();
    const training = await t.service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 4, seed: 1 });
    const reference = await training.saveWeightsAndGetSamplingClient();
    const reports: RLStepReport[] = [];
    await trainRL({
      training,
      dataset: digitDataset(6, 4),
      groupSize: 8,
      learningRate: 2e-2,
      maxTokens: 1,
      seed: 1,
      kl: { reference, coefficient: 0.05 },
      onMetrics: (report) => {
        reports.push(report);
      },
    });
    const kl = reports.map((r) => r.metrics["kl/policy_reference"]!);
    expect(Math.abs(kl[0]!)).toBeLessThan(1e-3);
    expect(kl.at(-1)!).toBeGreaterThan(0.05);
    // With a KL penalty, constant-reward groups still train (on the shaping alone).
    expect(reports.every((r) => r.metrics["groups/skipped_zero_advantage"] === 0)).toBe(true);
    expect(reports.at(-1)!.metrics["reward/mean"]).toBeGreaterThan(reports[0]!.metrics["reward/mean"]!);
  });
});

describe("episodes to training data", () => {
  const turn = (observation: number[], action: number[], reward = 0) => ({
    observation,
    action,
    logprobs: action.map(() => -0.5),
    stopReason: "length" as const,
    reward,
    done: false,
    metrics: {},
  });

  it("merges a conversation that extends itself into one sequence, and splits one that does not", () => {
    const episode: Episode = {
      truncated: false,
      transitions: [turn([1, 2], [3]), turn([1, 2, 3, 4], [5, 6]), turn([9], [7])],
    };
    const sequences = episodeToSequences(episode, 2);
    expect(sequences).toHaveLength(2);
    expect(sequences[0]).toEqual({
      tokens: [1, 2, 3, 4, 5, 6],
      logprobs: [0, 0, -0.5, 0, -0.5, -0.5],
      advantages: [0, 0, 2, 0, 2, 2],
      mask: [0, 0, 1, 0, 1, 1],
    });
    expect(sequences[1]!.tokens).toEqual([9, 7]);
    const d = sequenceToDatum(sequences[0]!)!;
    expect(d.loss_fn_inputs.target_tokens!.data).toEqual([2, 3, 4, 5, 6]);
    expect(d.loss_fn_inputs.advantages!.data).toEqual([0, 2, 0, 2, 2]);
    expect(sequenceToDatum({ tokens: [3], logprobs: [-1], advantages: [1], mask: [1] })).toBeUndefined();
  });
});

describe("minibatches", () => {
  it("sends a forward_backward per minibatch and one optim_step per step, training the same as one batch", async () => {
    const t = setup();
    const count = (from: number, op: string) =>
      t.requests.slice(from).filter((r) => r.path.endsWith(`/${op}`)).length;
    const rewards: number[][] = [];
    for (const minibatches of [1, 2]) {
      const from = t.requests.length;
      const seen: number[] = [];
      await trainRL({
        service: t.service,
        baseModel: BUILTIN_BASE_MODEL,
        lora: { rank: 4, seed: 0 },
        dataset: digitDataset(5, 4),
        groupSize: 8,
        learningRate: 1e-2,
        maxTokens: 1,
        seed: 3,
        minibatches,
        removeConstantRewardGroups: false,
        onMetrics: (r) => {
          seen.push(r.metrics["reward/mean"]!);
        },
      });
      expect(count(from, "forward_backward")).toBe(5 * minibatches);
      expect(count(from, "optim_step")).toBe(5);
      rewards.push(seen);
    }
    // Gradients accumulate across forward_backward calls until optim_step: the same updates.
    expect(rewards[1]).toEqual(rewards[0]);
    expect(Math.max(...rewards[0]!)).toBeGreaterThan(0);
  });
});

describe("checkpoint and resume", () => {
  const base = {
    groupSize: 8,
    learningRate: 1e-2,
    maxTokens: 1,
    seed: 7,
  } satisfies Partial<TrainRLOptions>;

  it("resumes a stopped sync run at its checkpoint's step and batch, with an uninterrupted run's rewards", async () => {
    const t = setup();
    const rewardsOf = (reports: RLStepReport[]) => reports.map((r) => [r.step, r.metrics["reward/mean"]]);

    const full: RLStepReport[] = [];
    await trainRL({
      ...base,
      service: t.service,
      baseModel: BUILTIN_BASE_MODEL,
      lora: { rank: 4, seed: 2 },
      dataset: digitDataset(6, 3),
      onMetrics: (r) => {
        full.push(r);
      },
    });

    const store = memoryCheckpointStore();
    const controller = new AbortController();
    const first: RLStepReport[] = [];
    const reads: number[] = [];
    const stopped = await trainRL({
      ...base,
      service: t.service,
      baseModel: BUILTIN_BASE_MODEL,
      lora: { rank: 4, seed: 2 },
      dataset: digitDataset(6, 3, reads),
      checkpoint: { everySteps: 2, rest: t.rest, store },
      signal: controller.signal,
      onMetrics: (r) => {
        first.push(r);
        // "Killed" after step 2 (three steps applied); the last checkpoint holds two.
        if (r.step === 2) controller.abort();
      },
    });
    expect(stopped).toMatchObject({ steps: 3, nextStep: 3, aborted: true });
    expect(stopped.lastCheckpoint?.step).toBe(2);
    expect(first.map((r) => r.checkpoint?.name)).toEqual([undefined, "step-000002", undefined]);

    const latest = await latestCheckpoint(t.rest, stopped.training.modelId);
    expect(latest?.step).toBe(2);
    const resumedReads: number[] = [];
    const resumed: RLStepReport[] = [];
    const result = await trainRL({
      ...base,
      service: t.service,
      resumeFrom: latest!,
      dataset: digitDataset(6, 3, resumedReads),
      checkpoint: { everySteps: 2, rest: t.rest, store },
      onMetrics: (r) => {
        resumed.push(r);
      },
    });
    expect(result).toMatchObject({ startStep: 2, steps: 4, nextStep: 6, aborted: false });
    expect(result.training.modelId).not.toBe(stopped.training.modelId);
    // Same numbering, same dataset position: steps 2..5 on batches 2..5.
    expect(resumed.map((r) => r.step)).toEqual([2, 3, 4, 5]);
    expect(resumedReads).toEqual([2, 3, 4, 5]);
    expect(resumed.map((r) => r.metrics["dataset/batch_min"])).toEqual([2, 3, 4, 5]);
    // Seeded sampling from bit-for-bit restored weights: the uninterrupted run's rewards.
    expect(rewardsOf(first)).toEqual(rewardsOf(full.slice(0, 3)));
    expect(rewardsOf(resumed)).toEqual(rewardsOf(full.slice(2)));
    expect(resumed.map((r) => r.checkpoint?.name)).toEqual([
      undefined,
      "step-000004",
      undefined,
      "step-000006",
    ]);
  });

  it("async: no rollout of a later batch starts before a checkpoint is saved, so resume is exact", async () => {
    const t = setup();
    // One timeline of rollout starts (`b<batch>`) and checkpoint saves (the manager's ledger write).
    const timeline: string[] = [];
    const dataset: RLDataset = {
      length: 6,
      getBatch: (batch) =>
        Array.from({ length: 2 }, () => {
          const builder = envGroupBuilder(() => digitEnv());
          return {
            makeEnvs: (context) => {
              timeline.push(`b${batch}`);
              return builder.makeEnvs(context);
            },
          };
        }),
    };
    const ledger = memoryCheckpointStore();
    const store = {
      load: () => ledger.load(),
      save: (saved: Parameters<typeof ledger.save>[0]) => {
        timeline.push("checkpoint");
        return ledger.save(saved);
      },
    };
    const controller = new AbortController();
    const first: RLStepReport[] = [];
    const stopped = await trainRL({
      ...base,
      service: t.service,
      baseModel: BUILTIN_BASE_MODEL,
      lora: { rank: 4, seed: 2 },
      dataset,
      mode: "async",
      maxStaleness: 2,
      checkpoint: { everySteps: 2, rest: t.rest, store },
      signal: controller.signal,
      onMetrics: (r) => {
        first.push(r);
        if (r.step === 3) controller.abort();
      },
    });
    expect(stopped).toMatchObject({ steps: 4, nextStep: 4, aborted: true });
    expect(first.map((r) => r.checkpoint?.step)).toEqual([undefined, 2, undefined, 4]);
    // Checkpoint step-2 is saved after step 1 and step-4 after step 3: before each, no group of
    // batch ≥ 2 (≥ 4) had started, though maxStaleness 2 would otherwise admit them.
    const saves = timeline.flatMap((event, i) => (event === "checkpoint" ? [i] : []));
    expect(saves).toHaveLength(2);
    const startedBefore = (i: number) =>
      Math.max(
        ...timeline
          .slice(0, i)
          .filter((e) => e !== "checkpoint")
          .map((e) => Number(e.slice(1))),
      );
    expect(startedBefore(saves[0]!)).toBe(1);
    expect(startedBefore(saves[1]!)).toBe(3);
    // Between checkpoints sampling runs ahead: batch 3 was sampled before step 2 trained.
    expect(first.map((r) => r.metrics["staleness/mean"])).toEqual([0, 1, 0, 1]);

    const resumed: RLStepReport[] = [];
    const before = timeline.length;
    const result = await trainRL({
      ...base,
      service: t.service,
      resumeFrom: stopped.lastCheckpoint!.path,
      dataset,
      mode: "async",
      maxStaleness: 2,
      onMetrics: (r) => {
        resumed.push(r);
      },
    });
    expect(result).toMatchObject({ startStep: 4, steps: 2, nextStep: 6 });
    expect(resumed.map((r) => r.step)).toEqual([4, 5]);
    expect(resumed.map((r) => r.metrics["groups/count"])).toEqual([2, 2]);
    // The resumed run samples batches 4 and 5 (the stopped run had started them too, then cancelled them).
    expect(timeline.slice(before).sort()).toEqual(["b4", "b4", "b5", "b5"]);
  });
});

describe("trainRL options", () => {
  it("reports every bad option as a ValidationError before sending anything", async () => {
    const t = setup();
    const paths = await validationPaths(() =>
      trainRL({
        service: t.service,
        baseModel: BUILTIN_BASE_MODEL,
        dataset: digitDataset(2, 1),
        learningRate: -1,
        maxTokens: 0,
        mode: "sync",
        maxStaleness: 2,
        minibatches: 0,
        lossFn: "cross_entropy" as never,
        kl: { reference: {} as never, coefficient: Number.NaN },
        checkpoint: { everySteps: 0, rest: t.rest },
      }),
    );
    expect(paths).toEqual([
      "lossFn",
      "learningRate",
      "maxTokens",
      "kl.reference",
      "kl.coefficient",
      "maxStaleness",
      "minibatches",
      "checkpoint.everySteps",
    ]);
    expect(
      await validationPaths(() =>
        trainRL({ dataset: digitDataset(1, 1), learningRate: 1e-3, maxTokens: 1 } as TrainRLOptions),
      ),
    ).toEqual(["training"]);
    expect(
      await validationPaths(() =>
        trainRL({
          service: t.service,
          resumeFrom: "tinker://run:train:0/sampler_weights/step-000002",
          dataset: digitDataset(1, 1),
          adam: { learning_rate: 1e-3, beta1: 2 },
          maxTokens: 1,
        }),
      ),
    ).toEqual(["resumeFrom", "adam.beta1"]);
    expect(t.requests).toEqual([]);
  });

  it("stops with the error of an env that returns a NaN reward", async () => {
    const t = setup();
    const training: TrainingClient = await t.service.createLoraTrainingClient(BUILTIN_BASE_MODEL, {
      rank: 4,
    });
    const broken: RLDataset = {
      length: 3,
      getBatch: () => [
        envGroupBuilder(() => digitEnv()),
        envGroupBuilder(() => ({
          initialObservation: () => ({ observation: [BOS_TOKEN] }),
          step: () => ({ reward: Number.NaN, done: true }),
        })),
      ],
    };
    await expect(
      trainRL({ training, dataset: broken, groupSize: 2, learningRate: 1e-3, maxTokens: 1 }),
    ).rejects.toThrow(/reward: must be a finite number/);
  });
});
