/**
 * The protocol state of the local backend: sessions, training runs (each with its seq_id queue),
 * samplers, sampler checkpoints and futures, and the operations behind each endpoint. The HTTP
 * routing lives in handler.ts; the model maths in engine/.
 */
import { uuid4 } from "../internal/uuid.js";
import { encodeForwardBackwardOutput, encodeSampleResponse } from "../wire/protobuf/index.js";
import type { Datum, ForwardBackwardOutput, ModelInput, SampleResponse } from "../wire/types.js";
import { ArchiveUrlSigner, buildCheckpointArchive } from "./archive.js";
import {
  type BaseModel,
  createBaseModel,
  createInferenceModel,
  DEFAULT_MODEL_CONFIG,
  EngineError,
  hashSeed,
  type InferenceModel,
  inspectState,
  TOKENIZER_ID,
  TrainableModel,
} from "./engine/index.js";
import { LocalBackendError } from "./errors.js";
import { type FutureOutcome, FutureStore } from "./future-store.js";
import { ModelQueue } from "./model-queue.js";
import { defaultWarning, messageOf, type Store, type StoreCollection, type StoredRecord } from "./store.js";

/** The model this backend ships. Any other name gets the same architecture with its own fixed weights. */
export const BUILTIN_BASE_MODEL = "tinker-ts/byte-lm-tiny";

export interface LocalBackendOptions {
  /**
   * Accept base-model names other than the built-in one (e.g. `Qwen/Qwen3-8B`), each mapped to a
   * tiny model with weights fixed by its name, so code written for the service runs unchanged.
   * Default true.
   */
  acceptAnyBaseModel?: boolean;
  /**
   * Called each time a training operation is applied, with its run and seq_id (an audit for soak
   * tests: every seq_id must be applied exactly once, retries and faults notwithstanding).
   */
  onApplied?: (modelId: string, seqId: number) => void;
  /**
   * Base models listed by `get_server_capabilities`. When given, only these names are accepted
   * (plus the built-in model); by default the built-in model is listed and any name is accepted
   * (see acceptAnyBaseModel).
   */
  models?: string[];
  /**
   * A session that has not sent a heartbeat for this long expires: new work in it (new models,
   * samplers, training and sampling requests) answers 404, while its runs and checkpoints stay
   * readable through the REST endpoints. Default 10 minutes.
   */
  sessionTtlMs?: number;
  /** Where warnings go (damaged store records, failed writes). Default console.warn. */
  onWarning?: (message: string) => void;
}

/** Default session lifetime without a heartbeat. */
export const DEFAULT_SESSION_TTL_MS = 10 * 60_000;

interface Session {
  id: string;
  lastHeartbeatAt: number;
  userMetadata: Record<string, string>;
  createdAt: Date;
  expired: boolean;
}

interface TrainingRun {
  modelId: string;
  sessionId: string;
  baseModel: string;
  lora: { rank: number; trainAttn: boolean; trainMlp: boolean; trainUnembed: boolean };
  userMetadata: Record<string, string> | undefined;
  model: TrainableModel;
  queue: ModelQueue;
  createdAt: Date;
  lastRequestAt: Date;
  unloaded: boolean;
  corrupted: boolean;
}

interface Sampler {
  id: string;
  sessionId: string;
  baseModel: string;
  modelPath: string | null;
  model: InferenceModel;
  /** Weights of a sampler made from a run's current state (no checkpoint), kept for the store. */
  state?: Uint8Array;
  lora?: TrainingRun["lora"];
}

/** A saved checkpoint: training state (`weights/…`) or inference weights (`sampler_weights/…`). */
export interface Checkpoint {
  tinkerPath: string;
  runId: string;
  kind: "weights" | "sampler_weights";
  name: string;
  baseModel: string;
  /** Engine state (LoRA weights, plus optimizer moments for training checkpoints). */
  state: Uint8Array;
  lora: TrainingRun["lora"];
  time: Date;
  expiresAt: Date | null;
  public: boolean;
}

/** One audit log entry (PROTOCOL.md §2.7.8). */
interface AuditEvent {
  timestamp: Date;
  event: string;
  modelId: string;
  tinkerPath?: string;
}

export type AccessScope = "owned" | "accessible";

/** A page of a REST list: where it starts and how long it may be. */
export interface PageRequest {
  limit: number;
  offset: number;
}

/** Who owns everything in this single-user backend (`TrainingRun.model_owner`, billing `user_id`). */
const LOCAL_USER = "local-user";
/** How long an archive URL stays valid, as the service's default. */
const ARCHIVE_URL_LIFETIME_MS = 15 * 60_000;
/** Signed trace-export URLs: grant kind (never a checkpoint id) and lifetime (SDK: "about 1 h"). */
const TRACE_GRANT = "trace";
const TRACE_URL_LIFETIME_MS = 60 * 60_000;
const HOUR_MS = 3_600_000;

export interface LoraRequest {
  rank: number;
  seed?: number;
  train_unembed?: boolean;
  train_mlp?: boolean;
  train_attn?: boolean;
}

export class LocalBackend {
  readonly futures = new FutureStore();
  readonly #options: Required<Omit<LocalBackendOptions, "models">> & { models: string[] | undefined };
  #store: Store | undefined;
  /** Store writes not yet durable; answers wait for them (see flushWrites). */
  readonly #writes = new Set<Promise<void>>();
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /** Creation order of persisted items (sessions, runs, checkpoints), kept across restarts. */
  readonly #ordinals = new WeakMap<object, number>();
  #nextOrdinal = 0;
  readonly #sessions = new Map<string, Session>();
  readonly #runs = new Map<string, TrainingRun>();
  readonly #samplers = new Map<string, Sampler>();
  readonly #checkpoints = new Map<string, Checkpoint>();
  readonly #baseModels = new Map<string, BaseModel>();
  /** The project of each session that was assigned one (`PUT sessions/{id}/project`). */
  readonly #sessionProjects = new Map<string, string>();
  /** Audit events that leave no trace in the state itself: deletes, visibility and TTL changes. */
  readonly #auditEvents: AuditEvent[] = [];
  /** Sessions whose trace export was started: the next poll finds it ready. */
  readonly #traceExports = new Set<string>();

  constructor(options: LocalBackendOptions = {}) {
    this.#options = {
      acceptAnyBaseModel: options.acceptAnyBaseModel ?? true,
      onApplied: options.onApplied ?? (() => {}),
      models: options.models,
      sessionTtlMs: options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS,
      onWarning: options.onWarning ?? defaultWarning,
    };
    if (!(this.#options.sessionTtlMs > 0)) throw new Error("sessionTtlMs must be positive");
  }

  /**
   * Starts the expiry sweep once there is a session. Expiry is checked on every access anyway; the
   * sweep marks expired sessions (and persists that). Unref'd: it never keeps a process alive.
   */
  #startSweep(): void {
    if (this.#sweepTimer !== undefined || this.#closed) return;
    this.#sweepTimer = setInterval(
      () => this.#expireSessions(),
      Math.min(60_000, Math.max(10, this.#options.sessionTtlMs / 2)),
    );
    (this.#sweepTimer as { unref?: () => void }).unref?.();
  }

  /** Stops the expiry timer and waits for pending store writes. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    await this.flushWrites();
    await this.#store?.close();
  }

  // Persistence (docs/LOCAL_BACKEND.md, "Persistence"). What is written when:
  //   session: at creation, project assignment and expiry (heartbeat times are not written: a
  //            restarted backend gives every live session a fresh TTL);
  //   run: at creation and after every applied training operation (its weights, optimizer state
  //        and next seq_id), unload and corruption;
  //   checkpoint: at save, publish/TTL changes; its file is removed at delete;
  //   sampler: at creation.
  // Every answer that reports such a change (the future's result, a REST response) is sent only
  // after the write is durable. Pending gradients, in-flight futures and the audit log of
  // deletes/visibility changes are not persisted.

  /**
   * Attaches a store and loads what it holds. Damaged or inconsistent items are skipped with a
   * warning. Call once, before serving requests.
   */
  async attachStore(store: Store): Promise<void> {
    const load = async (collection: StoreCollection, restore: (record: StoredRecord) => void) => {
      // In creation order, as the REST lists are.
      const records = (await store.load(collection)).sort((a, b) => recordOrder(a) - recordOrder(b));
      for (const record of records) {
        try {
          restore(record);
        } catch (error) {
          this.#options.onWarning(`skipping ${collection} record ${record.key}: ${messageOf(error)}`);
        }
      }
    };
    await load("sessions", (record) => this.#restoreSession(record));
    await load("runs", (record) => this.#restoreRun(record));
    await load("checkpoints", (record) => this.#restoreCheckpoint(record));
    await load("samplers", (record) => this.#restoreSampler(record));
    this.#store = store;
  }

  /** Resolves when every store write started so far is durable (or has failed with a warning). */
  async flushWrites(): Promise<void> {
    while (this.#writes.size > 0) await Promise.allSettled([...this.#writes]);
  }

  #write(action: (store: Store) => Promise<void>, what: string): void {
    const store = this.#store;
    if (!store) return;
    const write = action(store).catch((error) =>
      this.#options.onWarning(`could not persist ${what}: ${messageOf(error)}`),
    );
    this.#writes.add(write);
    void write.finally(() => this.#writes.delete(write));
  }

  #ordinal(item: object): number {
    let ordinal = this.#ordinals.get(item);
    if (ordinal === undefined) {
      ordinal = this.#nextOrdinal++;
      this.#ordinals.set(item, ordinal);
    }
    return ordinal;
  }

  #restoreOrdinal(item: object, record: StoredRecord): void {
    const ordinal = (record.meta as { ordinal?: unknown }).ordinal;
    if (typeof ordinal !== "number") return;
    this.#ordinals.set(item, ordinal);
    this.#nextOrdinal = Math.max(this.#nextOrdinal, ordinal + 1);
  }

  #persistSession(session: Session): void {
    this.#write(
      (store) =>
        store.put("sessions", {
          key: session.id,
          meta: {
            userMetadata: session.userMetadata,
            projectId: this.#sessionProjects.get(session.id) ?? null,
            createdAt: session.createdAt.toISOString(),
            expired: session.expired,
            ordinal: this.#ordinal(session),
          },
        }),
      `session ${session.id}`,
    );
  }

  #persistRun(run: TrainingRun): void {
    if (!this.#store) return;
    const data = run.model.exportState({ withOptimizer: true });
    this.#write(
      (store) =>
        store.put("runs", {
          key: run.modelId,
          meta: {
            sessionId: run.sessionId,
            baseModel: run.baseModel,
            lora: run.lora,
            userMetadata: run.userMetadata ?? null,
            createdAt: run.createdAt.toISOString(),
            lastRequestAt: run.lastRequestAt.toISOString(),
            unloaded: run.unloaded,
            corrupted: run.corrupted,
            nextSeqId: run.queue.nextSeqId,
            ordinal: this.#ordinal(run),
          },
          data,
        }),
      `training run ${run.modelId}`,
    );
  }

  #persistCheckpoint(checkpoint: Checkpoint): void {
    this.#write(
      (store) =>
        store.put("checkpoints", {
          key: checkpoint.tinkerPath,
          meta: {
            runId: checkpoint.runId,
            kind: checkpoint.kind,
            name: checkpoint.name,
            baseModel: checkpoint.baseModel,
            lora: checkpoint.lora,
            time: checkpoint.time.toISOString(),
            expiresAt: checkpoint.expiresAt?.toISOString() ?? null,
            public: checkpoint.public,
            ordinal: this.#ordinal(checkpoint),
          },
          data: checkpoint.state,
        }),
      `checkpoint ${checkpoint.tinkerPath}`,
    );
  }

  #persistSampler(sampler: Sampler): void {
    this.#write(
      (store) =>
        store.put("samplers", {
          key: sampler.id,
          meta: {
            sessionId: sampler.sessionId,
            baseModel: sampler.baseModel,
            modelPath: sampler.modelPath,
            lora: sampler.lora ?? null,
          },
          ...(sampler.state ? { data: sampler.state } : {}),
        }),
      `sampler ${sampler.id}`,
    );
  }

  #restoreSession(record: StoredRecord): void {
    const meta = record.meta as {
      userMetadata: Record<string, string>;
      projectId: string | null;
      createdAt: string;
      expired: boolean;
    };
    const session: Session = {
      id: record.key,
      lastHeartbeatAt: Date.now(),
      userMetadata: meta.userMetadata ?? {},
      createdAt: validDate(meta.createdAt),
      expired: meta.expired === true,
    };
    this.#restoreOrdinal(session, record);
    this.#sessions.set(record.key, session);
    if (typeof meta.projectId === "string") this.#sessionProjects.set(record.key, meta.projectId);
    this.#startSweep();
  }

  #restoreRun(record: StoredRecord): void {
    const meta = record.meta as {
      sessionId: string;
      baseModel: string;
      lora: TrainingRun["lora"];
      userMetadata: Record<string, string> | null;
      createdAt: string;
      lastRequestAt: string;
      unloaded: boolean;
      corrupted: boolean;
      nextSeqId: number;
    };
    if (!record.data) throw new Error("no model state");
    if (!Number.isInteger(meta.nextSeqId)) throw new Error("no next seq_id");
    const model = this.#modelFromState(meta.baseModel, meta.lora, record.data, true);
    const run = this.#registerRun(
      record.key,
      meta.sessionId,
      meta.baseModel,
      meta.lora,
      meta.userMetadata ?? undefined,
      model,
      meta.nextSeqId,
    );
    run.createdAt = validDate(meta.createdAt);
    run.lastRequestAt = validDate(meta.lastRequestAt);
    run.unloaded = meta.unloaded === true;
    run.corrupted = meta.corrupted === true;
    this.#restoreOrdinal(run, record);
  }

  #restoreCheckpoint(record: StoredRecord): void {
    const meta = record.meta as {
      runId: string;
      kind: Checkpoint["kind"];
      name: string;
      baseModel: string;
      lora: TrainingRun["lora"];
      time: string;
      expiresAt: string | null;
      public: boolean;
    };
    if (!record.data) throw new Error("no model state");
    if (meta.kind !== "weights" && meta.kind !== "sampler_weights") throw new Error("unknown kind");
    // The engine format validates itself: a state that does not load is not served.
    this.#modelFromState(meta.baseModel, meta.lora, record.data, meta.kind === "weights");
    const checkpoint: Checkpoint = {
      tinkerPath: record.key,
      runId: meta.runId,
      kind: meta.kind,
      name: meta.name,
      baseModel: meta.baseModel,
      state: record.data,
      lora: meta.lora,
      time: validDate(meta.time),
      expiresAt: meta.expiresAt === null ? null : validDate(meta.expiresAt),
      public: meta.public === true,
    };
    this.#restoreOrdinal(checkpoint, record);
    this.#checkpoints.set(record.key, checkpoint);
  }

  #restoreSampler(record: StoredRecord): void {
    const meta = record.meta as {
      sessionId: string;
      baseModel: string;
      modelPath: string | null;
      lora: TrainingRun["lora"] | null;
    };
    let model: InferenceModel;
    if (meta.modelPath !== null) {
      const checkpoint = this.#checkpoints.get(meta.modelPath);
      if (!checkpoint) throw new Error(`its checkpoint ${meta.modelPath} is gone`);
      model = this.#modelFromState(checkpoint.baseModel, checkpoint.lora, checkpoint.state, false).snapshot();
    } else if (record.data && meta.lora) {
      model = this.#modelFromState(meta.baseModel, meta.lora, record.data, false).snapshot();
    } else {
      model = createInferenceModel(this.#baseModel(meta.baseModel));
    }
    this.#samplers.set(record.key, {
      id: record.key,
      sessionId: meta.sessionId,
      baseModel: meta.baseModel,
      modelPath: meta.modelPath,
      model,
      ...(record.data && meta.lora ? { state: record.data, lora: meta.lora } : {}),
    });
  }

  /** A trainable model rebuilt from engine state bytes (validated by the engine). */
  #modelFromState(
    baseModel: string,
    lora: TrainingRun["lora"],
    state: Uint8Array,
    withOptimizer: boolean,
  ): TrainableModel {
    const model = new TrainableModel(this.#baseModel(baseModel), {
      ...lora,
      seed: inspectState(state).lora.seed,
    });
    model.importState(state, { withOptimizer });
    return model;
  }

  /** Marks the sessions whose heartbeats stopped as expired. */
  #expireSessions(): void {
    for (const session of this.#sessions.values()) {
      if (!session.expired && this.#isExpired(session)) {
        session.expired = true;
        this.#persistSession(session);
      }
    }
  }

  #isExpired(session: Session): boolean {
    return session.expired || Date.now() - session.lastHeartbeatAt > this.#options.sessionTtlMs;
  }

  /**
   * Test hook: flags a run as corrupted (`TrainingRun.corrupted`, PROTOCOL.md §3.9), as the service
   * does when a model's state is lost; its later training operations fail with a server error.
   */
  markCorrupted(modelId: string, corrupted = true): void {
    const run = this.#knownRun(modelId);
    run.corrupted = corrupted;
    this.#persistRun(run);
  }

  capabilities(): { supported_models: { model_name: string; max_context_length: number }[] } {
    return {
      supported_models: (this.#options.models ?? [BUILTIN_BASE_MODEL]).map((name) => ({
        model_name: name,
        max_context_length: DEFAULT_MODEL_CONFIG.maxSeqLen,
      })),
    };
  }

  createSession(options: { projectId?: string; userMetadata?: Record<string, string> } = {}): string {
    const id = `session-${uuid4()}`;
    const session: Session = {
      id,
      lastHeartbeatAt: Date.now(),
      userMetadata: options.userMetadata ?? {},
      createdAt: new Date(),
      expired: false,
    };
    this.#sessions.set(id, session);
    if (options.projectId !== undefined) this.#sessionProjects.set(id, options.projectId);
    this.#persistSession(session);
    this.#startSweep();
    return id;
  }

  heartbeat(sessionId: string): void {
    this.#session(sessionId).lastHeartbeatAt = Date.now();
  }

  /** create_model: a future whose result is the model id `<session>:train:<model_seq_id>`. */
  createModel(
    sessionId: string,
    modelSeqId: number,
    baseModel: string,
    lora: LoraRequest,
    userMetadata?: Record<string, string>,
  ): string {
    this.#session(sessionId);
    const requestId = this.futures.create();
    const modelId = `${sessionId}:train:${modelSeqId}`;
    this.#runLater(requestId, () => {
      // A repeated create (a retried submission) is the same model.
      if (!this.#runs.has(modelId)) {
        const settings = {
          rank: lora.rank,
          trainAttn: lora.train_attn ?? true,
          trainMlp: lora.train_mlp ?? true,
          trainUnembed: lora.train_unembed ?? true,
        };
        if (!settings.trainAttn && !settings.trainMlp && !settings.trainUnembed) {
          throw new EngineError("at least one of train_attn, train_mlp, train_unembed must be true");
        }
        const model = new TrainableModel(this.#baseModel(baseModel), { ...settings, seed: lora.seed ?? 0 });
        this.#persistRun(this.#registerRun(modelId, sessionId, baseModel, settings, userMetadata, model));
      }
      return { kind: "json", body: { model_id: modelId, type: "create_model" } };
    });
    return requestId;
  }

  #registerRun(
    modelId: string,
    sessionId: string,
    baseModel: string,
    lora: TrainingRun["lora"],
    userMetadata: Record<string, string> | undefined,
    model: TrainableModel,
    nextSeqId = 1,
  ): TrainingRun {
    const now = new Date();
    const run: TrainingRun = {
      modelId,
      sessionId,
      baseModel,
      lora,
      userMetadata,
      model,
      queue: new ModelQueue(nextSeqId),
      createdAt: now,
      lastRequestAt: now,
      unloaded: false,
      corrupted: false,
    };
    this.#runs.set(modelId, run);
    return run;
  }

  /** save_weights (`save_state`): training state with optimizer at `tinker://<run>/weights/<name>`. */
  saveWeights(
    modelId: string,
    seqId: number,
    name: string,
    ttlSeconds: number | undefined,
    overwrite: boolean,
  ): string {
    checkCheckpointName(name);
    const request = { op: "save_weights", name, ttlSeconds, overwrite };
    return this.#ordered(modelId, seqId, request, (run) => {
      const path = `tinker://${modelId}/weights/${name}`;
      if (this.#checkpoints.has(path) && !overwrite) {
        throw new EngineError(`checkpoint ${path} already exists; pass overwrite to replace it`);
      }
      this.#storeCheckpoint(run, "weights", name, run.model.exportState({ withOptimizer: true }), ttlSeconds);
      return { kind: "json", body: { path, type: "save_weights" } };
    });
  }

  /** load_weights into an existing run (`load_state`, `load_state_with_optimizer`). */
  loadWeights(modelId: string, seqId: number, path: string, withOptimizer: boolean): string {
    return this.#ordered(modelId, seqId, { op: "load_weights", path, withOptimizer }, (run) => {
      run.model.importState(this.#trainingCheckpoint(path).state, { withOptimizer });
      return { kind: "json", body: { path, model_id: modelId, type: "load_weights" } };
    });
  }

  /**
   * load_weights that creates the run (the `create_model_via_load_weights` flow): the LoRA
   * configuration comes from the checkpoint; the model id is `<session>:train:<model_seq_id>`.
   */
  createModelFromCheckpoint(
    sessionId: string,
    modelSeqId: number,
    path: string,
    withOptimizer: boolean,
    baseModelOverride: string | undefined,
    userMetadata: Record<string, string> | undefined,
  ): string {
    this.#session(sessionId);
    const requestId = this.futures.create();
    const modelId = `${sessionId}:train:${modelSeqId}`;
    this.#runLater(requestId, () => {
      if (!this.#runs.has(modelId)) {
        const checkpoint = this.#trainingCheckpoint(path);
        const baseModel = baseModelOverride ?? checkpoint.baseModel;
        const model = this.#modelFromState(baseModel, checkpoint.lora, checkpoint.state, withOptimizer);
        this.#persistRun(
          this.#registerRun(modelId, sessionId, baseModel, checkpoint.lora, userMetadata, model),
        );
      }
      return { kind: "json", body: { path, model_id: modelId, type: "load_weights" } };
    });
    return requestId;
  }

  /** weights_info: what a client needs to rebuild a LoRA run from a checkpoint. */
  weightsInfo(path: string): unknown {
    const checkpoint = this.#checkpoints.get(path);
    if (!checkpoint) throw new LocalBackendError("not_found", `checkpoint not found: ${path}`);
    return {
      base_model: checkpoint.baseModel,
      is_lora: true,
      lora_rank: checkpoint.lora.rank,
      train_unembed: checkpoint.lora.trainUnembed,
      train_mlp: checkpoint.lora.trainMlp,
      train_attn: checkpoint.lora.trainAttn,
    };
  }

  /** unload_model: frees the run's weights; later requests to it fail. */
  unloadModel(modelId: string): string {
    const run = this.#run(modelId);
    const requestId = this.futures.create();
    this.#runLater(requestId, () => {
      run.unloaded = true;
      this.#persistRun(run);
      return { kind: "json", body: { model_id: modelId, type: "unload_model" } };
    });
    return requestId;
  }

  #storeCheckpoint(
    run: TrainingRun,
    kind: Checkpoint["kind"],
    name: string,
    state: Uint8Array,
    ttlSeconds: number | undefined,
  ): Checkpoint {
    const time = new Date();
    const checkpoint: Checkpoint = {
      tinkerPath: `tinker://${run.modelId}/${kind}/${name}`,
      runId: run.modelId,
      kind,
      name,
      baseModel: run.baseModel,
      state,
      lora: run.lora,
      time,
      expiresAt: ttlSeconds === undefined ? null : new Date(time.getTime() + ttlSeconds * 1000),
      public: false,
    };
    this.#checkpoints.set(checkpoint.tinkerPath, checkpoint);
    this.#persistCheckpoint(checkpoint);
    return checkpoint;
  }

  #trainingCheckpoint(path: string): Checkpoint {
    const checkpoint = this.#checkpoints.get(path);
    if (!checkpoint) throw new EngineError(`checkpoint not found: ${path}`);
    if (checkpoint.kind !== "weights") {
      throw new EngineError(
        `${path} holds sampler weights; load a training checkpoint (tinker://…/weights/…)`,
      );
    }
    if (checkpoint.expiresAt && checkpoint.expiresAt.getTime() <= Date.now()) {
      throw new EngineError(`checkpoint ${path} has expired`);
    }
    return checkpoint;
  }

  getInfo(modelId: string): unknown {
    const run = this.#run(modelId);
    return {
      model_id: modelId,
      model_data: { arch: "byte-transformer", model_name: run.baseModel, tokenizer_id: TOKENIZER_ID },
      is_lora: true,
      lora_rank: run.lora.rank,
      model_name: run.baseModel,
      type: "get_info",
    };
  }

  forwardBackward(
    modelId: string,
    seqId: number,
    data: Datum[],
    lossFn: string,
    lossFnConfig: Record<string, number> | undefined,
    forwardOnly: boolean,
  ): string {
    const request = { op: "forward_backward", data, lossFn, lossFnConfig, forwardOnly };
    return this.#ordered(modelId, seqId, request, (run) => {
      const batch = data.map((datum, i) => ({
        tokens: modelInputTokens(datum.model_input, i),
        lossFnInputs: lossInputs(datum),
      }));
      const result = run.model.forwardBackward(batch, lossFn, lossFnConfig, forwardOnly);
      const output: ForwardBackwardOutput = {
        loss_fn_output_type: "ArrayRecord",
        loss_fn_outputs: result.logprobs.map((lp) => ({
          logprobs: { data: Array.from(lp), dtype: "float32", shape: [lp.length] },
        })),
        metrics: result.metrics,
      };
      return { kind: "dual", json: output, protobuf: () => encodeForwardBackwardOutput(output) };
    });
  }

  optimStep(modelId: string, seqId: number, adam: Record<string, number>): string {
    return this.#ordered(modelId, seqId, { op: "optim_step", adam }, (run) => {
      const metrics = run.model.optimStep({
        learningRate: adam.learning_rate ?? 1e-4,
        beta1: adam.beta1 ?? 0.9,
        beta2: adam.beta2 ?? 0.95,
        eps: adam.eps ?? 1e-12,
        weightDecay: adam.weight_decay ?? 0,
        gradClipNorm: adam.grad_clip_norm ?? 0,
      });
      return { kind: "json", body: { metrics, type: "optim_step" } };
    });
  }

  /**
   * save_weights_for_sampler: with a name, a persistent sampler checkpoint; without one, an
   * ephemeral sampler registered under `<session>:sample:<sampling_session_seq_id>` right away
   * (the client will sample from it without calling create_sampling_session).
   */
  saveWeightsForSampler(
    modelId: string,
    seqId: number,
    name: string | undefined,
    samplingSessionSeqId: number | undefined,
    ttlSeconds: number | undefined,
  ): string {
    if (name === undefined && samplingSessionId(modelId, samplingSessionSeqId) === undefined) {
      throw new LocalBackendError(
        "invalid",
        "save_weights_for_sampler needs either path or sampling_session_seq_id",
      );
    }
    if (name !== undefined) checkCheckpointName(name);
    // A retried unnamed save takes a new sampling_session_seq_id per attempt (PROTOCOL.md §13.29),
    // so it is not part of what identifies the request.
    return this.#ordered(modelId, seqId, { op: "save_weights_for_sampler", name, ttlSeconds }, (run) => {
      if (name !== undefined) {
        const state = run.model.exportState({ withOptimizer: false });
        const checkpoint = this.#storeCheckpoint(run, "sampler_weights", name, state, ttlSeconds);
        return { kind: "json", body: { path: checkpoint.tinkerPath, type: "save_weights_for_sampler" } };
      }
      const id = samplingSessionId(modelId, samplingSessionSeqId)!;
      const sampler: Sampler = {
        id,
        sessionId: run.sessionId,
        baseModel: run.baseModel,
        modelPath: null,
        model: run.model.snapshot(),
        lora: run.lora,
      };
      if (this.#store) sampler.state = run.model.exportState({ withOptimizer: false });
      this.#samplers.set(id, sampler);
      this.#persistSampler(sampler);
      return { kind: "json", body: { sampling_session_id: id, type: "save_weights_for_sampler" } };
    });
  }

  createSamplingSession(sessionId: string, seqId: number, baseModel?: string, modelPath?: string): string {
    this.#session(sessionId);
    const id = `${sessionId}:sample:${seqId}`;
    let sampler: Sampler;
    if (modelPath !== undefined) {
      const checkpoint = this.#checkpoints.get(modelPath);
      if (!checkpoint) throw new LocalBackendError("not_found", `checkpoint not found: ${modelPath}`);
      const model = this.#modelFromState(checkpoint.baseModel, checkpoint.lora, checkpoint.state, false);
      sampler = { id, sessionId, baseModel: checkpoint.baseModel, modelPath, model: model.snapshot() };
    } else if (baseModel !== undefined) {
      sampler = {
        id,
        sessionId,
        baseModel,
        modelPath: null,
        model: createInferenceModel(this.#baseModel(baseModel)),
      };
    } else {
      throw new LocalBackendError("invalid", "create_sampling_session needs base_model or model_path");
    }
    this.#samplers.set(id, sampler);
    this.#persistSampler(sampler);
    return id;
  }

  getSampler(id: string): unknown {
    const sampler = this.#samplers.get(id);
    if (!sampler) throw new LocalBackendError("not_found", `sampler not found: ${id}`);
    return { sampler_id: id, base_model: sampler.baseModel, model_path: sampler.modelPath };
  }

  sample(request: {
    sampling_session_id?: string;
    base_model?: string;
    num_samples: number;
    prompt: ModelInput;
    sampling_params: Record<string, unknown>;
    prompt_logprobs: boolean;
    topk_prompt_logprobs: number;
  }): string {
    const model = this.#samplerModel(request);
    const requestId = this.futures.create();
    this.#runLater(requestId, () => {
      const prompt = modelInputTokens(request.prompt, 0);
      const params = request.sampling_params;
      const stop = params.stop;
      const sequences = model.sample(prompt, {
        numSamples: request.num_samples,
        maxTokens: numberOrUndefined(params.max_tokens),
        temperature: numberOrUndefined(params.temperature) ?? 1,
        topK: numberOrUndefined(params.top_k) ?? -1,
        topP: numberOrUndefined(params.top_p) ?? 1,
        seed: numberOrUndefined(params.seed),
        stopStrings:
          typeof stop === "string"
            ? [stop]
            : Array.isArray(stop) && typeof stop[0] === "string"
              ? (stop as string[])
              : undefined,
        stopTokens: Array.isArray(stop) && typeof stop[0] === "number" ? (stop as number[]) : undefined,
      });
      const response: SampleResponse = {
        sequences: sequences.map((s) => ({
          stop_reason: s.stopReason,
          tokens: s.tokens,
          logprobs: s.logprobs,
        })),
        prompt_cache_hit_tokens: 0,
      };
      const wantsTopK = request.topk_prompt_logprobs > 0;
      if (request.prompt_logprobs || wantsTopK) {
        const scored = model.promptLogprobs(prompt, request.topk_prompt_logprobs);
        if (request.prompt_logprobs) response.prompt_logprobs = scored.logprobs;
        if (wantsTopK) response.topk_prompt_logprobs = scored.topk;
      }
      return {
        kind: "dual",
        json: { ...response, type: "sample" },
        protobuf: () => encodeSampleResponse(response),
      };
    });
    return requestId;
  }

  // REST endpoints (PROTOCOL.md §2.7). One local user owns everything, so both access scopes see
  // the same runs and sessions. Lists are in creation order (stable offsets while new items arrive),
  // except user checkpoints, which the protocol lists newest first.

  /** `GET training_runs`: runs, optionally of one project (the project of the run's session). */
  listTrainingRuns(page: PageRequest, _scope: AccessScope, projectId: string | undefined): unknown {
    const runs = [...this.#runs.values()].filter(
      (run) => projectId === undefined || this.#sessionProjects.get(run.sessionId) === projectId,
    );
    return {
      training_runs: runs
        .slice(page.offset, page.offset + page.limit)
        .map((run) => this.#trainingRunJson(run)),
      cursor: { offset: page.offset, limit: page.limit, total_count: runs.length },
    };
  }

  /** `GET training_runs/{id}`. Unloaded runs are still runs: their history stays readable. */
  getTrainingRun(runId: string, _scope: AccessScope): unknown {
    return this.#trainingRunJson(this.#knownRun(runId));
  }

  /** `GET training_runs/{id}/checkpoints`: every live checkpoint of the run, oldest first. */
  listRunCheckpoints(runId: string): unknown {
    this.#knownRun(runId);
    return { checkpoints: this.#liveCheckpoints(runId).map(checkpointJson), cursor: null };
  }

  /** `GET checkpoints`: every live checkpoint of every run, newest first. */
  listUserCheckpoints(page: PageRequest): unknown {
    // Reversed first, so checkpoints saved within the same millisecond still come newest first.
    const all = this.#liveCheckpoints()
      .reverse()
      .sort((a, b) => b.time.getTime() - a.time.getTime());
    return {
      checkpoints: all.slice(page.offset, page.offset + page.limit).map(checkpointJson),
      cursor: { offset: page.offset, limit: page.limit, total_count: all.length },
    };
  }

  /** `DELETE training_runs/{id}/checkpoints/{checkpoint_id}`. */
  deleteCheckpoint(runId: string, checkpointId: string): void {
    const checkpoint = this.#restCheckpoint(runId, checkpointId);
    this.#checkpoints.delete(checkpoint.tinkerPath);
    this.#write(
      (store) => store.delete("checkpoints", checkpoint.tinkerPath),
      `deletion of ${checkpoint.tinkerPath}`,
    );
    this.#audit("checkpoint.deleted", checkpoint);
  }

  /** `POST` / `DELETE …/publish`: 409 when the checkpoint already has the requested visibility. */
  setCheckpointPublic(runId: string, checkpointId: string, visible: boolean): void {
    const checkpoint = this.#restCheckpoint(runId, checkpointId);
    if (checkpoint.public === visible) {
      throw new LocalBackendError(
        "conflict",
        `checkpoint ${checkpoint.tinkerPath} is already ${visible ? "public" : "private"}`,
      );
    }
    checkpoint.public = visible;
    this.#persistCheckpoint(checkpoint);
    this.#audit(visible ? "checkpoint.published" : "checkpoint.unpublished", checkpoint);
  }

  /** `PUT …/ttl`: expire `ttlSeconds` from now, or never (`null`). */
  setCheckpointTtl(runId: string, checkpointId: string, ttlSeconds: number | null): void {
    if (ttlSeconds !== null && !(Number.isInteger(ttlSeconds) && ttlSeconds > 0)) {
      throw new LocalBackendError(
        "invalid",
        `ttl_seconds must be a positive integer or null, got ${ttlSeconds}`,
      );
    }
    const checkpoint = this.#restCheckpoint(runId, checkpointId);
    checkpoint.expiresAt = ttlSeconds === null ? null : new Date(Date.now() + ttlSeconds * 1000);
    this.#persistCheckpoint(checkpoint);
    this.#audit("checkpoint.ttl_set", checkpoint);
  }

  /**
   * `GET …/archive`, answered in the 200 JSON form (`{url, expires}`), which every client and every
   * runtime can read (a 302 is invisible to browser scripts). The URL is `<baseUrl>/archives/<token>`,
   * outside `/api/v1/`: the HMAC-signed, expiring token is the credential, as in a cloud storage
   * signed URL, so it is fetched without an API key (see archive.ts and `checkpointArchiveDownload`).
   */
  async checkpointArchive(runId: string, checkpointId: string, baseUrl: string): Promise<unknown> {
    const checkpoint = this.#restCheckpoint(runId, checkpointId);
    const expiresAt = Date.now() + ARCHIVE_URL_LIFETIME_MS;
    const token = await this.#archiveSigner.sign({
      runId: checkpoint.runId,
      checkpointId: `${checkpoint.kind}/${checkpoint.name}`,
      expiresAt,
    });
    return { url: `${baseUrl}/archives/${token}`, expires: new Date(expiresAt).toISOString() };
  }

  readonly #archiveSigner = new ArchiveUrlSigner();

  /**
   * `GET <base>/archives/<token>`: the checkpoint's tar archive (PEFT adapter, see archive.ts).
   * 403 for a token this backend did not sign, 410 once it expired, 404 if the checkpoint is gone.
   */
  async checkpointArchiveDownload(token: string): Promise<{ bytes: Uint8Array; filename: string }> {
    const check = await this.#archiveSigner.verify(token);
    if (!check.ok) {
      throw check.reason === "expired"
        ? new LocalBackendError("gone", "this archive URL has expired; request a new one")
        : new LocalBackendError("forbidden", "invalid archive URL signature");
    }
    const checkpoint = this.#restCheckpoint(check.grant.runId, check.grant.checkpointId);
    return {
      bytes: buildCheckpointArchive(checkpoint),
      filename: `${checkpoint.runId}_${checkpoint.kind}_${checkpoint.name}.tar`.replace(/[^\w.-]/g, "_"),
    };
  }

  /** `GET sessions`: ids of every session ever created. */
  listSessions(page: PageRequest, _scope: AccessScope): unknown {
    const ids = [...this.#sessions.keys()];
    return { sessions: ids.slice(page.offset, page.offset + page.limit) };
  }

  /** `GET sessions/{id}`: the runs and samplers the session created. */
  getSessionInfo(sessionId: string, _scope: AccessScope): unknown {
    this.#knownSession(sessionId);
    const samplerPrefix = `${sessionId}:sample:`;
    return {
      training_run_ids: [...this.#runs.values()]
        .filter((r) => r.sessionId === sessionId)
        .map((r) => r.modelId),
      sampler_ids: [...this.#samplers.keys()].filter((id) => id.startsWith(samplerPrefix)),
    };
  }

  /** `PUT sessions/{id}/project`. */
  assignSessionProject(sessionId: string, projectId: string): void {
    const session = this.#knownSession(sessionId);
    this.#sessionProjects.set(sessionId, projectId);
    this.#persistSession(session);
  }

  /**
   * `GET sessions/{id}/trace_export`: the first poll starts the export ("pending"), later polls find
   * it ready, with a URL of the trace under `baseUrl` (served by `sessionTrace`).
   */
  async traceExport(sessionId: string, baseUrl: string): Promise<unknown> {
    this.#knownSession(sessionId);
    if (!this.#traceExports.has(sessionId)) {
      this.#traceExports.add(sessionId);
      return { status: "pending" };
    }
    // A signed URL (SDK: "signed URL, about 1 h"): the HMAC token is the credential, so a plain GET
    // without the API key can fetch it, like the archive URLs. Grant kind "trace" never names a checkpoint.
    const token = await this.#archiveSigner.sign({
      runId: sessionId,
      checkpointId: TRACE_GRANT,
      expiresAt: Date.now() + TRACE_URL_LIFETIME_MS,
    });
    return {
      status: "ready",
      url: `${baseUrl}/api/v1/sessions/${encodeURIComponent(sessionId)}/trace?token=${token}`,
    };
  }

  /** True when `token` is an unexpired trace grant this backend signed for `sessionId`. */
  async traceTokenValid(sessionId: string, token: string): Promise<boolean> {
    const check = await this.#archiveSigner.verify(token);
    return check.ok && check.grant.checkpointId === TRACE_GRANT && check.grant.runId === sessionId;
  }

  /**
   * The exported trace: the session's run creations and checkpoint saves as instant events of the
   * Chrome trace format, which Perfetto opens.
   */
  sessionTrace(sessionId: string): unknown {
    this.#knownSession(sessionId);
    const events = this.#derivedAuditEvents().filter(
      (event) => this.#runs.get(event.modelId)?.sessionId === sessionId,
    );
    return {
      traceEvents: events.map((event) => ({
        name: event.event,
        ph: "i",
        s: "p",
        ts: event.timestamp.getTime() * 1000,
        pid: 1,
        tid: 1,
        args: { model_id: event.modelId, tinker_path: event.tinkerPath },
      })),
    };
  }

  /**
   * `GET audit`: one UTC day (`YYYY-MM-DD`) of run creations and checkpoint saves (read from the
   * state) plus the recorded deletes, visibility and TTL changes.
   */
  auditLog(eventType: "all" | "checkpoints", day: string): unknown {
    const entries = [...this.#derivedAuditEvents(), ...this.#auditEvents]
      .filter((event) => event.timestamp.toISOString().slice(0, 10) === day)
      .filter((event) => eventType === "all" || event.event.startsWith("checkpoint."))
      .sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
    return {
      entries: entries.map((event) => ({
        timestamp: event.timestamp.toISOString(),
        event: event.event,
        model_id: event.modelId,
        tinker_path: event.tinkerPath ?? null,
      })),
    };
  }

  /**
   * `GET billing/usage/events`: hourly buckets of checkpoint saves per session and base model in
   * [start, end). Training and sampling tokens are not metered by this backend.
   */
  billingUsage(start: Date, end: Date): unknown {
    const buckets = new Map<string, { bucketStart: number; run: TrainingRun; count: number }>();
    for (const checkpoint of this.#checkpoints.values()) {
      const time = checkpoint.time.getTime();
      const run = this.#runs.get(checkpoint.runId);
      if (!run || time < start.getTime() || time >= end.getTime()) continue;
      const bucketStart = Math.floor(time / HOUR_MS) * HOUR_MS;
      const key = `${bucketStart}|${run.sessionId}|${run.baseModel}`;
      const bucket = buckets.get(key) ?? { bucketStart, run, count: 0 };
      bucket.count++;
      buckets.set(key, bucket);
    }
    const data = [...buckets.values()]
      .sort((a, b) => a.bucketStart - b.bucketStart)
      .map(({ bucketStart, run, count }) => ({
        bucket_start: new Date(bucketStart).toISOString(),
        bucket_end: new Date(bucketStart + HOUR_MS).toISOString(),
        base_model: run.baseModel,
        user_id: LOCAL_USER,
        user_name: LOCAL_USER,
        session_id: run.sessionId,
        project_id: this.#sessionProjects.get(run.sessionId) ?? null,
        event_info: { type: "checkpoint", count },
      }));
    const sessions = Object.fromEntries(
      data.map((event) => [
        event.session_id,
        { user_metadata: this.#sessions.get(event.session_id)?.userMetadata ?? {} },
      ]),
    );
    return { data, sessions };
  }

  #trainingRunJson(run: TrainingRun): unknown {
    const checkpoints = this.#liveCheckpoints(run.modelId);
    const last = (kind: Checkpoint["kind"]) => checkpoints.filter((c) => c.kind === kind).at(-1);
    const lastTraining = last("weights");
    const lastSampler = last("sampler_weights");
    return {
      training_run_id: run.modelId,
      base_model: run.baseModel,
      model_owner: LOCAL_USER,
      is_lora: true,
      corrupted: run.corrupted,
      lora_rank: run.lora.rank,
      last_request_time: run.lastRequestAt.toISOString(),
      last_checkpoint: lastTraining ? checkpointJson(lastTraining) : null,
      last_sampler_checkpoint: lastSampler ? checkpointJson(lastSampler) : null,
      user_metadata: run.userMetadata ?? {},
    };
  }

  /** Checkpoints that have not expired (of one run, or all), oldest first. */
  #liveCheckpoints(runId?: string): Checkpoint[] {
    const now = Date.now();
    return [...this.#checkpoints.values()]
      .filter((c) => runId === undefined || c.runId === runId)
      .filter((c) => c.expiresAt === null || c.expiresAt.getTime() > now)
      .sort((a, b) => a.time.getTime() - b.time.getTime());
  }

  /** A run for the REST endpoints: 404 if unknown, but unloaded runs are found. */
  #knownRun(runId: string): TrainingRun {
    const run = this.#runs.get(runId);
    if (!run) throw new LocalBackendError("not_found", `training run not found: ${runId}`);
    return run;
  }

  /** A checkpoint addressed as the REST endpoints do: run id and `weights/<name>` or `sampler_weights/<name>`. */
  #restCheckpoint(runId: string, checkpointId: string): Checkpoint {
    const [kind, name, ...rest] = checkpointId.split("/");
    if ((kind !== "weights" && kind !== "sampler_weights") || !name || rest.length > 0) {
      throw new LocalBackendError(
        "invalid",
        `invalid checkpoint id "${checkpointId}": expected weights/<name> or sampler_weights/<name>`,
      );
    }
    const path = `tinker://${runId}/${checkpointId}`;
    const checkpoint = this.#checkpoints.get(path);
    if (!checkpoint || (checkpoint.expiresAt !== null && checkpoint.expiresAt.getTime() <= Date.now())) {
      throw new LocalBackendError("not_found", `checkpoint not found: ${path}`);
    }
    return checkpoint;
  }

  #audit(event: string, checkpoint: Checkpoint): void {
    this.#auditEvents.push({
      timestamp: new Date(),
      event,
      modelId: checkpoint.runId,
      tinkerPath: checkpoint.tinkerPath,
    });
  }

  /** Events the state itself records: run creations and the saves of the checkpoints that exist. */
  #derivedAuditEvents(): AuditEvent[] {
    const created = [...this.#runs.values()].map((run) => ({
      timestamp: run.createdAt,
      event: "training_run.created",
      modelId: run.modelId,
    }));
    const saved = [...this.#checkpoints.values()].map((c) => ({
      timestamp: c.time,
      event: "checkpoint.saved",
      modelId: c.runId,
      tinkerPath: c.tinkerPath,
    }));
    return [...created, ...saved];
  }

  /** Runs `job` for a model in seq_id order; a repeated seq_id returns the first request id. */
  /**
   * Runs `job` for a model in seq_id order. A repeated seq_id with the same request is a retry and
   * gets the first request id (so it is applied once); with a different request it is refused.
   */
  #ordered(
    modelId: string,
    seqId: number,
    request: unknown,
    job: (run: TrainingRun) => FutureOutcome,
  ): string {
    const run = this.#run(modelId);
    run.lastRequestAt = new Date();
    const fingerprint = fingerprintOf(request);
    const known = run.queue.submitted(seqId);
    if (known !== undefined) {
      if (known.fingerprint !== fingerprint) {
        throw new LocalBackendError(
          "invalid",
          `seq_id ${seqId} of ${modelId} was already used by a different request; a retry must repeat it exactly`,
        );
      }
      return known.requestId;
    }
    if (seqId < run.queue.nextSeqId) {
      throw new LocalBackendError(
        "invalid",
        `seq_id ${seqId} of ${modelId} is behind the next expected one (${run.queue.nextSeqId})`,
      );
    }
    const requestId = this.futures.create();
    run.queue.submit(seqId, requestId, fingerprint, async () => {
      const outcome = outcomeOf(() => {
        if (run.corrupted) throw new Error(`model ${modelId} is in a corrupted state`);
        this.#options.onApplied(modelId, seqId);
        return job(run);
      });
      // The run's state and next seq_id are durable before anyone learns the result.
      this.#persistRun(run);
      await this.flushWrites();
      this.futures.settle(requestId, outcome);
    });
    return requestId;
  }

  /** Runs `job` after the submission has been answered. */
  #runLater(requestId: string, job: () => FutureOutcome): void {
    setTimeout(async () => {
      const outcome = outcomeOf(job);
      await this.flushWrites();
      this.futures.settle(requestId, outcome);
    }, 0);
  }

  /** A session that may take new work: 404 if unknown or expired. */
  #session(id: string): Session {
    const session = this.#knownSession(id);
    this.#checkNotExpired(session);
    return session;
  }

  /** A session for the REST endpoints: expired sessions stay readable. */
  #knownSession(id: string): Session {
    const session = this.#sessions.get(id);
    if (!session) throw new LocalBackendError("not_found", `session not found: ${id}`);
    return session;
  }

  #checkNotExpired(session: Session | undefined): void {
    if (session && this.#isExpired(session)) {
      throw new LocalBackendError(
        "not_found",
        `session ${session.id} has expired (no heartbeat for over ${this.#options.sessionTtlMs} ms); create a new session`,
      );
    }
  }

  #run(modelId: string): TrainingRun {
    const run = this.#runs.get(modelId);
    if (!run) throw new LocalBackendError("not_found", `model not found: ${modelId}`);
    if (run.unloaded) throw new LocalBackendError("gone", `model ${modelId} was unloaded`);
    this.#checkNotExpired(this.#sessions.get(run.sessionId));
    return run;
  }

  #baseModel(name: string): BaseModel {
    let base = this.#baseModels.get(name);
    if (!base) {
      const listed = this.#options.models;
      const accepted =
        name === BUILTIN_BASE_MODEL || (listed ? listed.includes(name) : this.#options.acceptAnyBaseModel);
      if (!accepted) {
        const served = listed
          ? [BUILTIN_BASE_MODEL, ...listed.filter((m) => m !== BUILTIN_BASE_MODEL)]
          : [BUILTIN_BASE_MODEL];
        throw new EngineError(`unknown base model "${name}"; this backend serves ${served.join(", ")}`);
      }
      base = createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed(name));
      this.#baseModels.set(name, base);
    }
    return base;
  }

  #samplerModel(request: { sampling_session_id?: string; base_model?: string }): InferenceModel {
    if (request.sampling_session_id !== undefined) {
      const sampler = this.#samplers.get(request.sampling_session_id);
      if (!sampler)
        throw new LocalBackendError("not_found", `sampler not found: ${request.sampling_session_id}`);
      this.#checkNotExpired(this.#sessions.get(sampler.sessionId));
      return sampler.model;
    }
    if (request.base_model !== undefined) return createInferenceModel(this.#baseModel(request.base_model));
    throw new LocalBackendError("invalid", "asample needs sampling_session_id or base_model");
  }
}

/** Engine errors are the caller's fault ("user"); anything else is ours ("server"). */
function outcomeOf(job: () => FutureOutcome): FutureOutcome {
  try {
    return job();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const category = error instanceof EngineError || error instanceof LocalBackendError ? "user" : "server";
    return { kind: "failed", error: message, category };
  }
}

function samplingSessionId(modelId: string, seqId: number | undefined): string | undefined {
  if (seqId === undefined) return undefined;
  const sessionId = modelId.split(":train:")[0];
  return `${sessionId}:sample:${seqId}`;
}

function modelInputTokens(input: ModelInput, datumIndex: number): number[] {
  const tokens: number[] = [];
  for (const chunk of input.chunks) {
    if (chunk.type !== "encoded_text") {
      throw new EngineError(
        `datum ${datumIndex}: the local model reads text tokens only, not ${chunk.type} chunks`,
      );
    }
    tokens.push(...chunk.tokens);
  }
  return tokens;
}

function lossInputs(datum: Datum): Record<string, number[]> {
  const inputs: Record<string, number[]> = {};
  for (const [key, tensor] of Object.entries(datum.loss_fn_inputs)) inputs[key] = tensor.data;
  return inputs;
}

/** Where a stored item was created among its kind (sessions, runs, checkpoints), for ordering. */
function recordOrder(record: StoredRecord): number {
  const ordinal = (record.meta as { ordinal?: unknown } | null)?.ordinal;
  return typeof ordinal === "number" ? ordinal : 0;
}

function validDate(text: string): Date {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new Error(`invalid time ${text}`);
  return date;
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

/** Checkpoint names become one path segment of a tinker:// path, so they cannot contain `/`. */
function checkCheckpointName(name: string): void {
  if (name === "" || name.includes("/")) {
    throw new LocalBackendError(
      "invalid",
      `invalid checkpoint name "${name}": it must be non-empty and contain no "/"`,
    );
  }
}

/** The protocol's Checkpoint (PROTOCOL.md §3.9). */
function checkpointJson(checkpoint: Checkpoint): unknown {
  return {
    checkpoint_id: `${checkpoint.kind}/${checkpoint.name}`,
    checkpoint_type: checkpoint.kind === "weights" ? "training" : "sampler",
    time: checkpoint.time.toISOString(),
    tinker_path: checkpoint.tinkerPath,
    size_bytes: checkpoint.state.length,
    public: checkpoint.public,
    expires_at: checkpoint.expiresAt?.toISOString() ?? null,
  };
}

/** A compact identity of a request's content, to tell a retry from a conflicting reuse of a seq_id. */
function fingerprintOf(request: unknown): string {
  const text = JSON.stringify(request);
  // The engine's FNV-1a string hash; the length makes a collision between retries even less likely.
  return `${text.length}:${hashSeed(text).toString(16)}`;
}
