/** The latest step checkpoint of a run, and resuming training from it. */
import type { CallOptions } from "../../clients/call-options.js";
import type { RestClient } from "../../clients/rest.js";
import type { FromStateOptions, ServiceClient } from "../../clients/service.js";
import type { TrainingClient } from "../../clients/training.js";
import { ValidationError } from "../../core/errors.js";
import { listStepCheckpoints, type SavedCheckpoint } from "./listing.js";
import { validatePrefix } from "./names.js";

export interface LatestCheckpointOptions extends CallOptions {
  /** The CheckpointManager's prefix. Default "". */
  prefix?: string;
}

/**
 * The run's step checkpoint (`<prefix>step-N`, a training checkpoint) with the highest step, read
 * from the server's list; undefined when it has none (or the run is unknown).
 */
export async function latestCheckpoint(
  rest: RestClient,
  runId: string,
  options: LatestCheckpointOptions = {},
): Promise<SavedCheckpoint | undefined> {
  if (typeof runId !== "string" || runId === "") {
    throw new ValidationError([{ path: "runId", message: "must be a non-empty string" }]);
  }
  const prefix = validatePrefix(options.prefix ?? "", "options.prefix");
  return (await listStepCheckpoints(rest, runId, prefix, options)).at(-1);
}

export interface ResumeOptions extends LatestCheckpointOptions {
  /** Options of the new run (`baseModel`, `userMetadata`, …). */
  fromState?: FromStateOptions;
}

export interface ResumedTraining {
  /** A new run with the checkpoint's weights and optimizer state. */
  training: TrainingClient;
  /** Steps the checkpoint holds: the next step to run. */
  step: number;
  checkpoint: SavedCheckpoint;
}

/**
 * Continues the run from its latest step checkpoint with `createTrainingClientFromStateWithOptimizer`
 * (a new run id; pass the same `store` to the next CheckpointManager so retention still sees the
 * old run), or undefined when there is nothing to resume from.
 */
export async function resumeFromLatest(
  service: ServiceClient,
  rest: RestClient,
  runId: string,
  options: ResumeOptions = {},
): Promise<ResumedTraining | undefined> {
  const checkpoint = await latestCheckpoint(rest, runId, options);
  if (checkpoint === undefined) return undefined;
  const training = await service.createTrainingClientFromStateWithOptimizer(checkpoint.path, {
    signal: options.signal,
    timeout: options.timeout,
    ...options.fromState,
  });
  return { training, step: checkpoint.step, checkpoint };
}
