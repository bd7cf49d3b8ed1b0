/**
 * Rollouts: running a group of envs to the end of their episodes with a SamplingClient.
 *
 * The group's envs advance turn by turn together. At each turn, envs whose observation and stop
 * condition are identical share one `sample` call with `num_samples` = their count: in the common
 * single-step case the whole group is one call, and the server prefills the prompt once (as
 * `sampleGroups` does). Envs that diverge get calls of their own.
 */
import type { SamplingClient } from "../../clients/sampling.js";
import { ResponseValidationError, ValidationError } from "../../core/errors.js";
import { ModelInput } from "../../lib/model-input.js";
import type { SamplingParams } from "../../wire/types.js";
import type {
  Env,
  EnvGroupBuilder,
  Episode,
  GroupReward,
  Observation,
  StepResult,
  StopCondition,
  Transition,
} from "./env.js";

export interface RolloutOptions {
  /** Most tokens per action (`max_tokens` of every sample call). */
  maxTokens: number;
  /** Sampling temperature; default 1 (the policy being trained is the one sampled). */
  temperature?: number;
  /** Seeds the sample calls: turn t's call c uses a seed mixed from (seed, t, c). Random when unset. */
  seed?: number;
  /** Ends episodes still running after this many turns (they are marked `truncated`). Default 64. */
  maxTurns?: number;
  /** Cancels the sample calls still running. */
  signal?: AbortSignal;
}

export const DEFAULT_MAX_TURNS = 64;

/** A group's episodes with their rewards. */
export interface EpisodeGroup {
  readonly episodes: readonly Episode[];
  /** The builder's group rewards (0 without `computeGroupRewards`). */
  readonly groupRewards: readonly number[];
  /** Each episode's return: its step rewards plus its group reward. */
  readonly totalRewards: readonly number[];
  /** The group rewards' metrics, per episode. */
  readonly groupMetrics: readonly Readonly<Record<string, number>>[];
  readonly tags: readonly string[];
}

/**
 * A 32-bit hash of integers (FNV-1a over their 32-bit words): per-call seeds from a base seed and
 * the call's coordinates, so different groups, turns and calls never share random draws.
 */
export function mixSeed(...parts: readonly number[]): number {
  let hash = 0x811c9dc5;
  for (const part of parts) {
    const value = Math.trunc(part);
    // Two words, so seeds above 2^32 still differ.
    for (const word of [value >>> 0, Math.floor(value / 2 ** 32) >>> 0]) {
      for (let shift = 0; shift < 32; shift += 8) {
        hash ^= (word >>> shift) & 0xff;
        hash = Math.imul(hash, 0x01000193) >>> 0;
      }
    }
  }
  return hash;
}

function observationTokens(observation: Observation, path: string): number[] {
  if (Array.isArray(observation)) {
    observation.forEach((token, i) => {
      if (!(Number.isInteger(token) && token >= 0)) {
        throw new ValidationError([
          { path: `${path}[${i}]`, message: `must be a non-negative integer token id, got ${String(token)}` },
        ]);
      }
    });
    return [...observation];
  }
  if (
    typeof observation !== "object" ||
    observation === null ||
    !Array.isArray((observation as ModelInput).chunks)
  ) {
    throw new ValidationError([{ path, message: "must be a ModelInput or an array of token ids" }]);
  }
  try {
    return ModelInput.toInts(observation as ModelInput);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new ValidationError(error.issues.map((issue) => ({ ...issue, path: `${path}.${issue.path}` })));
  }
}

function checkStepResult(result: StepResult, path: string): void {
  const issues = [];
  if (typeof result !== "object" || result === null) {
    throw new ValidationError([{ path, message: "must be a StepResult object" }]);
  }
  if (!Number.isFinite(result.reward)) {
    issues.push({ path: `${path}.reward`, message: `must be a finite number, got ${String(result.reward)}` });
  }
  if (typeof result.done !== "boolean") {
    issues.push({ path: `${path}.done`, message: `must be a boolean, got ${String(result.done)}` });
  }
  if (result.done === false && result.nextObservation === undefined) {
    issues.push({ path: `${path}.nextObservation`, message: "is required while the episode is not done" });
  }
  for (const [name, value] of Object.entries(result.metrics ?? {})) {
    if (!Number.isFinite(value)) {
      issues.push({
        path: `${path}.metrics.${name}`,
        message: `must be a finite number, got ${String(value)}`,
      });
    }
  }
  if (issues.length > 0) throw new ValidationError(issues);
}

interface ActiveEnv {
  env: Env;
  index: number;
  tokens: number[];
  stop: StopCondition;
  transitions: Transition[];
}

/**
 * Runs every env to the end of its episode (or `maxTurns`) with `sampler`. Envs with the same
 * observation and stop condition at a turn share one sample call. Returns one episode per env, in
 * order.
 */
export async function runEpisodes(
  sampler: SamplingClient,
  envs: readonly Env[],
  options: RolloutOptions,
): Promise<Episode[]> {
  const maxTurns = options.maxTurns ?? DEFAULT_MAX_TURNS;
  const episodes: Episode[] = new Array(envs.length);
  let active: ActiveEnv[] = await Promise.all(
    envs.map(async (env, index) => {
      const first = await env.initialObservation();
      if (typeof first !== "object" || first === null) {
        throw new ValidationError([
          { path: `envs[${index}].initialObservation()`, message: "must return { observation, stop? }" },
        ]);
      }
      const tokens = observationTokens(first.observation, `envs[${index}].initialObservation().observation`);
      return { env, index, tokens, stop: first.stop, transitions: [] };
    }),
  );

  for (let turn = 0; active.length > 0; turn++) {
    if (turn >= maxTurns) {
      for (const a of active) episodes[a.index] = { transitions: a.transitions, truncated: true };
      break;
    }
    // Envs asking the same thing share a call; first appearance keeps the order stable.
    const calls = new Map<string, ActiveEnv[]>();
    for (const a of active) {
      const key = `${JSON.stringify(a.stop ?? null)}|${a.tokens.join(",")}`;
      const members = calls.get(key);
      if (members) members.push(a);
      else calls.set(key, [a]);
    }
    const callList = [...calls.values()];
    const responses = await Promise.all(
      callList.map((members, c) => {
        const params: SamplingParams = {
          max_tokens: options.maxTokens,
          temperature: options.temperature ?? 1,
        };
        if (members[0]!.stop !== undefined) params.stop = members[0]!.stop;
        if (options.seed !== undefined) params.seed = mixSeed(options.seed, turn, c);
        return sampler.sample(ModelInput.fromInts(members[0]!.tokens), members.length, params, {
          signal: options.signal,
        });
      }),
    );
    const next: ActiveEnv[] = [];
    await Promise.all(
      callList.flatMap((members, c) =>
        members.map(async (a, j) => {
          const response = responses[c]!;
          const sequence = response.sequences[j];
          const logprobs = sequence?.logprobs;
          if (!sequence || !logprobs || logprobs.length !== sequence.tokens.length) {
            throw new ResponseValidationError("sample", response, [
              {
                path: `sequences[${j}].logprobs`,
                message: `RL needs one sampled logprob per token (${sequence?.tokens.length ?? "no sequence"}), got ${logprobs?.length ?? "none"}`,
              },
            ]);
          }
          const path = `envs[${a.index}].step() (turn ${turn})`;
          const result = await a.env.step([...sequence.tokens], {
            stopReason: sequence.stop_reason,
            logprobs: [...logprobs],
          });
          checkStepResult(result, path);
          a.transitions.push({
            observation: a.tokens,
            action: [...sequence.tokens],
            logprobs: [...logprobs],
            stopReason: sequence.stop_reason,
            reward: result.reward,
            done: result.done,
            metrics: { ...result.metrics },
          });
          if (result.done) {
            episodes[a.index] = { transitions: a.transitions, truncated: false };
            return;
          }
          a.tokens = observationTokens(result.nextObservation!, `${path}.nextObservation`);
          a.stop = result.nextStop;
          next.push(a);
        }),
      ),
    );
    // Keep env order for the next turn's call grouping (Promise.all settles in any order).
    active = next.sort((x, y) => x.index - y.index);
  }
  return episodes;
}

export interface RolloutGroupOptions extends RolloutOptions {
  /** Passed to `makeEnvs` as the group size the driver wants. */
  groupSize?: number;
}

/** Makes the builder's envs, runs their episodes and scores the group (step rewards + group rewards). */
export async function rolloutGroup(
  sampler: SamplingClient,
  builder: EnvGroupBuilder,
  options: RolloutGroupOptions,
): Promise<EpisodeGroup> {
  const envs = await builder.makeEnvs({ groupSize: options.groupSize });
  if (!Array.isArray(envs) || envs.length === 0) {
    throw new ValidationError([{ path: "makeEnvs()", message: "must return a non-empty array of envs" }]);
  }
  const episodes = await runEpisodes(sampler, envs, options);
  let groupRewards: readonly GroupReward[] = episodes.map(() => ({ reward: 0 }));
  if (builder.computeGroupRewards) {
    groupRewards = await builder.computeGroupRewards(episodes);
    if (!Array.isArray(groupRewards) || groupRewards.length !== episodes.length) {
      throw new ValidationError([
        {
          path: "computeGroupRewards()",
          message: `must return one reward per episode (${episodes.length}), got ${Array.isArray(groupRewards) ? groupRewards.length : typeof groupRewards}`,
        },
      ]);
    }
    groupRewards.forEach((g, i) => {
      if (!Number.isFinite(g?.reward)) {
        throw new ValidationError([
          {
            path: `computeGroupRewards()[${i}].reward`,
            message: `must be a finite number, got ${String(g?.reward)}`,
          },
        ]);
      }
    });
  }
  const totalRewards = episodes.map(
    (episode, i) => episode.transitions.reduce((sum, t) => sum + t.reward, 0) + groupRewards[i]!.reward,
  );
  return {
    episodes,
    groupRewards: groupRewards.map((g) => g.reward),
    totalRewards,
    groupMetrics: groupRewards.map((g) => ({ ...g.metrics })),
    tags: [...(builder.loggingTags?.() ?? [])],
  };
}
