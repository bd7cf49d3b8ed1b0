/**
 * What the local backend knows: its sessions, training runs, samplers and checkpoints, in one
 * explicit object that the protocol core (backend.ts), persistence (persistence.ts) and the REST
 * views (rest-views.ts) share. Each module reads and changes it only through this object.
 */

import type { SessionFinishStatus } from "../wire/endpoints/session.js";
import type { CheckpointPathSegment } from "../wire/rest-schemas.js";
import type { InferenceModel, TrainableModel } from "./engine/index.js";
import { LocalBackendError } from "./errors.js";
import { ModelQueue } from "./model-queue.js";

export interface Session {
  id: string;
  lastHeartbeatAt: number;
  userMetadata: Record<string, string>;
  createdAt: Date;
  expired: boolean;
  /** Set by the first `sessions/{id}/finish` (PROTOCOL.md §S1); final, later finishes keep it. */
  finished?: SessionFinish;
}

/** How and when a session was finished. */
export interface SessionFinish {
  reason: SessionFinishStatus;
  detail: string | null;
  at: Date;
}

/** Which parts of the model a run's LoRA adapts, and at what rank. */
export interface LoraSettings {
  rank: number;
  trainAttn: boolean;
  trainMlp: boolean;
  trainUnembed: boolean;
}

export interface TrainingRun {
  modelId: string;
  sessionId: string;
  baseModel: string;
  lora: LoraSettings;
  userMetadata: Record<string, string> | undefined;
  model: TrainableModel;
  /** Applies the run's training operations in seq_id order. */
  queue: ModelQueue;
  createdAt: Date;
  lastRequestAt: Date;
  unloaded: boolean;
  corrupted: boolean;
  /**
   * False for a run made only to hold a copied (§S3) or uploaded (§W4) checkpoint: its training
   * operations are refused. The optimizer family of a run is its model's (`model.optimizer`).
   */
  trainable: boolean;
}

export interface Sampler {
  id: string;
  sessionId: string;
  baseModel: string;
  modelPath: string | null;
  model: InferenceModel;
  /** Weights of a sampler made from a run's current state (no checkpoint), kept for the store. */
  state?: Uint8Array;
  lora?: LoraSettings;
}

/**
 * A saved checkpoint: training state (`weights/…`), inference weights (`sampler_weights/…`) or a
 * Hugging Face PEFT adapter (`external_weights/…`, §W2/§W4).
 */
export interface Checkpoint {
  tinkerPath: string;
  runId: string;
  kind: CheckpointKind;
  name: string;
  baseModel: string;
  /**
   * The stored bytes. `weights` and `sampler_weights`: engine state (LoRA weights, plus optimizer
   * moments for training checkpoints). `external_weights`: the adapter's files as one ustar archive
   * (see external-weights.ts), which is also what its archive URL serves.
   */
  state: Uint8Array;
  lora: LoraSettings;
  time: Date;
  expiresAt: Date | null;
  public: boolean;
  /** The `user_metadata` given when it was saved (§W1); an overwrite replaces it as a whole. */
  userMetadata: Record<string, string> | undefined;
}

/** The `tinker://` path segment of each checkpoint kind. */
export type CheckpointKind = CheckpointPathSegment;

/** Kinds whose bytes are engine state (as opposed to the files of an external adapter). */
export function holdsEngineState(checkpoint: Checkpoint): boolean {
  return checkpoint.kind !== "external_weights";
}

export interface BackendState {
  /** Every session ever created, expired ones included (their history stays readable). */
  readonly sessions: Map<string, Session>;
  /** The project of each session that was assigned one (at creation or `PUT sessions/{id}/project`). */
  readonly sessionProjects: Map<string, string>;
  /** Training runs by model id, unloaded ones included. */
  readonly runs: Map<string, TrainingRun>;
  /** Samplers by sampling session id. */
  readonly samplers: Map<string, Sampler>;
  /** Checkpoints by tinker:// path, expired ones included until deleted. */
  readonly checkpoints: Map<string, Checkpoint>;
}

export function createBackendState(): BackendState {
  return {
    sessions: new Map(),
    sessionProjects: new Map(),
    runs: new Map(),
    samplers: new Map(),
    checkpoints: new Map(),
  };
}

/** Adds a run whose queue expects `nextSeqId` next (1 for a new run, the stored one for a restored run). */
export function registerRun(
  state: BackendState,
  fields: Pick<TrainingRun, "modelId" | "sessionId" | "baseModel" | "lora" | "userMetadata" | "model"> &
    Partial<Pick<TrainingRun, "trainable">>,
  nextSeqId = 1,
): TrainingRun {
  const now = new Date();
  const run: TrainingRun = {
    ...fields,
    queue: new ModelQueue(nextSeqId),
    createdAt: now,
    lastRequestAt: now,
    unloaded: false,
    corrupted: false,
    trainable: fields.trainable ?? true,
  };
  state.runs.set(run.modelId, run);
  return run;
}

/** A session as the REST endpoints see it: not_found if unknown, but expired sessions are found. */
export function knownSession(state: BackendState, id: string): Session {
  const session = state.sessions.get(id);
  if (!session) throw new LocalBackendError("not_found", `session not found: ${id}`);
  return session;
}

/** A run as the REST endpoints see it: not_found if unknown, but unloaded runs are found. */
export function knownRun(state: BackendState, runId: string): TrainingRun {
  const run = state.runs.get(runId);
  if (!run) throw new LocalBackendError("not_found", `training run not found: ${runId}`);
  return run;
}
