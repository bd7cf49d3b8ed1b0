/**
 * RL plumbing: group rollouts with a SamplingClient, group-relative advantages, and trajectories
 * turned into datums for the policy-gradient losses (`importance_sampling`, `ppo`, `cispo`, `dro`).
 *
 * The recipe (GRPO-style): sample a group of completions per prompt from the current policy, score
 * each, subtract the group's mean reward (optionally divide by its spread), drop groups where every
 * completion scored the same, and train on each completion with its advantage. The sampled
 * logprobs travel with the datum as the behaviour log-probabilities, so the server's importance
 * ratio exp(lp − logprobs) is ≈ 1 when the sampler holds the trainer's current weights.
 */

import type { SamplingClient } from "../clients/sampling.js";
import { ResponseValidationError, ValidationError, type ValidationIssue } from "../core/errors.js";
import { datum, ModelInput } from "../lib/model-input.js";
import type { Datum, SamplingParams, StopReason } from "../wire/types.js";

/** One sampled completion of a prompt. */
export interface RolloutCompletion {
  /** Generated tokens (including a stop token when `stopReason` is "stop"). */
  readonly tokens: number[];
  /** The sampler's log-probability of each generated token. */
  readonly logprobs: number[];
  readonly stopReason: StopReason;
}

/** The completions of one prompt, sampled together so their rewards can be compared. */
export interface RolloutGroup {
  readonly prompt: number[];
  readonly completions: RolloutCompletion[];
}

export interface SampleGroupsOptions {
  /** Completions per prompt (`num_samples` of each sample call). */
  groupSize: number;
  /** Sampling parameters of every call; with `seed`, prompt i samples with `seed + i`. */
  params: SamplingParams;
  /** Cancels the sample calls still running. */
  signal?: AbortSignal;
}

/** Default epsilon added to a group's standard deviation before dividing by it. */
export const DEFAULT_ADVANTAGE_EPSILON = 1e-6;

function isTokenId(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** Issues for every non-token entry of `tokens`, reported under `path`. */
function tokenIssues(tokens: unknown, path: string): ValidationIssue[] {
  if (!Array.isArray(tokens)) return [{ path, message: "must be an array of token ids" }];
  const issues: ValidationIssue[] = [];
  tokens.forEach((token, i) => {
    if (!isTokenId(token))
      issues.push({ path: `${path}[${i}]`, message: `must be a non-negative integer, got ${String(token)}` });
  });
  return issues;
}

function finiteIssues(values: unknown, path: string): ValidationIssue[] {
  if (!Array.isArray(values)) return [{ path, message: "must be an array of numbers" }];
  const issues: ValidationIssue[] = [];
  values.forEach((value, i) => {
    if (!isFiniteNumber(value))
      issues.push({ path: `${path}[${i}]`, message: `must be a finite number, got ${String(value)}` });
  });
  return issues;
}

function promptTokens(prompt: ModelInput | readonly number[], index: number): number[] {
  if (Array.isArray(prompt)) {
    const issues = tokenIssues(prompt, `prompts[${index}]`);
    if (issues.length > 0) throw new ValidationError(issues);
    return [...prompt];
  }
  try {
    return ModelInput.toInts(prompt as ModelInput);
  } catch (error) {
    if (error instanceof ValidationError) {
      throw new ValidationError(error.issues.map((i) => ({ ...i, path: `prompts[${index}].${i.path}` })));
    }
    throw new ValidationError([
      { path: `prompts[${index}]`, message: "must be a ModelInput or an array of token ids" },
    ]);
  }
}

/**
 * Samples `groupSize` completions of every prompt from `sampler`: one `sample` call per prompt with
 * `num_samples = groupSize`, all submitted at once. The prompt is encoded once per group and the
 * server prefills it once, which is why a group is one call rather than `groupSize` calls.
 *
 * With `params.seed` set, prompt i is sampled with seed `params.seed + i`: the server derives each
 * sample's random stream from (seed, sample index), so one shared seed would give every group the
 * same random draws and correlate their rewards.
 */
export async function sampleGroups(
  sampler: SamplingClient,
  prompts: readonly ModelInput[] | readonly (readonly number[])[],
  options: SampleGroupsOptions,
): Promise<RolloutGroup[]> {
  const { groupSize, params, signal } = options;
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new ValidationError([
      { path: "groupSize", message: `must be a positive integer, got ${String(groupSize)}` },
    ]);
  }
  if (params.seed !== undefined && !Number.isSafeInteger(params.seed + prompts.length)) {
    throw new ValidationError([
      { path: "params.seed", message: `must be a safe integer, got ${String(params.seed)}` },
    ]);
  }
  const tokenLists = prompts.map((prompt, i) => promptTokens(prompt, i));
  return Promise.all(
    tokenLists.map(async (prompt, i) => {
      const groupParams = params.seed === undefined ? params : { ...params, seed: params.seed + i };
      const response = await sampler.sample(ModelInput.fromInts(prompt), groupSize, groupParams, { signal });
      const completions = response.sequences.map((sequence, j): RolloutCompletion => {
        const logprobs = sequence.logprobs;
        if (!logprobs || logprobs.length !== sequence.tokens.length) {
          throw new ResponseValidationError("sample", response, [
            {
              path: `sequences[${j}].logprobs`,
              message: `RL needs one sampled logprob per token (${sequence.tokens.length}), got ${logprobs?.length ?? "none"}`,
            },
          ]);
        }
        return { tokens: sequence.tokens, logprobs, stopReason: sequence.stop_reason };
      });
      return { prompt, completions };
    }),
  );
}

export interface CenterAdvantagesOptions {
  /** Also divide by the group's (population) standard deviation plus `epsilon`. Default false. */
  normalize?: boolean;
  /** Keeps the division finite for groups with (nearly) equal rewards. Default 1e-6. */
  epsilon?: number;
}

/**
 * Group-relative advantages: each reward minus the group mean, optionally divided by the group's
 * standard deviation (+ epsilon). Centring makes the advantages of a group sum to zero, so a
 * completion is pushed up only for doing better than its siblings on the same prompt.
 */
export function centerAdvantages(
  rewards: readonly number[],
  options: CenterAdvantagesOptions = {},
): number[] {
  const issues = finiteIssues(rewards, "rewards");
  const epsilon = options.epsilon ?? DEFAULT_ADVANTAGE_EPSILON;
  if (!(isFiniteNumber(epsilon) && epsilon >= 0)) {
    issues.push({ path: "options.epsilon", message: `must be a finite number ≥ 0, got ${String(epsilon)}` });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  if (rewards.length === 0) return [];
  const mean = rewards.reduce((sum, r) => sum + r, 0) / rewards.length;
  const centred = rewards.map((r) => r - mean);
  if (!options.normalize) return centred;
  const variance = centred.reduce((sum, a) => sum + a * a, 0) / rewards.length;
  const scale = Math.sqrt(variance) + epsilon;
  // All rewards equal and epsilon 0: every advantage is already 0, nothing to scale.
  return scale === 0 ? centred : centred.map((a) => a / scale);
}

/** True when every reward of the group is the same: centring gives all-zero advantages. */
function isConstant(rewards: readonly number[]): boolean {
  return rewards.every((r) => r === rewards[0]);
}

/**
 * Drops the groups whose rewards are all equal (every completion right, or every one wrong): they
 * carry no learning signal and would only cost forward/backward compute. `rewards[i]` are the
 * rewards of `groups[i]`; the two returned lists stay aligned.
 */
export function removeConstantRewardGroups<G>(
  groups: readonly G[],
  rewards: readonly (readonly number[])[],
): { groups: G[]; rewards: number[][] } {
  if (groups.length !== rewards.length) {
    throw new ValidationError([
      {
        path: "rewards",
        message: `has ${rewards.length} groups, expected one per group (${groups.length})`,
      },
    ]);
  }
  const kept: { groups: G[]; rewards: number[][] } = { groups: [], rewards: [] };
  groups.forEach((group, i) => {
    const groupRewards = rewards[i];
    const issues = finiteIssues(groupRewards, `rewards[${i}]`);
    if (issues.length > 0) throw new ValidationError(issues);
    if (isConstant(groupRewards)) return;
    kept.groups.push(group);
    kept.rewards.push([...groupRewards]);
  });
  return kept;
}

/** One sampled completion of a prompt with its advantage. */
export interface Trajectory {
  readonly prompt: readonly number[];
  readonly completion: readonly number[];
  /** The sampler's log-probability of each completion token. */
  readonly logprobs: readonly number[];
  readonly advantage: number;
}

/**
 * The datum that trains on one trajectory with `importance_sampling`, `ppo`, `cispo` or `dro`.
 * With tokens = prompt + completion, model_input = tokens[:-1] and target_tokens = tokens[1:];
 * `logprobs` and `advantages` are 0 where the target is a prompt token (the policy did not choose
 * it, and advantage 0 gives it no gradient) and the sampled logprob / the advantage where it is a
 * completion token. Dtypes: target_tokens int64, logprobs and advantages float32 (PROTOCOL.md §3.2).
 */
export function trajectoryToDatum(trajectory: Trajectory): Datum {
  const { prompt, completion, logprobs, advantage } = trajectory;
  const issues = [
    ...tokenIssues(prompt, "prompt"),
    ...tokenIssues(completion, "completion"),
    ...finiteIssues(logprobs, "logprobs"),
  ];
  if (Array.isArray(prompt) && prompt.length === 0) {
    issues.push({ path: "prompt", message: "must hold at least one token (the first target's context)" });
  }
  if (Array.isArray(completion) && completion.length === 0) {
    issues.push({ path: "completion", message: "must hold at least one token (nothing to train on)" });
  }
  if (Array.isArray(completion) && Array.isArray(logprobs) && logprobs.length !== completion.length) {
    issues.push({
      path: "logprobs",
      message: `has ${logprobs.length} entries, expected one per completion token (${completion.length})`,
    });
  }
  if (!isFiniteNumber(advantage)) {
    issues.push({ path: "advantage", message: `must be a finite number, got ${String(advantage)}` });
  }
  if (issues.length > 0) throw new ValidationError(issues);

  const tokens = [...prompt, ...completion];
  const promptTargets = prompt.length - 1;
  const zeros = new Array<number>(promptTargets).fill(0);
  return datum(ModelInput.fromInts(tokens.slice(0, -1)), {
    target_tokens: tokens.slice(1),
    logprobs: [...zeros, ...logprobs],
    advantages: [...zeros, ...new Array<number>(completion.length).fill(advantage)],
  });
}

/**
 * Scores one completion. `groupIndex` is the group's index in the list given to `groupsToData`,
 * i.e. the index of its prompt in the `sampleGroups` call — where the task's answer usually lives.
 */
export type RewardFunction = (
  completion: RolloutCompletion,
  groupIndex: number,
  group: RolloutGroup,
) => number;

export interface GroupsToDataOptions extends CenterAdvantagesOptions {
  /** Drop groups whose rewards are all equal (see `removeConstantRewardGroups`). Default true. */
  removeConstantGroups?: boolean;
}

export interface GroupsToDataResult {
  /** One datum per trained completion, ready for `forwardBackward(data, "importance_sampling")`. */
  data: Datum[];
  /** Every completion's reward, per group, in input order (constant groups included). */
  rewards: number[][];
  /** Every completion's advantage, per group (0 for dropped groups). */
  advantages: number[][];
  /** How many groups were dropped for having constant rewards. */
  droppedGroups: number;
}

/**
 * The whole step from rollouts to training data: score every completion with `rewardFn`, centre
 * (and optionally normalise) the rewards within each group, drop constant groups, and build one
 * datum per completion. Completions with no tokens are scored but not trained on.
 */
export function groupsToData(
  groups: readonly RolloutGroup[],
  rewardFn: RewardFunction,
  options: GroupsToDataOptions = {},
): GroupsToDataResult {
  const rewards = groups.map((group, i) => {
    const groupRewards = group.completions.map((completion) => rewardFn(completion, i, group));
    const issues = finiteIssues(groupRewards, `rewards[${i}]`);
    if (issues.length > 0) throw new ValidationError(issues);
    return groupRewards;
  });
  const removeConstant = options.removeConstantGroups ?? true;
  const data: Datum[] = [];
  let droppedGroups = 0;
  const advantages = groups.map((group, i) => {
    const groupRewards = rewards[i];
    if (removeConstant && isConstant(groupRewards)) {
      droppedGroups++;
      return groupRewards.map(() => 0);
    }
    const groupAdvantages = centerAdvantages(groupRewards, options);
    group.completions.forEach((completion, j) => {
      if (completion.tokens.length === 0) return;
      try {
        data.push(
          trajectoryToDatum({
            prompt: group.prompt,
            completion: completion.tokens,
            logprobs: completion.logprobs,
            advantage: groupAdvantages[j],
          }),
        );
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        // Point at the rollout the bad value came from, not at the trajectory built from it.
        throw new ValidationError(
          error.issues.map((issue) => ({ ...issue, path: `groups[${i}].completions[${j}].${issue.path}` })),
        );
      }
    });
    return groupAdvantages;
  });
  return { data, rewards, advantages, droppedGroups };
}
