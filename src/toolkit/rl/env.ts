/**
 * The RL environment abstraction (the tinker-cookbook's `Env` / `EnvGroupBuilder` / `RLDataset`
 * design): an `Env` is one agent's episode — an observation, the policy's action tokens, a reward,
 * and either the end or the next observation; an `EnvGroupBuilder` makes the group of envs for one
 * problem, whose rewards are compared with each other (group-relative advantages) and may be scored
 * together (pairwise judges); an `RLDataset` hands out batches of builders by index, one per
 * training step, so a step index is also a dataset position.
 *
 * Multi-step episodes: the next observation usually extends the conversation (previous
 * observation + action + the env's reply). Such an episode trains as one sequence; an observation
 * that is not an extension starts a new one (see episode-data.ts).
 */
import { ValidationError } from "../../core/errors.js";
import type { ModelInput } from "../../lib/model-input.js";
import type { SamplingParams, StopReason } from "../../wire/types.js";

/** What the policy sees: a ModelInput (text chunks only) or token ids. */
export type Observation = ModelInput | readonly number[];

/** Where a turn of the policy ends: `SamplingParams.stop` (strings or token ids); `maxTokens` always does. */
export type StopCondition = SamplingParams["stop"];

export interface EnvObservation {
  observation: Observation;
  /** Ends the policy's turn early; without it only the driver's `maxTokens` ends it. */
  stop?: StopCondition;
}

/** What the sampler said about the action, besides its tokens. */
export interface ActionInfo {
  /** "stop": a stop sequence ended the turn (it is the action's last tokens); "length": `maxTokens` did. */
  readonly stopReason: StopReason;
  /** The sampler's log-probability of each action token. */
  readonly logprobs: readonly number[];
}

export interface StepResult {
  /** This step's reward; an episode's return is the sum of its steps' rewards plus any group reward. */
  reward: number;
  /** True ends the episode. */
  done: boolean;
  /** The next observation (required unless `done`); extend the previous one to keep one training sequence. */
  nextObservation?: Observation;
  /** The stop condition of the next turn. */
  nextStop?: StopCondition;
  /** Numbers to log (averaged per step as `env/<name>`). */
  metrics?: Record<string, number>;
}

/**
 * One agent's episode. Stateful: the driver makes fresh envs for every rollout (also when a stale
 * rollout is sampled again) and never reuses one after its episode.
 */
export interface Env {
  initialObservation(): EnvObservation | Promise<EnvObservation>;
  step(action: number[], info: ActionInfo): StepResult | Promise<StepResult>;
}

/** One turn of an episode, as recorded by the rollout. */
export interface Transition {
  /** The observation's tokens. */
  readonly observation: readonly number[];
  /** The sampled action tokens. */
  readonly action: readonly number[];
  /** The sampler's logprob of each action token. */
  readonly logprobs: readonly number[];
  readonly stopReason: StopReason;
  readonly reward: number;
  readonly done: boolean;
  readonly metrics: Readonly<Record<string, number>>;
}

export interface Episode {
  readonly transitions: readonly Transition[];
  /** True when the driver's `maxTurns` ended the episode before the env did. */
  readonly truncated: boolean;
}

/** A reward computed from the whole group (added to the episode's step rewards). */
export interface GroupReward {
  reward: number;
  /** Numbers to log (averaged per step as `env/group/<name>`). */
  metrics?: Record<string, number>;
}

/** What the driver tells a builder when it asks for envs. */
export interface MakeEnvsContext {
  /** The driver's `groupSize`, when it has one: how many envs a group should have. */
  readonly groupSize: number | undefined;
}

/**
 * The group of envs for one problem. GRPO-style training centres the rewards within a group, so
 * its envs usually pose the same problem; a group can also be a multi-agent game.
 */
export interface EnvGroupBuilder {
  makeEnvs(context: MakeEnvsContext): readonly Env[] | Promise<readonly Env[]>;
  /**
   * Optional rewards that need the whole group (a pairwise judge, a ranking), one per episode in
   * order. Default: 0 each, only the step rewards count.
   */
  computeGroupRewards?(
    episodes: readonly Episode[],
  ): readonly GroupReward[] | Promise<readonly GroupReward[]>;
  /** Tags for logging: the step's metrics get `tag/<tag>/reward/mean` per tag. */
  loggingTags?(): readonly string[];
}

/** Batches of env groups by index. Step k of training uses batch k. */
export interface RLDataset {
  /** Number of batches. */
  readonly length: number;
  getBatch(index: number): readonly EnvGroupBuilder[] | Promise<readonly EnvGroupBuilder[]>;
}

export interface EnvGroupBuilderOptions {
  /** Envs per group; default the driver's `groupSize` (one of the two is needed). */
  groupSize?: number;
  /** Rewards from the whole group (see `EnvGroupBuilder.computeGroupRewards`). */
  groupRewards?: (episodes: readonly Episode[]) => readonly GroupReward[] | Promise<readonly GroupReward[]>;
  /** Logging tags (see `EnvGroupBuilder.loggingTags`). */
  tags?: readonly string[];
}

/**
 * The common builder: `groupSize` independent envs made by `makeEnv(i)` (usually the same problem
 * each time, so their rewards are comparable).
 */
export function envGroupBuilder(
  makeEnv: (index: number) => Env,
  options: EnvGroupBuilderOptions = {},
): EnvGroupBuilder {
  const issues = [];
  if (typeof makeEnv !== "function") issues.push({ path: "makeEnv", message: "must be a function" });
  if (
    options.groupSize !== undefined &&
    !(Number.isSafeInteger(options.groupSize) && options.groupSize >= 1)
  ) {
    issues.push({
      path: "options.groupSize",
      message: `must be a positive integer, got ${String(options.groupSize)}`,
    });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  const { groupRewards, tags } = options;
  const builder: EnvGroupBuilder = {
    makeEnvs({ groupSize }) {
      const size = options.groupSize ?? groupSize;
      if (size === undefined) {
        throw new ValidationError([
          { path: "groupSize", message: "is needed: give envGroupBuilder or trainRL a groupSize" },
        ]);
      }
      return Array.from({ length: size }, (_, i) => makeEnv(i));
    },
  };
  if (groupRewards) builder.computeGroupRewards = groupRewards;
  if (tags) builder.loggingTags = () => tags;
  return builder;
}
