/** trainRL's options (validated by resolve-options.ts before the driver sends anything). */
import type { RestClient } from "../../clients/rest.js";
import type { SamplingClient } from "../../clients/sampling.js";
import type { LoraTrainingOptions, ServiceClient } from "../../clients/service.js";
import type { TrainingClient } from "../../clients/training.js";
import type { AdamParams } from "../../wire/types.js";
import type { CheckpointStore } from "../checkpoints/ledger.js";
import type { SaveResult } from "../checkpoints/manager.js";
import type { RLDataset } from "./env.js";

/** The policy-gradient losses trainRL builds datums for (target_tokens, logprobs, advantages). */
export type RLLossFn = "importance_sampling" | "ppo" | "cispo" | "dro";

export interface KlPenaltyConfig {
  /** The reference policy, e.g. `service.createSamplingClient({ baseModel })`: its `computeLogprobs` scores every sampled sequence. */
  reference: SamplingClient;
  /** Penalty per nat of (sampled − reference) logprob, added to each action token's advantage. */
  coefficient: number;
  /** γ in [0, 1): charge each token the discounted sum of the penalties after it too. Default 0. */
  discount?: number;
}

export interface RLCheckpointOptions {
  /** Save `step-N` (training state with optimizer) after every step N that is a multiple of this. */
  everySteps: number;
  /** Lists and deletes checkpoints (a `CheckpointManager` is made with it). */
  rest: RestClient;
  /** Keep only the newest K step checkpoints of the job. */
  keepLast?: number;
  /** Where the CheckpointManager's ledger lives (default: memory). Use the same store across resumes. */
  store?: CheckpointStore;
  /** Prepended to checkpoint names (`<prefix>step-000012`). Default "". */
  prefix?: string;
}

/** A step's metrics, as given to `onMetrics`. */
export interface RLStepReport {
  /** The step's index, which is also the dataset batch it consumed the size of. */
  step: number;
  /** See docs/TOOLKIT.md ("RL environments and the trainRL driver") for the names. */
  metrics: Record<string, number>;
  /** The checkpoint saved after this step, if one was. */
  checkpoint?: SaveResult;
}

export interface TrainRLOptions {
  /** The run to train. Or give `service` (and `baseModel`, or `resumeFrom`) and trainRL makes it. */
  training?: TrainingClient;
  /** Makes the run when `training` is not given. */
  service?: ServiceClient;
  /** Base model of a new run (with `service`). */
  baseModel?: string;
  /** Options of a new run (`rank`, `seed`, …), with `service` and `baseModel`. */
  lora?: LoraTrainingOptions;
  /**
   * Resume from a training checkpoint (with `service`): its path, or `{ path, step }` as
   * `latestCheckpoint` returns it. The run continues with the checkpoint's weights and optimizer
   * state at its step, which is also the dataset position (a path's step is read from its
   * `<prefix>step-N` name).
   */
  resumeFrom?: string | { path: string; step: number };
  /** Index of the first step and dataset batch (default 0; from `resumeFrom` when resuming). */
  startStep?: number;
  /** Stop before this step (default: the dataset's length). Counted from 0, so it survives resumes. */
  maxSteps?: number;
  /** Batches of env groups; step k trains on as many groups as batch k holds. */
  dataset: RLDataset;
  /** Envs per group, handed to `EnvGroupBuilder.makeEnvs` (builders may fix their own). */
  groupSize?: number;
  /** Default "importance_sampling". With `mode: "async"`, "ppo" (clipped) is the safer choice. */
  lossFn?: RLLossFn;
  /** The loss's `loss_fn_config` (PPO/CISPO clip thresholds, DRO `beta`). */
  lossFnConfig?: Record<string, number>;
  /** Adam learning rate (other Adam fields default); or give `adam`. */
  learningRate?: number;
  /** Adam parameters, or a function of the step for a schedule; or give `learningRate`. */
  adam?: AdamParams | ((step: number) => AdamParams);
  /** Most tokens per action. */
  maxTokens: number;
  /** Sampling temperature. Default 1: the policy sampled is the policy trained. */
  temperature?: number;
  /** Seeds every sample call (mixed with its batch, group, attempt, turn and call), for reproducible runs. */
  seed?: number;
  /** Ends episodes still running after this many turns (marked truncated). Default 64. */
  maxTurns?: number;
  /** Divide each group's centred rewards by their standard deviation. Default false. */
  normalizeAdvantages?: boolean;
  /**
   * Skip groups whose returns are all equal (zero advantage: no signal). Default true without `kl`;
   * false with it, since the KL shaping still gives such a group a signal.
   */
  removeConstantRewardGroups?: boolean;
  /** KL penalty against a reference policy (per-token reward shaping). */
  kl?: KlPenaltyConfig;
  /**
   * "sync" (default): batch k is sampled with the weights after step k − 1, all on-policy.
   * "async": sampling runs up to `maxStaleness` batches ahead while steps train.
   */
  mode?: "sync" | "async";
  /** Async: the oldest weights (in steps) a trained rollout may come from; older ones are dropped and sampled again. Default 1. */
  maxStaleness?: number;
  /** forward_backward calls per step, each sent as soon as its share of groups has finished; one optim_step ends the step. Default 1. */
  minibatches?: number;
  /** Periodic checkpoints (through a CheckpointManager). */
  checkpoint?: RLCheckpointOptions;
  /** Called after each step, in order, and awaited. */
  onMetrics?: (report: RLStepReport) => void | Promise<void>;
  /** Stops the run: no new step starts, running rollouts are cancelled, a submitted step completes. */
  signal?: AbortSignal;
}
