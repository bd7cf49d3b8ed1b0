/**
 * RL on a toy arithmetic task: the policy sees `<|bos|>3+4=` and answers with one byte. Reward 1
 * for the exact answer (`7`), 0 for anything else — a wrong digit scores the same as a non-digit.
 * No supervised warm-up — every bit of improvement comes from group rollouts, group-normalised
 * advantages and the importance_sampling loss (tinker-ts/toolkit's RL helpers). Sampling is at
 * temperature 1 with no top-k/top-p, so the policy being optimised is the one being sampled.
 *
 *   npx tsx examples/toolkit/rl-arithmetic.ts                 # embedded local backend
 *   npx tsx examples/toolkit/rl-arithmetic.ts --iterations 80 --group-size 32 --seed 1
 *   npx tsx examples/toolkit/rl-arithmetic.ts --base-url http://127.0.0.1:8000   # a served backend
 *
 * Problems: every `a+b=` with a single-digit sum (55 of them). Two choices make the sums learnable
 * by RL on this tiny, byte-level, randomly initialised model:
 *
 * - Big groups (32 samples a prompt, 16 prompts an iteration). At the start the right byte is one
 *   of 258 tokens, so a group holds a hit about one time in eight; groups without one (constant
 *   reward) are dropped, and a group with one pushes up exactly that prompt's answer.
 * - Every answer equally likely: an iteration draws a sum 0–9 uniformly, then one of its problems.
 *   Drawn uniformly from the 55 problems, `9` is the answer 10 times in 55, and the policy settles
 *   on answering `9` to everything (18% exact, no per-prompt signal left). Partial credit for any
 *   digit (or for a near digit) does the same: it rewards a prompt-independent answer, the policy
 *   collapses onto one digit within ~20 iterations and every group becomes constant.
 *
 * What to expect (measured, 50 iterations, first 5 → last 5 iterations): exact answers 0.7% →
 * 23.0% (seed 0), 0.7% → 19.2% (seed 1), 0.6% → 10.7% (seed 2; 23.0% after 80 iterations), against
 * 1/258 by chance and 10% for the best constant answer under these draws; with `--lr 0` it stays at
 * 0.3%. A single iteration's rate is noisy (16 prompts). The policy learns the sums coarsely —
 * small sums answer `0`, middling ones `4`, large ones `9` — and then stops exploring: once its
 * answer to a prompt is (nearly) deterministic, that prompt's groups are constant and carry no
 * more signal. The reward is the exact-answer indicator, so mean reward and exact rate coincide.
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ServiceClient } from "tinker-ts";
import { BOS_TOKEN, BUILTIN_BASE_MODEL, createLocalTinker, encodeText } from "tinker-ts/local";
import { groupsToData, type RolloutCompletion, sampleGroups, trainStep } from "tinker-ts/toolkit";

export interface RlArithmeticOptions {
  iterations?: number;
  /** Completions sampled per prompt. */
  groupSize?: number;
  /** Prompts per iteration. */
  promptsPerIteration?: number;
  seed?: number;
  learningRate?: number;
  /** A running Tinker-compatible server; default: the embedded backend, in process. */
  baseURL?: string;
  /** Where progress lines go; default console.log. */
  log?: (line: string) => void;
}

export interface RlArithmeticResult {
  /** Mean reward of every iteration's rollouts (sampled before that iteration's update). */
  meanRewards: number[];
  /** Fraction of exactly right answers per iteration. */
  exactRates: number[];
  firstMean: number;
  lastMean: number;
  /** Mean exact-answer rate over the first / last (up to) 5 iterations. */
  firstExact: number;
  lastExact: number;
}

/** How many iterations the first/last means of the summary average over. */
const SUMMARY_WINDOW = 5;

interface Problem {
  prompt: number[];
  answer: number;
}

/** Every `a+b=` with a single-digit sum. */
function problems(): Problem[] {
  const all: Problem[] = [];
  for (let a = 0; a <= 9; a++) {
    for (let b = 0; a + b <= 9; b++) {
      all.push({ prompt: [BOS_TOKEN, ...encodeText(`${a}+${b}=`)], answer: 48 + a + b });
    }
  }
  return all;
}

/** The problems grouped by answer (index = the sum), so a draw can make every answer equally likely. */
function byAnswer(pool: readonly Problem[]): Problem[][] {
  const buckets: Problem[][] = Array.from({ length: 10 }, () => []);
  for (const problem of pool) buckets[problem.answer - 48].push(problem);
  return buckets;
}

/** mulberry32: a small seeded PRNG, so the prompts each iteration draws are reproducible. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 1 for the exact answer, 0 for anything else (a wrong digit included). */
function reward(completion: RolloutCompletion, answer: number): number {
  return completion.tokens[0] === answer ? 1 : 0;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, v) => sum + v, 0) / values.length;
}

export async function runRlArithmetic(options: RlArithmeticOptions = {}): Promise<RlArithmeticResult> {
  const iterations = options.iterations ?? 50;
  const groupSize = options.groupSize ?? 32;
  const promptsPerIteration = options.promptsPerIteration ?? 16;
  const seed = options.seed ?? 0;
  const learningRate = options.learningRate ?? 1e-3;
  const log = options.log ?? ((line: string) => console.log(line));

  const local = options.baseURL === undefined ? createLocalTinker() : undefined;
  const service = local
    ? new ServiceClient({ apiKey: "tml-local", baseURL: "http://local.tinker", fetch: local.fetch })
    : new ServiceClient({ apiKey: process.env.TINKER_API_KEY ?? "tml-local", baseURL: options.baseURL });
  const buckets = byAnswer(problems());
  const random = seededRandom(seed);
  const meanRewards: number[] = [];
  const exactRates: number[] = [];
  try {
    const training = await service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 16, seed });
    log(
      `${local ? "embedded local backend" : options.baseURL} · ${iterations} iterations · ${promptsPerIteration} prompts × ${groupSize} samples · lr ${learningRate}`,
    );
    for (let iteration = 0; iteration < iterations; iteration++) {
      // Sample from the current weights, so the sampled logprobs are the trainer's (on-policy).
      const sampler = await training.saveWeightsAndGetSamplingClient();
      // A uniformly drawn sum, then one of its problems: no answer is right more often than another.
      const batch = Array.from({ length: promptsPerIteration }, () => {
        const bucket = buckets[Math.floor(random() * buckets.length)];
        return bucket[Math.floor(random() * bucket.length)];
      });
      const groups = await sampleGroups(
        sampler,
        batch.map((p) => p.prompt),
        {
          groupSize,
          // A seed per iteration (sampleGroups offsets it per prompt) makes the run reproducible.
          params: { max_tokens: 1, temperature: 1, seed: seed * 1_000_003 + iteration * promptsPerIteration },
        },
      );
      const { data, rewards, droppedGroups } = groupsToData(
        groups,
        (completion, groupIndex) => reward(completion, batch[groupIndex].answer),
        // Divide by the group's spread: a group with one hit in 32 trains as hard as one with 16.
        { normalize: true },
      );
      const flat = rewards.flat();
      const exact = groups.flatMap((g, i) =>
        g.completions.map((c) => (c.tokens[0] === batch[i].answer ? 1 : 0)),
      );
      meanRewards.push(mean(flat));
      exactRates.push(mean(exact));
      if (data.length > 0) {
        // forward_backward and optim_step are submitted together, then both awaited.
        await trainStep(training, data, {
          adam: { learning_rate: learningRate },
          lossFn: "importance_sampling",
          step: iteration,
        });
      }
      log(
        `iteration ${String(iteration + 1).padStart(3)}  mean reward ${mean(flat).toFixed(3)}  exact ${(100 * mean(exact)).toFixed(1)}%  trained groups ${groups.length - droppedGroups}/${groups.length}`,
      );
    }
  } finally {
    await service.close();
    local?.close();
  }
  const window = Math.min(SUMMARY_WINDOW, meanRewards.length);
  const firstMean = mean(meanRewards.slice(0, window));
  const lastMean = mean(meanRewards.slice(meanRewards.length - window));
  const firstExact = mean(exactRates.slice(0, window));
  const lastExact = mean(exactRates.slice(exactRates.length - window));
  log(
    `mean reward first ${window} iterations ${firstMean.toFixed(3)} → last ${window} iterations ${lastMean.toFixed(3)}; exact answers ${(100 * firstExact).toFixed(1)}% → ${(100 * lastExact).toFixed(1)}%`,
  );
  return { meanRewards, exactRates, firstMean, lastMean, firstExact, lastExact };
}

function parseNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`--${flag} must be a number, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      iterations: { type: "string" },
      "group-size": { type: "string" },
      prompts: { type: "string" },
      seed: { type: "string" },
      lr: { type: "string" },
      "base-url": { type: "string" },
    },
  });
  await runRlArithmetic({
    iterations: parseNumber("iterations", values.iterations),
    groupSize: parseNumber("group-size", values["group-size"]),
    promptsPerIteration: parseNumber("prompts", values.prompts),
    seed: parseNumber("seed", values.seed),
    learningRate: parseNumber("lr", values.lr),
    baseURL: values["base-url"],
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
