/**
 * The protocol core of the local backend: sessions and their expiry, training runs (each with its
 * seq_id queue), samplers, the checkpoints training saves, and futures — the operations behind each
 * training and sampling endpoint. The state lives in state.ts, its storage in persistence.ts, the
 * REST views in rest-views.ts (reached through the delegating methods below, so handler.ts keeps one
 * object to call); the HTTP routing lives in handler.ts, the model maths in engine/.
 */
import { uuid4 } from "../internal/uuid.js";
import { DIMUON_CONFIG_VERSION } from "../wire/endpoints/fields.js";
import { cloneOfSeqId, SAMPLE_EXTRA_DEFAULTS } from "../wire/endpoints/sampling.js";
import type { SessionFinishStatus } from "../wire/endpoints/session.js";
import { datumProvenanceIssues } from "../wire/provenance.js";
import type { Datum, ForwardBackwardOutput, ModelInput, SampleResponse, TensorData } from "../wire/types.js";
import { BaseModels } from "./base-models.js";
import type { CompletionPage } from "./completion-log.js";
import {
  createInferenceModel,
  DEFAULT_MODEL_CONFIG,
  EngineError,
  hashSeed,
  type InferenceModel,
  inspectState,
  type OptimizerFamily,
  type OptimizerSettings,
  type PromptOutputRequest,
  TOKENIZER_ID,
  validatePromptOutputRequest,
} from "./engine/index.js";
import { LocalBackendError } from "./errors.js";
import { ExternalWeights, exportAdapterFiles, packAdapterFiles } from "./external-weights.js";
import { type FutureInfo, type FutureOutcome, type FutureRetention, FutureStore } from "./future-store.js";
import { LivenessClock } from "./liveness-clock.js";
import { Persistence, type StoredFuture } from "./persistence.js";
import { type AccessScope, type AuditEventType, type PageRequest, RestViews } from "./rest-views.js";
import { promptAltTokens, targetIdMatrix, targetLogprobsTensor } from "./sample-outputs.js";
import {
  type BackendState,
  type Checkpoint,
  type CheckpointKind,
  createBackendState,
  holdsEngineState,
  knownRun,
  knownSession,
  registerRun,
  type Sampler,
  type Session,
  type TrainingRun,
} from "./state.js";
import { defaultWarning, messageOf, type Store } from "./store.js";
import { runInSlices } from "./time-slices.js";

export { BUILTIN_BASE_MODEL } from "./base-models.js";
export type { AccessScope, PageRequest } from "./rest-views.js";
export type { Checkpoint } from "./state.js";

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
  /** How long settled futures are kept (future-store.ts; defaults: 5 min after delivery, else 1 h). */
  futureRetention?: FutureRetention;
}

/** Default session lifetime without a heartbeat. */
export const DEFAULT_SESSION_TTL_MS = 10 * 60_000;

/** An `asample` request after the route's defaults (PROTOCOL.md §2.6.1, §P2). */
export interface SampleRequest {
  sampling_session_id?: string;
  base_model?: string;
  /** Places the request in its clone's completion log (§P3, §F1); absent = the original client. */
  seq_id?: number;
  num_samples: number;
  prompt: ModelInput;
  sampling_params: Record<string, unknown>;
  prompt_logprobs: boolean;
  topk_prompt_logprobs: number;
  topk_sample_logprobs?: number;
  target_prompt_logprobs?: TensorData;
  prompt_alt_tokens_k?: number;
}

export interface LoraRequest {
  rank: number;
  seed?: number;
  train_unembed?: boolean;
  train_mlp?: boolean;
  train_attn?: boolean;
}

export class LocalBackend {
  readonly futures: FutureStore;
  /** The REST endpoints' views of the state; the methods under "REST endpoints" below delegate to it. */
  readonly rest: RestViews;
  /** External (PEFT) weights: their signed download URLs and uploads (§W2, §W4). */
  readonly externalWeights: ExternalWeights;
  readonly #onApplied: (modelId: string, seqId: number) => void;
  readonly #sessionTtlMs: number;
  readonly #state: BackendState = createBackendState();
  readonly #models: BaseModels;
  readonly #persistence: Persistence;
  readonly #onWarning: (message: string) => void;
  /** The last clone counter handed out per sampler by join_sampling_session (§P3); 0 = the original. */
  readonly #cloneCounters = new Map<string, number>();
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /**
   * Set while a journaled call is replayed after a restart (see #replay): the future it creates
   * takes its old request id, and its saves may find the checkpoint they wrote before the restart.
   */
  #replaying: { id: string; submittedAt: number } | undefined;
  /** Session expiry's clock (monotonic, stopped during event-loop stalls) and each session's last beat on it. */
  readonly #clock = new LivenessClock();
  readonly #lastBeat = new WeakMap<Session, number>();
  /** Inference models built from checkpoints for OpenAI-compatible requests, per stored checkpoint. */
  readonly #checkpointModels = new WeakMap<Checkpoint, InferenceModel>();
  /** The jobs of #runLater, in order. */
  #jobLane: Promise<void> = Promise.resolve();

  constructor(options: LocalBackendOptions = {}) {
    this.#onApplied = options.onApplied ?? (() => {});
    this.#sessionTtlMs = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
    if (!(this.#sessionTtlMs > 0)) throw new Error("sessionTtlMs must be positive");
    this.#models = new BaseModels(options.models, options.acceptAnyBaseModel ?? true);
    this.#onWarning = options.onWarning ?? defaultWarning;
    this.#persistence = new Persistence(this.#state, this.#models, this.#onWarning);
    this.futures = new FutureStore({
      ...options.futureRetention,
      onEvict: (id) => this.#persistence.forgetFuture(id),
    });
    this.rest = new RestViews(this.#state, this.#persistence);
    this.externalWeights = new ExternalWeights(this.#state, this.#persistence, this.#models);
  }

  /**
   * Starts the expiry sweep once there is a session. Expiry is checked on every access anyway; the
   * sweep marks expired sessions (and persists that). Unref'd: it never keeps a process alive.
   */
  #startSweep(): void {
    if (this.#sweepTimer !== undefined || this.#closed) return;
    this.#clock.start();
    this.#sweepTimer = setInterval(
      () => this.#expireSessions(),
      Math.min(60_000, Math.max(10, this.#sessionTtlMs / 2)),
    );
    (this.#sweepTimer as { unref?: () => void }).unref?.();
  }

  /** Stops the expiry timer and waits for pending store writes. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#clock.stop();
    await this.#persistence.close();
  }

  /**
   * Attaches a store and loads what it holds (see persistence.ts). Damaged or inconsistent items
   * are skipped with a warning. Call once, before serving requests.
   */
  async attachStore(store: Store): Promise<void> {
    const futures = await this.#persistence.attach(store);
    this.#restoreFutures(futures);
    // Restored sessions expire like new ones.
    if (this.#state.sessions.size > 0) this.#startSweep();
  }

  /** Resolves when every store write started so far is durable (or has failed with a warning). */
  async flushWrites(): Promise<void> {
    await this.#persistence.flush();
  }

  /** Marks the sessions whose heartbeats stopped as expired. */
  #expireSessions(): void {
    for (const session of this.#state.sessions.values()) {
      if (!session.expired && this.#isExpired(session)) {
        session.expired = true;
        this.#persistence.persistSession(session);
      }
    }
  }

  #isExpired(session: Session): boolean {
    if (session.expired) return true;
    const now = this.#clock.now();
    // A session restored from a store has had no beat on this clock yet: its TTL starts now.
    const last = this.#lastBeat.get(session) ?? this.#beat(session, now);
    return now - last > this.#sessionTtlMs;
  }

  #beat(session: Session, now = this.#clock.now()): number {
    session.lastHeartbeatAt = Date.now();
    this.#lastBeat.set(session, now);
    return now;
  }

  /**
   * Test hook: flags a run as corrupted (`TrainingRun.corrupted`, PROTOCOL.md §3.9), as the service
   * does when a model's state is lost; its later training operations fail with a server error.
   */
  markCorrupted(modelId: string, corrupted = true): void {
    const run = knownRun(this.#state, modelId);
    run.corrupted = corrupted;
    this.#persistence.persistRun(run);
  }

  /** `get_server_capabilities`; every local model can be trained and sampled (§R4). */
  capabilities(): {
    supported_models: {
      model_name: string;
      max_context_length: number;
      trainable: boolean;
      sampleable: boolean;
    }[];
  } {
    return {
      supported_models: this.#models.supported().map((name) => ({
        model_name: name,
        max_context_length: DEFAULT_MODEL_CONFIG.maxSeqLen,
        trainable: true,
        sampleable: true,
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
    this.#state.sessions.set(id, session);
    this.#startSweep();
    this.#beat(session);
    if (options.projectId !== undefined) this.#state.sessionProjects.set(id, options.projectId);
    this.#persistence.persistSession(session);
    return id;
  }

  heartbeat(sessionId: string): void {
    this.#beat(this.#session(sessionId));
  }

  /**
   * `sessions/{id}/finish` (PROTOCOL.md §S1): the session becomes terminal. The first reason is kept
   * (a later finish changes nothing and succeeds again); the session's runs are released, so every
   * later call that would give it work answers 410, while work submitted before completes and the
   * REST views keep showing it all.
   */
  finishSession(sessionId: string, reason: SessionFinishStatus, detail: string | null): void {
    const session = knownSession(this.#state, sessionId);
    if (session.finished) return;
    session.finished = { reason, detail, at: new Date() };
    this.#persistence.persistSession(session);
    for (const run of this.#state.runs.values()) {
      if (run.sessionId !== sessionId || run.unloaded) continue;
      run.unloaded = true;
      this.#persistence.persistRun(run);
    }
  }

  /**
   * create_model: a future whose result is the model id `<session>:train:<model_seq_id>`. The
   * run's optimizer family is fixed here (§O1).
   */
  createModel(
    sessionId: string,
    modelSeqId: number,
    baseModel: string,
    lora: LoraRequest,
    userMetadata?: Record<string, string>,
    optimizer: OptimizerFamily = "adamw",
  ): string {
    this.#session(sessionId);
    const requestId = this.#newFuture();
    const modelId = `${sessionId}:train:${modelSeqId}`;
    const journal = this.#journal(
      requestId,
      {},
      {
        op: "createModel",
        args: [sessionId, modelSeqId, baseModel, lora, userMetadata, optimizer],
      },
    );
    this.#runLater(requestId, journal, () => {
      // A repeated create (a retried submission) is the same model.
      if (!this.#state.runs.has(modelId)) {
        const settings = {
          rank: lora.rank,
          trainAttn: lora.train_attn ?? true,
          trainMlp: lora.train_mlp ?? true,
          trainUnembed: lora.train_unembed ?? true,
        };
        if (!settings.trainAttn && !settings.trainMlp && !settings.trainUnembed) {
          throw new EngineError("at least one of train_attn, train_mlp, train_unembed must be true");
        }
        const model = this.#models.create(baseModel, settings, lora.seed ?? 0, optimizer);
        this.#persistence.persistRun(
          registerRun(this.#state, { modelId, sessionId, baseModel, lora: settings, userMetadata, model }),
        );
      }
      return { kind: "json", body: { model_id: modelId, type: "create_model" } };
    });
    return requestId;
  }

  /**
   * save_weights (`save_state`): training state with optimizer at `tinker://<run>/weights/<name>`;
   * an overwrite replaces the checkpoint with its metadata as a whole (§W1).
   */
  saveWeights(
    modelId: string,
    seqId: number,
    name: string,
    ttlSeconds: number | undefined,
    overwrite: boolean,
    userMetadata?: Record<string, string>,
  ): string {
    checkCheckpointName(name);
    const request = { op: "save_weights", name, ttlSeconds, overwrite, userMetadata };
    const call: JournaledCall = {
      op: "saveWeights",
      args: [modelId, seqId, name, ttlSeconds, overwrite, userMetadata],
    };
    return this.#ordered(modelId, seqId, request, call, (run, replayedSince) => {
      const path = `tinker://${modelId}/weights/${name}`;
      if (this.#existsFromBefore(path, replayedSince) && !overwrite) {
        throw new EngineError(`checkpoint ${path} already exists; pass overwrite to replace it`);
      }
      const state = run.model.exportState({ withOptimizer: true });
      this.#storeCheckpoint(run, "weights", name, state, ttlSeconds, userMetadata);
      return { kind: "json", body: { path, type: "save_weights" } };
    });
  }

  /**
   * load_weights into an existing run (`load_state`, `load_state_with_optimizer`). Optimizer state
   * of another family (§O1) fails the load's future ("user") when it runs — like a family mismatch
   * of optim_step, it takes its seq_id so the operations numbered after it are not left waiting.
   */
  loadWeights(modelId: string, seqId: number, path: string, withOptimizer: boolean): string {
    const call: JournaledCall = { op: "loadWeights", args: [modelId, seqId, path, withOptimizer] };
    return this.#ordered(modelId, seqId, { op: "load_weights", path, withOptimizer }, call, (run) => {
      run.model.importState(this.#trainingCheckpoint(path).state, { withOptimizer });
      return { kind: "json", body: { path, model_id: modelId, type: "load_weights" } };
    });
  }

  /**
   * load_weights that creates the run (the `create_model_via_load_weights` flow): the LoRA
   * configuration comes from the checkpoint; the model id is `<session>:train:<model_seq_id>`.
   * The run's optimizer family (§O1, §O4) is `optimizerConfig`'s; `null` (and, with the optimizer
   * state, an absent one) means the checkpoint's; absent without it means AdamW (clients before
   * 0.29.1). Loading optimizer state of another family → 400.
   */
  createModelFromCheckpoint(
    sessionId: string,
    modelSeqId: number,
    path: string,
    withOptimizer: boolean,
    baseModelOverride: string | undefined,
    userMetadata: Record<string, string> | undefined,
    optimizerConfig?: { type: OptimizerFamily } | null,
  ): string {
    this.#session(sessionId);
    const known = this.#state.checkpoints.get(path);
    if (known?.kind === "weights") loadFamily(known, withOptimizer, optimizerConfig);
    const requestId = this.#newFuture();
    const modelId = `${sessionId}:train:${modelSeqId}`;
    const journal = this.#journal(
      requestId,
      {},
      {
        op: "createModelFromCheckpoint",
        args: [sessionId, modelSeqId, path, withOptimizer, baseModelOverride, userMetadata, optimizerConfig],
      },
    );
    this.#runLater(requestId, journal, () => {
      if (!this.#state.runs.has(modelId)) {
        const checkpoint = this.#trainingCheckpoint(path);
        const baseModel = baseModelOverride ?? checkpoint.baseModel;
        const model = this.#models.fromState(
          baseModel,
          checkpoint.lora,
          checkpoint.state,
          withOptimizer,
          loadFamily(checkpoint, withOptimizer, optimizerConfig),
        );
        this.#persistence.persistRun(
          registerRun(this.#state, {
            modelId,
            sessionId,
            baseModel,
            lora: checkpoint.lora,
            userMetadata,
            model,
          }),
        );
      }
      return { kind: "json", body: { path, model_id: modelId, type: "load_weights" } };
    });
    return requestId;
  }

  /**
   * weights_info: what a client needs to rebuild a LoRA run from a checkpoint, with the optimizer
   * family its state records (§O4; sampler checkpoints record their run's). External adapters
   * hold no optimizer, so theirs is left out.
   */
  weightsInfo(path: string): unknown {
    const checkpoint = this.#state.checkpoints.get(path);
    if (!checkpoint) throw new LocalBackendError("not_found", `checkpoint not found: ${path}`);
    return {
      base_model: checkpoint.baseModel,
      ...(holdsEngineState(checkpoint)
        ? { optimizer_config: optimizerConfigOf(inspectState(checkpoint.state).optimizer) }
        : {}),
      is_lora: true,
      lora_rank: checkpoint.lora.rank,
      train_unembed: checkpoint.lora.trainUnembed,
      train_mlp: checkpoint.lora.trainMlp,
      train_attn: checkpoint.lora.trainAttn,
    };
  }

  /**
   * copy_weights (§S3, direct): the checkpoint at `sourcePath`, either kind, copied under the same
   * kind and name into a new run `<session>:train:<model_seq_id>` that refuses training. The
   * stored bytes are shared, not duplicated. A repeated copy (a retried call) answers the same path.
   */
  copyWeights(
    sessionId: string,
    modelSeqId: number,
    sourcePath: string,
    ttlSeconds: number | undefined,
  ): { tinker_path: string } {
    this.#session(sessionId);
    const source = this.#state.checkpoints.get(sourcePath);
    if (!source || (source.expiresAt !== null && source.expiresAt.getTime() <= Date.now())) {
      throw new LocalBackendError("not_found", `checkpoint not found: ${sourcePath}`);
    }
    const modelId = `${sessionId}:train:${modelSeqId}`;
    const tinkerPath = `tinker://${modelId}/${source.kind}/${source.name}`;
    const existing = this.#state.runs.get(modelId);
    if (existing) {
      if (!existing.trainable && this.#state.checkpoints.has(tinkerPath)) return { tinker_path: tinkerPath };
      throw new LocalBackendError(
        "invalid",
        `model_seq_id ${modelSeqId} of ${sessionId} is already used by ${modelId}`,
      );
    }
    const optimizer = holdsEngineState(source) ? inspectState(source.state).optimizer : "adamw";
    const run = registerRun(this.#state, {
      modelId,
      sessionId,
      baseModel: source.baseModel,
      lora: source.lora,
      userMetadata: undefined,
      model: this.#models.create(source.baseModel, source.lora, 0, optimizer),
      trainable: false,
    });
    this.#persistence.persistRun(run);
    const copy = this.#storeCheckpoint(
      run,
      source.kind,
      source.name,
      source.state,
      ttlSeconds,
      source.userMetadata,
    );
    return { tinker_path: copy.tinkerPath };
  }

  /** unload_model: frees the run's weights; later requests to it fail. */
  unloadModel(modelId: string): string {
    const run = this.#run(modelId);
    const requestId = this.#newFuture();
    const journal = this.#journal(requestId, {}, { op: "unloadModel", args: [modelId] });
    this.#runLater(requestId, journal, () => {
      run.unloaded = true;
      this.#persistence.persistRun(run);
      return { kind: "json", body: { model_id: modelId, type: "unload_model" } };
    });
    return requestId;
  }

  #storeCheckpoint(
    run: TrainingRun,
    kind: CheckpointKind,
    name: string,
    state: Uint8Array,
    ttlSeconds: number | undefined,
    userMetadata: Record<string, string> | undefined,
    time = new Date(),
  ): Checkpoint {
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
      userMetadata,
    };
    this.#state.checkpoints.set(checkpoint.tinkerPath, checkpoint);
    this.#persistence.persistCheckpoint(checkpoint);
    return checkpoint;
  }

  #trainingCheckpoint(path: string): Checkpoint {
    const checkpoint = this.#state.checkpoints.get(path);
    if (!checkpoint) throw new EngineError(`checkpoint not found: ${path}`);
    if (checkpoint.kind !== "weights") {
      const holds = checkpoint.kind === "sampler_weights" ? "sampler weights" : "an external (PEFT) adapter";
      throw new EngineError(`${path} holds ${holds}; load a training checkpoint (tinker://…/weights/…)`);
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
    checkProvenance(data);
    const request = { op: "forward_backward", data, lossFn, lossFnConfig, forwardOnly };
    const call: JournaledCall = {
      op: "forwardBackward",
      args: [modelId, seqId, data, lossFn, lossFnConfig, forwardOnly],
    };
    return this.#ordered(modelId, seqId, request, call, (run) => {
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
      return { kind: "json", body: output, message: "ForwardBackwardOutput" };
    });
  }

  /**
   * optim_step with the settings of one optimizer family. A family other than the run's (§O1) fails
   * the step's future ("user"): it is accepted first, so its seq_id is used and the operations the
   * client numbered after it still run — official clients number every operation at call time, and
   * a refused submission would leave a gap the run waits on forever.
   */
  optimStep(modelId: string, seqId: number, settings: OptimizerSettings): string {
    const call: JournaledCall = { op: "optimStep", args: [modelId, seqId, settings] };
    return this.#ordered(modelId, seqId, { op: "optim_step", settings }, call, (run) => {
      const metrics = run.model.optimStep(settings);
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
    userMetadata?: Record<string, string>,
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
    const request = { op: "save_weights_for_sampler", name, ttlSeconds, userMetadata };
    const call: JournaledCall = {
      op: "saveWeightsForSampler",
      args: [modelId, seqId, name, samplingSessionSeqId, ttlSeconds, userMetadata],
    };
    return this.#ordered(modelId, seqId, request, call, (run) => {
      if (name !== undefined) {
        const state = run.model.exportState({ withOptimizer: false });
        const checkpoint = this.#storeCheckpoint(
          run,
          "sampler_weights",
          name,
          state,
          ttlSeconds,
          userMetadata,
        );
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
      if (this.#persistence.attached) sampler.state = run.model.exportState({ withOptimizer: false });
      this.#state.samplers.set(id, sampler);
      this.#persistence.persistSampler(sampler);
      return { kind: "json", body: { sampling_session_id: id, type: "save_weights_for_sampler" } };
    });
  }

  /**
   * save_weights_external (§W2): the run's adapter as Hugging Face PEFT files at
   * `tinker://<run>/external_weights/<name>` (see external-weights.ts). An existing name is refused.
   */
  saveWeightsExternal(modelId: string, seqId: number, name: string, ttlSeconds: number | undefined): string {
    checkCheckpointName(name);
    const call: JournaledCall = { op: "saveWeightsExternal", args: [modelId, seqId, name, ttlSeconds] };
    const request = { op: "save_weights_external", name, ttlSeconds };
    return this.#ordered(modelId, seqId, request, call, (run, replayedSince) => {
      const path = `tinker://${modelId}/external_weights/${name}`;
      if (this.#existsFromBefore(path, replayedSince))
        throw new EngineError(`checkpoint ${path} already exists`);
      const time = new Date();
      const files = exportAdapterFiles(run.model.exportState({ withOptimizer: false }), run.baseModel);
      this.#storeCheckpoint(
        run,
        "external_weights",
        name,
        packAdapterFiles(files, time),
        ttlSeconds,
        undefined,
        time,
      );
      return { kind: "json", body: { path, type: "save_weights_external" } };
    });
  }

  createSamplingSession(sessionId: string, seqId: number, baseModel?: string, modelPath?: string): string {
    this.#session(sessionId);
    const id = `${sessionId}:sample:${seqId}`;
    let sampler: Sampler;
    if (modelPath !== undefined) {
      const checkpoint = this.#state.checkpoints.get(modelPath);
      if (!checkpoint) throw new LocalBackendError("not_found", `checkpoint not found: ${modelPath}`);
      if (!holdsEngineState(checkpoint)) {
        throw new LocalBackendError(
          "invalid",
          `${modelPath} is an external (PEFT) adapter; sample from sampler or training weights`,
        );
      }
      const model = this.#models.fromState(checkpoint.baseModel, checkpoint.lora, checkpoint.state, false);
      sampler = { id, sessionId, baseModel: checkpoint.baseModel, modelPath, model: model.snapshot() };
    } else if (baseModel !== undefined) {
      sampler = {
        id,
        sessionId,
        baseModel,
        modelPath: null,
        model: createInferenceModel(this.#models.get(baseModel)),
      };
    } else {
      throw new LocalBackendError("invalid", "create_sampling_session needs base_model or model_path");
    }
    this.#state.samplers.set(id, sampler);
    this.#persistence.persistSampler(sampler);
    return id;
  }

  /**
   * The weights an OpenAI-compatible request names (src/local/oai): a base model, or the engine
   * state of a sampler (or training) checkpoint on the base model it was trained on. With both,
   * the base model must be the checkpoint's. `baseModel` is given without a `:peft:` suffix.
   * Not found: an unknown checkpoint, or a base model this backend does not serve.
   */
  inferenceModel(spec: { baseModel?: string; checkpoint?: string }): {
    baseModel: string;
    model: InferenceModel;
  } {
    if (spec.checkpoint === undefined) {
      const name = spec.baseModel ?? "";
      let base: ReturnType<BaseModels["get"]>;
      try {
        base = this.#models.get(name);
      } catch (error) {
        throw new LocalBackendError("not_found", messageOf(error));
      }
      return { baseModel: name, model: createInferenceModel(base) };
    }
    const checkpoint = this.#state.checkpoints.get(spec.checkpoint);
    if (!checkpoint) throw new LocalBackendError("not_found", `checkpoint not found: ${spec.checkpoint}`);
    if (!holdsEngineState(checkpoint)) {
      throw new LocalBackendError(
        "invalid",
        `${spec.checkpoint} is an external (PEFT) adapter; sample from sampler or training weights`,
      );
    }
    if (spec.baseModel !== undefined && spec.baseModel !== checkpoint.baseModel) {
      throw new LocalBackendError(
        "invalid",
        `${spec.checkpoint} was trained on ${checkpoint.baseModel}, not ${spec.baseModel}`,
      );
    }
    let model = this.#checkpointModels.get(checkpoint);
    if (!model) {
      model = this.#models
        .fromState(checkpoint.baseModel, checkpoint.lora, checkpoint.state, false)
        .snapshot();
      this.#checkpointModels.set(checkpoint, model);
    }
    return { baseModel: checkpoint.baseModel, model };
  }

  /**
   * Runs `job` on the lane of the sample and training jobs, after every job submitted before it, so
   * that work started outside the futures (a streamed completion) takes its turn like a sample.
   */
  runOnJobLane<T>(job: () => Promise<T>): Promise<T> {
    const turn = this.#jobLane.then(job);
    this.#jobLane = turn.then(
      () => {},
      () => {},
    );
    return turn;
  }

  getSampler(id: string): unknown {
    const sampler = this.#state.samplers.get(id);
    if (!sampler) throw new LocalBackendError("not_found", `sampler not found: ${id}`);
    return { sampler_id: id, base_model: sampler.baseModel, model_path: sampler.modelPath };
  }

  /**
   * asample: a future whose result is the SampleResponse, plus one sequence id per sample (§P1),
   * built from the request id so that they are unique. The prompt outputs asked for (§P2) are
   * checked here, so bad ones are a 400 rather than a failed future; the sample and every output
   * then come from one prefill.
   */
  sample(request: SampleRequest): { requestId: string; sequenceIds: string[] } {
    const model = this.#samplerModel(request);
    const outputs = checkedPromptOutputs(request, model);
    const samplerId = request.sampling_session_id;
    const info: FutureInfo = {
      type: "Sample",
      group:
        samplerId === undefined ? undefined : completionGroup(samplerId, cloneOfSeqId(request.seq_id ?? 0)),
    };
    const requestId = this.#newFuture(info);
    // Journaled by id only: after a restart its poll is answered 410 and the client submits it again.
    this.#journal(requestId, info, undefined);
    this.#runLater(requestId, undefined, async () => {
      const prompt = modelInputTokens(request.prompt, 0);
      const params = request.sampling_params;
      const stop = params.stop;
      // In slices, so that heartbeats and polls are answered while a large request runs.
      const steps = model.sampleAndScoreSteps(
        prompt,
        {
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
          topkSampleLogprobs: request.topk_sample_logprobs ?? SAMPLE_EXTRA_DEFAULTS.topk_sample_logprobs,
        },
        outputs,
      );
      const result = await runInSlices(steps, () => this.futures.isSettled(requestId));
      // Cancelled meanwhile: the future already has its outcome.
      if (result === undefined) return { kind: "failed", error: "cancelled", category: "user" };
      const response: SampleResponse = {
        sequences: result.sequences.map((s) => ({
          stop_reason: s.stopReason,
          tokens: s.tokens,
          logprobs: s.logprobs,
          ...(s.topk ? { topk_sampled_logprobs: s.topk } : {}),
        })),
        prompt_cache_hit_tokens: 0,
      };
      const scored = result.prompt;
      if (scored.logprobs) response.prompt_logprobs = scored.logprobs;
      if (scored.topk) response.topk_prompt_logprobs = scored.topk;
      if (scored.targetLogprobs && request.target_prompt_logprobs) {
        response.target_prompt_logprobs = targetLogprobsTensor(
          request.target_prompt_logprobs,
          scored.targetLogprobs,
        );
      }
      if (scored.altTokens) response.prompt_alt_tokens = promptAltTokens(scored.altTokens);
      return { kind: "json", body: { ...response, type: "sample" }, message: "SampleResponse" };
    });
    const sequenceIds = Array.from({ length: request.num_samples }, (_, i) => `${requestId}:${i}`);
    return { requestId, sequenceIds };
  }

  /**
   * join_sampling_session (§P3): the next clone counter of a sampler, from 1 (the original client is
   * 0). Counters live as long as this backend (they are not stored).
   */
  joinSamplingSession(samplerId: string): number {
    this.#liveSampler(samplerId);
    const counter = (this.#cloneCounters.get(samplerId) ?? 0) + 1;
    this.#cloneCounters.set(samplerId, counter);
    return counter;
  }

  /**
   * retrieve_futures (§F1): the completions of one clone's sample futures after `prevCursor`, held
   * up to `holdMs` until there is one.
   */
  retrieveFutures(
    samplerId: string,
    cloneId: number,
    prevCursor: number,
    holdMs: number,
    signal?: AbortSignal,
  ): Promise<CompletionPage> {
    this.#liveSampler(samplerId);
    return this.futures.completionsAfter(completionGroup(samplerId, cloneId), prevCursor, holdMs, signal);
  }

  /**
   * cancel_future (§F2): a sample that has not finished fails as cancelled (and its work is
   * skipped if it has not started); a finished one is left as it is. Only samples can be cancelled.
   */
  cancelFuture(requestId: string): void {
    const info = this.futures.info(requestId);
    if (info === undefined) throw new LocalBackendError("not_found", `unknown request_id ${requestId}`);
    if (info.type !== "Sample") {
      throw new LocalBackendError(
        "invalid",
        `request ${requestId} is not a sample; only sample futures can be cancelled`,
      );
    }
    this.futures.settle(requestId, {
      kind: "failed",
      error: `request ${requestId} was cancelled`,
      category: "user",
    });
  }

  // REST endpoints (PROTOCOL.md §2.7), answered by rest-views.ts; documented there.

  listTrainingRuns(page: PageRequest, scope: AccessScope, projectId: string | undefined): unknown {
    return this.rest.listTrainingRuns(page, scope, projectId);
  }
  getTrainingRun(runId: string, scope: AccessScope): unknown {
    return this.rest.getTrainingRun(runId, scope);
  }
  listRunCheckpoints(runId: string): unknown {
    return this.rest.listRunCheckpoints(runId);
  }
  listUserCheckpoints(page: PageRequest): unknown {
    return this.rest.listUserCheckpoints(page);
  }
  deleteCheckpoint(runId: string, checkpointId: string): void {
    this.rest.deleteCheckpoint(runId, checkpointId);
  }
  setCheckpointPublic(runId: string, checkpointId: string, visible: boolean): void {
    this.rest.setCheckpointPublic(runId, checkpointId, visible);
  }
  setCheckpointTtl(runId: string, checkpointId: string, ttlSeconds: number | null): void {
    this.rest.setCheckpointTtl(runId, checkpointId, ttlSeconds);
  }
  checkpointArchive(runId: string, checkpointId: string, baseUrl: string): Promise<unknown> {
    return this.rest.checkpointArchive(runId, checkpointId, baseUrl);
  }
  checkpointArchiveDownload(token: string): Promise<{ bytes: Uint8Array; filename: string }> {
    return this.rest.checkpointArchiveDownload(token);
  }
  listSessions(page: PageRequest, scope: AccessScope): unknown {
    return this.rest.listSessions(page, scope);
  }
  getSessionInfo(sessionId: string, scope: AccessScope): unknown {
    return this.rest.getSessionInfo(sessionId, scope);
  }
  assignSessionProject(sessionId: string, projectId: string): void {
    this.rest.assignSessionProject(sessionId, projectId);
  }
  traceExport(sessionId: string, baseUrl: string): Promise<unknown> {
    return this.rest.traceExport(sessionId, baseUrl);
  }
  traceTokenValid(sessionId: string, token: string): Promise<boolean> {
    return this.rest.traceTokenValid(sessionId, token);
  }
  sessionTrace(sessionId: string): unknown {
    return this.rest.sessionTrace(sessionId);
  }
  auditLog(eventType: AuditEventType, day: string): unknown {
    return this.rest.auditLog(eventType, day);
  }
  billingUsage(start: Date, end: Date): unknown {
    return this.rest.billingUsage(start, end);
  }

  /**
   * Runs `job` for a model in seq_id order. A repeated seq_id with the same request is a retry and
   * gets the first request id (so it is applied once); with a different request it is refused.
   */
  #ordered(
    modelId: string,
    seqId: number,
    request: unknown,
    call: JournaledCall,
    job: (run: TrainingRun, replayedSince: number | undefined) => FutureOutcome,
  ): string {
    const run = this.#run(modelId);
    if (!run.trainable) {
      throw new LocalBackendError(
        "invalid",
        `${modelId} only holds a copied or uploaded checkpoint and cannot be trained; create a training client from it instead`,
      );
    }
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
    const replayedSince = this.#replaying?.submittedAt;
    const requestId = this.#newFuture();
    const order = { modelId, seqId, fingerprint };
    const journal = this.#journal(requestId, {}, call, order);
    run.queue.submit(seqId, requestId, fingerprint, async () => {
      // Applied only once its journal entry is durable: should the server die after the run's
      // record has moved past this seq_id, the entry is there to say which request that was.
      await journal?.written;
      const outcome = outcomeOf(() => {
        if (run.corrupted) throw new Error(`model ${modelId} is in a corrupted state`);
        this.#onApplied(modelId, seqId);
        return job(run, replayedSince);
      });
      // The run's state (gradients included), next seq_id and this outcome advance together in
      // one record, durable before anyone learns the result.
      this.#persistence.persistRun(run, { seqId, requestId, outcome });
      await this.flushWrites();
      if (journal) await this.#persistence.persistFuture({ ...journal.entry, call: undefined, outcome });
      this.futures.settle(requestId, outcome);
    });
    return requestId;
  }

  /**
   * Runs `job` after the submission has been answered, unless the future was cancelled by then;
   * a journaled future's outcome is durable before it is settled. Jobs run one after another in
   * submission order (a sliced sample yields the event loop, not its turn), so results complete in
   * the order they were asked for, as when every job was synchronous.
   */
  #runLater(
    requestId: string,
    journal: Journal | undefined,
    job: () => FutureOutcome | Promise<FutureOutcome>,
  ): void {
    const turn = this.#jobLane
      .then(() => new Promise<void>((resolve) => setTimeout(resolve, 0)))
      .then(async (): Promise<FutureOutcome | undefined> => {
        if (this.futures.isSettled(requestId)) return undefined;
        try {
          return await job();
        } catch (error) {
          return failureOf(error);
        }
      });
    this.#jobLane = turn.then(() => {});
    void turn.then(async (outcome) => {
      if (outcome === undefined) return;
      await this.flushWrites();
      if (journal) await this.#persistence.persistFuture({ ...journal.entry, call: undefined, outcome });
      this.futures.settle(requestId, outcome);
    });
  }

  /** A new future, under its old request id while a journaled call is replayed. */
  #newFuture(info: FutureInfo = {}): string {
    return this.futures.create(info, this.#replaying?.id);
  }

  /**
   * Writes a future's journal entry (with a store): what it is and what to call again should the
   * server die before it settles. The submission's answer waits for it (index.ts flushes every
   * write before answering).
   */
  #journal(
    id: string,
    info: FutureInfo,
    call: JournaledCall | undefined,
    order?: StoredFuture["order"],
  ): Journal | undefined {
    if (!this.#persistence.attached) return undefined;
    const entry: StoredFuture = {
      id,
      info,
      ...(order ? { order } : {}),
      ...(call ? { call: storedCall(call) } : {}),
      submittedAt: this.#replaying?.submittedAt ?? Date.now(),
    };
    return { entry, written: this.#persistence.persistFuture(entry) };
  }

  /**
   * After a restart, every stored future: settled ones answer their polls again (and a retried
   * training submission maps to its id); pending ones are resolved from the run's record when it
   * already covers them, else replayed — a training operation re-executes deterministically in
   * seq_id order on the restored state (gradients included), so its result is the same. A sample
   * in flight is not replayed (its result need not be reproducible): its poll answers 410 and the
   * client submits it again.
   */
  #restoreFutures(stored: StoredFuture[]): void {
    const bySeqId = [...stored].sort((a, b) => (a.order?.seqId ?? 0) - (b.order?.seqId ?? 0));
    for (const future of bySeqId) {
      try {
        this.#restoreFuture(future);
      } catch (error) {
        this.#onWarning(`could not restore future ${future.id}: ${messageOf(error)}`);
      }
    }
  }

  #restoreFuture(future: StoredFuture): void {
    const { id, info, order } = future;
    const run = order ? this.#state.runs.get(order.modelId) : undefined;
    const settle = (outcome: FutureOutcome) => {
      if (!this.futures.has(id)) this.futures.create(info, id);
      this.futures.settle(id, outcome);
      if (order && run) run.queue.remember(order.seqId, { requestId: id, fingerprint: order.fingerprint });
    };
    if (future.outcome) {
      settle(future.outcome);
      return;
    }
    if (order && run && order.seqId < run.queue.nextSeqId) {
      // Applied, but the server died before writing the outcome here: the run's record has it.
      const applied = this.#persistence.lastApplied(run);
      const outcome: FutureOutcome =
        applied?.seqId === order.seqId && applied.requestId === id
          ? applied.outcome
          : {
              kind: "failed",
              category: "server",
              error: `seq_id ${order.seqId} of ${order.modelId} was applied before the server restarted, but its result was lost`,
            };
      settle(outcome);
      void this.#persistence.persistFuture({ ...future, call: undefined, outcome });
      return;
    }
    if (future.call === undefined) {
      settle({ kind: "expired", error: `request ${id} was lost when the server restarted; submit it again` });
      return;
    }
    this.#replay(future, future.call as StoredCall);
  }

  /** Calls a journaled operation again under its old request id (see #restoreFutures). */
  #replay(future: StoredFuture, stored: StoredCall): void {
    const { id } = future;
    const fail = (error: string) => {
      const outcome: FutureOutcome = { kind: "failed", error, category: "server" };
      if (!this.futures.has(id)) this.futures.create(future.info, id);
      this.futures.settle(id, outcome);
      void this.#persistence.persistFuture({ ...future, call: undefined, outcome });
    };
    if (!REPLAYABLE_OPS.includes(stored.op)) {
      fail(`request ${id} was lost when the server restarted (unknown operation ${stored.op})`);
      return;
    }
    const args = Array.from({ length: stored.length }, (_, i) => stored.defined[String(i)]);
    // An unload whose run record was written before the restart, but not its outcome.
    if (stored.op === "unloadModel" && this.#state.runs.get(String(args[0]))?.unloaded) {
      const outcome: FutureOutcome = { kind: "json", body: { model_id: args[0], type: "unload_model" } };
      this.futures.create(future.info, id);
      this.futures.settle(id, outcome);
      void this.#persistence.persistFuture({ ...future, call: undefined, outcome });
      return;
    }
    this.#replaying = { id, submittedAt: future.submittedAt };
    try {
      (this[stored.op] as (...args: unknown[]) => unknown)(...args);
    } catch (error) {
      // A check that passed at submission no longer does (e.g. its run's record was damaged).
      fail(`request ${id} was lost when the server restarted: ${messageOf(error)}`);
    } finally {
      this.#replaying = undefined;
    }
  }

  /**
   * Whether a checkpoint exists that an operation must not overwrite: not one that this very
   * operation wrote before the server restarted (a replay finds its own save).
   */
  #existsFromBefore(path: string, replayedSince: number | undefined): boolean {
    const existing = this.#state.checkpoints.get(path);
    if (!existing) return false;
    return replayedSince === undefined || existing.time.getTime() < replayedSince;
  }

  /**
   * A session that may take new work or be kept alive: 404 if unknown or expired, 410 once finished
   * (§S1). Every session-scoped call goes through here.
   */
  #session(id: string): Session {
    const session = knownSession(this.#state, id);
    this.#checkOpen(session);
    return session;
  }

  /** The session of a run or sampler still takes work: not finished (410), not expired (404). */
  #checkOpen(session: Session | undefined): void {
    if (session?.finished) {
      throw new LocalBackendError("gone", `session ${session.id} is finished (${session.finished.reason})`);
    }
    if (session && this.#isExpired(session)) {
      throw new LocalBackendError(
        "not_found",
        `session ${session.id} has expired (no heartbeat for over ${this.#sessionTtlMs} ms); create a new session`,
      );
    }
  }

  #run(modelId: string): TrainingRun {
    const run = this.#state.runs.get(modelId);
    if (!run) throw new LocalBackendError("not_found", `model not found: ${modelId}`);
    const session = this.#state.sessions.get(run.sessionId);
    // A finished session's runs are unloaded too; then the finish is what to report.
    if (run.unloaded && !session?.finished)
      throw new LocalBackendError("gone", `model ${modelId} was unloaded`);
    this.#checkOpen(session);
    return run;
  }

  #samplerModel(request: { sampling_session_id?: string; base_model?: string }): InferenceModel {
    if (request.sampling_session_id !== undefined)
      return this.#liveSampler(request.sampling_session_id).model;
    if (request.base_model !== undefined) return createInferenceModel(this.#models.get(request.base_model));
    throw new LocalBackendError("invalid", "asample needs sampling_session_id or base_model");
  }

  /** A sampler that takes new work: 404 if unknown or its session has expired. */
  #liveSampler(id: string): Sampler {
    const sampler = this.#state.samplers.get(id);
    if (!sampler) throw new LocalBackendError("not_found", `sampler not found: ${id}`);
    this.#checkOpen(this.#state.sessions.get(sampler.sessionId));
    return sampler;
  }
}

/** The backend methods a journaled future is replayed through after a restart. */
const REPLAYABLE_OPS = [
  "createModel",
  "createModelFromCheckpoint",
  "unloadModel",
  "forwardBackward",
  "optimStep",
  "saveWeights",
  "loadWeights",
  "saveWeightsForSampler",
  "saveWeightsExternal",
] as const;
type ReplayableOp = (typeof REPLAYABLE_OPS)[number];

/** A call of a replayable method with its arguments, as submitted. */
type JournaledCall = { [K in ReplayableOp]: { op: K; args: Parameters<LocalBackend[K]> } }[ReplayableOp];

/**
 * A JournaledCall as JSON: the defined arguments by position (JSON would turn an `undefined`
 * argument into `null`, which some methods read differently).
 */
interface StoredCall {
  op: ReplayableOp;
  length: number;
  defined: Record<string, unknown>;
}

function storedCall(call: JournaledCall): StoredCall {
  const defined: Record<string, unknown> = {};
  call.args.forEach((arg, i) => {
    if (arg !== undefined) defined[String(i)] = arg;
  });
  return { op: call.op, length: call.args.length, defined };
}

/** A future's journal entry and the promise of its write. */
interface Journal {
  entry: StoredFuture;
  written: Promise<void>;
}

/** Engine errors are the caller's fault ("user"); anything else is ours ("server"). */
function outcomeOf(job: () => FutureOutcome): FutureOutcome {
  try {
    return job();
  } catch (error) {
    return failureOf(error);
  }
}

/** The failed outcome of a job that threw: the user's doing for engine and domain errors. */
function failureOf(error: unknown): FutureOutcome {
  const message = error instanceof Error ? error.message : String(error);
  const category = error instanceof EngineError || error instanceof LocalBackendError ? "user" : "server";
  return { kind: "failed", error: message, category };
}

/** The completion log of one clone of a sampler (§F1). */
function completionGroup(samplerId: string, cloneId: number): string {
  return `${samplerId}#${cloneId}`;
}

/**
 * The prompt outputs a sample asks for, checked against the prompt and the model before any work:
 * a bad request is the caller's (400).
 */
function checkedPromptOutputs(request: SampleRequest, model: InferenceModel): PromptOutputRequest {
  const outputs: PromptOutputRequest = {
    logprobs: request.prompt_logprobs,
    topK: request.topk_prompt_logprobs,
    altTokensK: request.prompt_alt_tokens_k ?? SAMPLE_EXTRA_DEFAULTS.prompt_alt_tokens_k,
  };
  if (request.target_prompt_logprobs != null)
    outputs.targets = targetIdMatrix(request.target_prompt_logprobs);
  try {
    const promptLength = outputs.targets ? modelInputTokens(request.prompt, 0).length : 0;
    validatePromptOutputRequest(outputs, promptLength, model.vocabSize);
  } catch (error) {
    if (error instanceof EngineError)
      throw new LocalBackendError("invalid", `invalid asample request: ${error.message}`);
    throw error;
  }
  return outputs;
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

/** A compact identity of a request's content, to tell a retry from a conflicting reuse of a seq_id. */
function fingerprintOf(request: unknown): string {
  const text = JSON.stringify(request);
  // The engine's FNV-1a string hash; the length makes a collision between retries even less likely.
  return `${text.length}:${hashSeed(text).toString(16)}`;
}

/** The wire `optimizer_config` of a family (§O1). */
function optimizerConfigOf(family: OptimizerFamily): { type: OptimizerFamily; version?: number } {
  return family === "dimuon" ? { type: family, version: DIMUON_CONFIG_VERSION } : { type: family };
}

/**
 * The optimizer family of a run created from a training checkpoint (§O1, §O4): the requested one,
 * or the checkpoint's for `null` (and for an absent one when its optimizer state is loaded); AdamW
 * for an absent one otherwise. Optimizer state of another family → 400.
 */
function loadFamily(
  checkpoint: Checkpoint,
  withOptimizer: boolean,
  config: { type: OptimizerFamily } | null | undefined,
): OptimizerFamily {
  const saved = inspectState(checkpoint.state).optimizer;
  const family =
    config === null || (config === undefined && withOptimizer) ? saved : (config?.type ?? "adamw");
  if (withOptimizer && family !== saved) {
    throw new LocalBackendError(
      "invalid",
      `${checkpoint.tinkerPath} holds ${saved} optimizer state, which a ${family} run cannot load; ask for optimizer_config ${saved} (or null), or load the weights only`,
    );
  }
  return family;
}

/** Provenance spans must tile their fields (§T3); a broken tiling is refused at submission. */
function checkProvenance(data: readonly Datum[]): void {
  const issues = data.flatMap((datum, i) => {
    if (datum.model_input_spans === undefined && datum.loss_fn_input_spans === undefined) return [];
    const targets = datum.loss_fn_inputs?.["target_tokens"];
    return datumProvenanceIssues(
      datum,
      knownLength(datum.model_input),
      targets === undefined ? undefined : (targets.shape?.[0] ?? targets.data.length),
      `data[${i}]`,
    );
  });
  if (issues.length > 0) {
    throw new LocalBackendError(
      "invalid",
      issues.map((issue) => `${issue.path}: ${issue.message}`).join("; "),
    );
  }
}

/** Tokens of a model input, when every chunk says how many it has. */
function knownLength(input: ModelInput): number | undefined {
  let length = 0;
  for (const chunk of input.chunks) {
    if (chunk.type === "encoded_text") length += chunk.tokens.length;
    else if (chunk.type !== "dmel" && chunk.expected_tokens !== undefined) length += chunk.expected_tokens;
    else return undefined;
  }
  return length;
}
