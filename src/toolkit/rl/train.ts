/**
 * trainRL: the RL driver (the cookbook's rl train loop) on top of Env / EnvGroupBuilder / RLDataset.
 *
 * Each step k: collect as many finished group rollouts as dataset batch k holds, turn them into
 * datums (group-centred advantages, constant groups skipped, optional KL shaping), submit
 * forward_backward (one per minibatch, each as soon as its groups are in) and optim_step together
 * with the sampler refresh (`saveWeightsAndGetSamplingClient`), then checkpoint and report.
 *
 * Rollouts run in the background, admitted by the staleness rule (staleness.ts): in sync mode
 * batch k starts sampling once step k − 1 has refreshed the sampler; in async mode up to
 * `maxStaleness` batches ahead, with whatever weights are newest when a group starts. A group that
 * finishes too late for the bound is dropped, counted and sampled again.
 *
 * Checkpoints and resume: checkpoint `step-N` is saved after step N − 1 and holds N steps. For it
 * to also be an exact dataset position, no rollout of batch ≥ N may start before it is saved (a
 * "fence", async mode only): then every group of batches < N is trained and none after, and a
 * resumed run continues at step N with batch N — the same numbering, nothing trained twice or
 * skipped. The price is a pipeline drain at each checkpoint.
 */
import type { SamplingClient } from "../../clients/sampling.js";
import type { TrainingClient } from "../../clients/training.js";
import { TinkerError, ValidationError } from "../../core/errors.js";
import type { APIFuture } from "../../futures/api-future.js";
import { mergeForwardBackwardOutputs } from "../../lib/chunking.js";
import type { AdamParams, Datum, ForwardBackwardOutput } from "../../wire/types.js";
import { CheckpointManager, type SaveResult } from "../checkpoints/manager.js";
import { compareLogprobs } from "../evaluation.js";
import { centerAdvantages, removeConstantRewardGroups } from "../rl.js";
import type { EnvGroupBuilder } from "./env.js";
import {
  actionTokenCount,
  episodeToSequences,
  sequenceToDatum,
  type TrainingSequence,
} from "./episode-data.js";
import { klShapeAdvantages, referenceLogprobs } from "./kl.js";
import { rolloutMetrics } from "./metrics.js";
import type { RLStepReport, TrainRLOptions } from "./options.js";
import { type ResolvedRLOptions, resolveRLOptions } from "./resolve-options.js";
import { type EpisodeGroup, mixSeed, rolloutGroup } from "./rollouts.js";
import { canStartBatch, stalenessStats, takeForStep, type VersionedGroup } from "./staleness.js";

export interface TrainRLResult {
  /** The run that was trained (given, created, or resumed from the checkpoint). */
  training: TrainingClient;
  /** The first step of this call. */
  startStep: number;
  /** Steps completed in this call. */
  steps: number;
  /** The step (and dataset batch) a later call continues with. */
  nextStep: number;
  /** True when `signal` stopped the run before `maxSteps` / the end of the dataset. */
  aborted: boolean;
  /** Groups dropped as too stale (and sampled again) over the call. */
  droppedStaleGroups: number;
  /** The last checkpoint saved, if any. */
  lastCheckpoint?: SaveResult;
}

/** One group of one batch, to be (re)sampled; `attempt` counts re-samplings after a stale drop. */
interface Ticket {
  batch: number;
  index: number;
  builder: EnvGroupBuilder;
  attempt: number;
}

interface FinishedGroup extends VersionedGroup {
  ticket: Ticket;
  group: EpisodeGroup;
  /** Wall time of the rollout. */
  seconds: number;
}

/**
 * Trains a policy with RL on `dataset`'s env groups. Options are validated before any request
 * (ValidationError). Resolves when the steps run out or `signal` stops it; a failing rollout, env
 * or request stops the run, cancels the other rollouts and is thrown.
 */
export async function trainRL(options: TrainRLOptions): Promise<TrainRLResult> {
  const resolved = resolveRLOptions(options);
  options.signal?.throwIfAborted();
  const { training, startStep } = await openRun(options, resolved);
  return new RLDriver(options, resolved, training, startStep).run();
}

async function openRun(
  options: TrainRLOptions,
  resolved: ResolvedRLOptions,
): Promise<{ training: TrainingClient; startStep: number }> {
  if (options.training) return { training: options.training, startStep: resolved.startStep ?? 0 };
  const service = options.service!;
  const signal = options.signal === undefined ? {} : { signal: options.signal };
  if (resolved.resume) {
    const training = await service.createTrainingClientFromStateWithOptimizer(resolved.resume.path, signal);
    return { training, startStep: resolved.resume.step };
  }
  const training = await service.createLoraTrainingClient(options.baseModel!, { ...options.lora, ...signal });
  return { training, startStep: resolved.startStep ?? 0 };
}

/** `n` items in `parts` nearly equal chunks (no empty chunk). */
function splitEvenly(n: number, parts: number): number[] {
  const k = Math.min(parts, n);
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

const now = () => performance.now();

class RLDriver {
  readonly #options: TrainRLOptions;
  readonly #r: ResolvedRLOptions;
  readonly #training: TrainingClient;
  readonly #startStep: number;
  readonly #manager: CheckpointManager | undefined;
  /** Checkpoint decisions by step, asked once (a time-based policy must not change its mind). */
  readonly #due = new Map<number, boolean>();

  #sampler: SamplingClient | undefined;
  /** Steps applied to the sampler's weights. */
  #version: number;
  /** Groups waiting to start, in order (re-sampled stale groups go first). */
  #queue: Ticket[] = [];
  #nextBatch: number;
  readonly #batchSizes = new Map<number, number>();
  #finished: FinishedGroup[] = [];
  readonly #running = new Set<Promise<void>>();
  readonly #rollouts = new AbortController();
  #stopping = false;
  #failure: { error: unknown } | undefined;
  #waiters: (() => void)[] = [];
  #filling: Promise<void> | undefined;
  #refill = false;
  #droppedTotal = 0;
  #droppedThisStep = 0;
  /** Checkpoint decisions are carried out up to this step (it is saved, or none was due). */
  #checkpointedThrough: number;

  constructor(
    options: TrainRLOptions,
    resolved: ResolvedRLOptions,
    training: TrainingClient,
    startStep: number,
  ) {
    this.#options = options;
    this.#r = resolved;
    this.#training = training;
    this.#startStep = startStep;
    this.#version = startStep;
    this.#nextBatch = startStep;
    this.#checkpointedThrough = startStep;
    const checkpoint = options.checkpoint;
    this.#manager = checkpoint
      ? new CheckpointManager({
          training,
          rest: checkpoint.rest,
          everySteps: checkpoint.everySteps,
          ...(checkpoint.keepLast === undefined ? {} : { keepLast: checkpoint.keepLast }),
          ...(checkpoint.store === undefined ? {} : { store: checkpoint.store }),
          ...(checkpoint.prefix === undefined ? {} : { prefix: checkpoint.prefix }),
        })
      : undefined;
  }

  async run(): Promise<TrainRLResult> {
    const signal = this.#options.signal;
    const wake = () => this.#notify();
    signal?.addEventListener("abort", wake);
    let step = this.#startStep;
    let aborted = false;
    let lastCheckpoint: SaveResult | undefined;
    try {
      this.#sampler = await this.#training.saveWeightsAndGetSamplingClient(signal ? { signal } : {});
      await this.#fill();
      while (step < this.#r.endStep) {
        if (signal?.aborted) {
          aborted = true;
          break;
        }
        const outcome = await this.#step(step);
        if (outcome === undefined) {
          aborted = true;
          break;
        }
        step++;
        if (outcome.checkpoint) lastCheckpoint = outcome.checkpoint;
        await this.#options.onMetrics?.(outcome);
      }
      if (signal?.aborted && step < this.#r.endStep) aborted = true;
    } catch (error) {
      this.#fail(error);
    } finally {
      signal?.removeEventListener("abort", wake);
      await this.#stop();
    }
    if (this.#failure) throw this.#failure.error;
    const result: TrainRLResult = {
      training: this.#training,
      startStep: this.#startStep,
      steps: step - this.#startStep,
      nextStep: step,
      aborted,
      droppedStaleGroups: this.#droppedTotal,
    };
    if (lastCheckpoint) result.lastCheckpoint = lastCheckpoint;
    return result;
  }

  /** One training step; undefined when `signal` stopped it before anything was submitted. */
  async #step(step: number): Promise<RLStepReport | undefined> {
    const { kl } = this.#options;
    const stepStart = now();
    await this.#fill();
    const needed = this.#batchSizes.get(step);
    if (needed === undefined) throw new TinkerError(`trainRL: batch ${step} was not loaded (driver bug)`);
    // A schedule's Adam parameters are checked before this step sends anything.
    const adam: AdamParams = this.#r.adamFor(step);
    this.#droppedThisStep = 0;

    const trained: FinishedGroup[] = [];
    const forwardBackwards: APIFuture<ForwardBackwardOutput>[] = [];
    const submitted: TrainingSequence[][] = [];
    let skipped = 0;
    let constant = 0;
    let waitSeconds = 0;
    let klDiffSum = 0;
    let klTokens = 0;
    let trainedTokens = 0;
    for (const size of splitEvenly(needed, this.#r.minibatches)) {
      const waitStart = now();
      // Once a forward_backward of this step is sent, the step must end with its optim_step.
      const groups = await this.#collect(step, size, forwardBackwards.length > 0);
      waitSeconds += (now() - waitStart) / 1000;
      if (groups === undefined) return undefined;
      trained.push(...groups);
      const { sequences, skippedGroups, constantGroups } = this.#sequences(groups);
      skipped += skippedGroups;
      constant += constantGroups;
      let shaped = sequences;
      if (kl && sequences.length > 0) {
        const refs = await referenceLogprobs(kl.reference, sequences, this.#rollouts.signal);
        const result = klShapeAdvantages(sequences, refs, kl.coefficient, kl.discount ?? 0);
        shaped = result.sequences;
        const tokens = actionTokenCount(sequences);
        klDiffSum += result.meanLogprobDiff * tokens;
        klTokens += tokens;
      }
      const data: Datum[] = [];
      const used: TrainingSequence[] = [];
      for (const sequence of shaped) {
        const d = sequenceToDatum(sequence);
        if (d === undefined) continue;
        data.push(d);
        used.push(sequence);
        trainedTokens += sequence.tokens.length - 1;
      }
      if (data.length === 0) continue;
      if (forwardBackwards.length === 0 && this.#options.signal?.aborted) return undefined;
      forwardBackwards.push(this.#training.forwardBackward(data, this.#r.lossFn, this.#options.lossFnConfig));
      submitted.push(used);
    }

    const trainStart = now();
    let trainMetrics: Record<string, number> = {};
    if (forwardBackwards.length > 0) {
      // All submitted before any is awaited: one server cycle, and the sampler refresh right after.
      const optim = this.#training.optimStep(adam);
      const refreshed = this.#training.saveWeightsAndGetSamplingClient();
      const [outputs, optimResult, sampler] = await Promise.all([
        Promise.all(forwardBackwards),
        optim,
        refreshed,
      ]);
      this.#sampler = sampler;
      trainMetrics = trainingMetrics(outputs, optimResult.metrics ?? {}, submitted);
    }
    const trainSeconds = (now() - trainStart) / 1000;
    // Without an update the weights are unchanged: the current sampler already holds step + 1's.
    this.#version = step + 1;

    let checkpoint: SaveResult | undefined;
    const due = this.#isDue(step + 1);
    // Decisions up to this step are spent: neither map grows with the run. (maybeSave follows the
    // manager's remembered answer, which is the one cached here, and forgets the steps up to it.)
    for (const c of this.#due.keys()) if (c <= step + 1) this.#due.delete(c);
    if (this.#manager && due) {
      checkpoint = await this.#manager.maybeSave(step + 1, {
        "reward/mean": mean(trained.flatMap((g) => g.group.totalRewards)),
      });
    }
    this.#checkpointedThrough = step + 1;
    // New weights (and the checkpoint, if one was due) admit the next batches.
    await this.#fill();

    const staleness = stalenessStats(trained, step);
    const metrics: Record<string, number> = {
      ...rolloutMetrics(trained.map((g) => g.group)),
      "groups/count": trained.length,
      "groups/constant_reward": trained.length === 0 ? 0 : constant / trained.length,
      "groups/skipped_zero_advantage": trained.length === 0 ? 0 : skipped / trained.length,
      "groups/dropped_stale": this.#droppedThisStep,
      "staleness/mean": staleness.mean,
      "staleness/max": staleness.max,
      "dataset/batch_min": trained.length === 0 ? step : Math.min(...trained.map((g) => g.batch)),
      "dataset/batch_max": trained.length === 0 ? step : Math.max(...trained.map((g) => g.batch)),
      "tokens/trained": trainedTokens,
      "datums/count": submitted.reduce((n, s) => n + s.length, 0),
      "time/step": (now() - stepStart) / 1000,
      "time/wait_rollouts": waitSeconds,
      "time/train": trainSeconds,
      "time/rollout_mean": mean(trained.map((g) => g.seconds)),
      "async/in_flight_groups": this.#running.size,
      "async/finished_waiting": this.#finished.length,
      ...trainMetrics,
    };
    if (adam.learning_rate !== undefined) metrics["optim/lr"] = adam.learning_rate;
    if (kl) metrics["kl/policy_reference"] = klTokens === 0 ? 0 : klDiffSum / klTokens;
    const report: RLStepReport = { step, metrics };
    if (checkpoint) report.checkpoint = checkpoint;
    return report;
  }

  /** Training sequences of the groups, skipping constant-reward groups when asked. */
  #sequences(groups: readonly FinishedGroup[]): {
    sequences: TrainingSequence[];
    skippedGroups: number;
    constantGroups: number;
  } {
    const rewards = groups.map((g) => [...g.group.totalRewards]);
    const constantGroups = rewards.filter((r) => r.every((x) => x === r[0])).length;
    const kept = this.#r.removeConstantRewardGroups
      ? removeConstantRewardGroups(groups, rewards)
      : { groups: [...groups], rewards };
    const sequences: TrainingSequence[] = [];
    kept.groups.forEach((g, i) => {
      const advantages = centerAdvantages(kept.rewards[i]!, {
        normalize: this.#options.normalizeAdvantages ?? false,
      });
      g.group.episodes.forEach((episode, j) => {
        sequences.push(...episodeToSequences(episode, advantages[j]!));
      });
    });
    return { sequences, skippedGroups: groups.length - kept.groups.length, constantGroups };
  }

  /**
   * Waits for `count` finished groups fresh enough for `step` (stalest first). Too-stale ones are
   * dropped and their problems sampled again. Undefined when `signal` stops it, unless `mustFinish`.
   */
  async #collect(step: number, count: number, mustFinish: boolean): Promise<FinishedGroup[] | undefined> {
    const taken: FinishedGroup[] = [];
    for (;;) {
      if (this.#failure) throw this.#failure.error;
      if (!mustFinish && this.#options.signal?.aborted) return undefined;
      const pick = takeForStep(this.#finished, step, count - taken.length, this.#r.maxStaleness);
      this.#finished = pick.rest;
      taken.push(...pick.taken);
      if (pick.stale.length > 0) {
        this.#droppedThisStep += pick.stale.length;
        this.#droppedTotal += pick.stale.length;
        // First in line, with the newest weights (and a new seed: a new attempt).
        this.#queue.unshift(...pick.stale.map((g) => ({ ...g.ticket, attempt: g.ticket.attempt + 1 })));
        await this.#fill();
        continue;
      }
      if (taken.length >= count) return taken;
      if (this.#running.size === 0 && this.#queue.length === 0 && this.#filling === undefined) {
        throw new TinkerError(
          `trainRL: step ${step} needs ${count - taken.length} more group(s) and none is being sampled (driver bug)`,
        );
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Loads the batches the staleness rule and checkpoint fences admit, and starts their groups. */
  #fill(): Promise<void> {
    this.#refill = true;
    if (this.#filling === undefined) {
      this.#filling = (async () => {
        try {
          while (this.#refill) {
            this.#refill = false;
            await this.#fillOnce();
          }
        } finally {
          this.#filling = undefined;
        }
      })();
    }
    return this.#filling;
  }

  async #fillOnce(): Promise<void> {
    while (
      !this.#stopping &&
      this.#nextBatch < this.#r.endStep &&
      canStartBatch(this.#nextBatch, this.#version, this.#r.maxStaleness) &&
      !this.#fenced(this.#nextBatch)
    ) {
      const batch = this.#nextBatch++;
      const builders = await this.#r.dataset.getBatch(batch);
      if (!Array.isArray(builders)) {
        throw new ValidationError([
          { path: `dataset.getBatch(${batch})`, message: "must return an array of EnvGroupBuilders" },
        ]);
      }
      builders.forEach((builder, index) => {
        if (typeof builder?.makeEnvs !== "function") {
          throw new ValidationError([
            {
              path: `dataset.getBatch(${batch})[${index}]`,
              message: "must be an EnvGroupBuilder (makeEnvs)",
            },
          ]);
        }
      });
      this.#batchSizes.set(batch, builders.length);
      builders.forEach((builder, index) => {
        this.#queue.push({ batch, index, builder, attempt: 0 });
      });
    }
    while (!this.#stopping && this.#queue.length > 0) this.#start(this.#queue.shift()!);
  }

  /**
   * True while a checkpoint `step-c` with c ≤ `batch` is due and not yet saved: batch c onwards
   * must not start before it, or the checkpoint would not be an exact dataset position.
   */
  #fenced(batch: number): boolean {
    for (let c = this.#checkpointedThrough + 1; c <= batch; c++) if (this.#isDue(c)) return true;
    return false;
  }

  #isDue(step: number): boolean {
    if (this.#manager === undefined) return false;
    let due = this.#due.get(step);
    if (due === undefined) {
      due = this.#manager.isDue(step);
      this.#due.set(step, due);
    }
    return due;
  }

  #start(ticket: Ticket): void {
    const sampler = this.#sampler!;
    const samplerStep = this.#version;
    const started = now();
    const seed = this.#options.seed;
    const rollout: Promise<void> = rolloutGroup(sampler, ticket.builder, {
      maxTokens: this.#options.maxTokens,
      temperature: this.#r.temperature,
      maxTurns: this.#r.maxTurns,
      signal: this.#rollouts.signal,
      ...(seed === undefined ? {} : { seed: mixSeed(seed, ticket.batch, ticket.index, ticket.attempt) }),
      ...(this.#options.groupSize === undefined ? {} : { groupSize: this.#options.groupSize }),
    })
      .then(
        (group) => {
          this.#finished.push({
            batch: ticket.batch,
            index: ticket.index,
            samplerStep,
            ticket,
            group,
            seconds: (now() - started) / 1000,
          });
        },
        (error: unknown) => {
          // Rollouts cancelled by a stop are expected to fail.
          if (!this.#stopping) this.#fail(error);
        },
      )
      .finally(() => {
        this.#running.delete(rollout);
        this.#notify();
      });
    this.#running.add(rollout);
  }

  #fail(error: unknown): void {
    this.#failure ??= { error };
    this.#notify();
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Cancels what is still sampling and waits for it, so nothing of the run outlives the call. */
  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#rollouts.abort();
    await this.#filling?.catch(() => {});
    await Promise.allSettled([...this.#running]);
  }
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * The step's forward_backward metrics (merged across minibatches, `train/<name>`), optim_step's
 * (`optim/<name>`), and the sampler-vs-trainer KL on the action tokens (`kl/sample_train_k1`,
 * `kl/sample_train_k3`): ≈ 0 on-policy, growing with staleness.
 */
function trainingMetrics(
  outputs: readonly ForwardBackwardOutput[],
  optimMetrics: Record<string, number>,
  submitted: readonly (readonly TrainingSequence[])[],
): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const [name, value] of Object.entries(mergeForwardBackwardOutputs(outputs).metrics)) {
    metrics[`train/${name}`] = value;
  }
  for (const [name, value] of Object.entries(optimMetrics)) metrics[`optim/${name}`] = value;
  let count = 0;
  let k1 = 0;
  let k3 = 0;
  outputs.forEach((output, m) => {
    submitted[m]!.forEach((sequence, i) => {
      const trainer = output.loss_fn_outputs[i]?.logprobs?.data;
      if (trainer === undefined) return;
      const sampled = sequence.logprobs.slice(1).map((lp, t) => (sequence.mask[t + 1] ? lp : null));
      const trainerValues = Array.from(trainer as ArrayLike<number>, Number);
      if (trainerValues.length !== sampled.length) return;
      try {
        const c = compareLogprobs(sampled, trainerValues);
        count += c.count;
        k1 += c.klK1 * c.count;
        k3 += c.klK3 * c.count;
      } catch {
        // A sequence without comparable positions adds nothing.
      }
    });
  });
  if (count > 0) {
    metrics["kl/sample_train_k1"] = k1 / count;
    metrics["kl/sample_train_k3"] = k3 / count;
  }
  return metrics;
}
