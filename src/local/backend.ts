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
import { type FutureOutcome, FutureStore } from "./future-store.js";
import { ModelQueue } from "./model-queue.js";
import { HttpError } from "./responses.js";

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
}

interface Session {
  id: string;
  lastHeartbeatAt: number;
  userMetadata: Record<string, string>;
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
  baseModel: string;
  modelPath: string | null;
  model: InferenceModel;
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
  readonly #options: Required<LocalBackendOptions>;
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
    };
  }

  /**
   * Test hook: flags a run as corrupted (`TrainingRun.corrupted`, PROTOCOL.md §3.9), as the service
   * does when a model's state is lost; its later training operations fail with a server error.
   */
  markCorrupted(modelId: string, corrupted = true): void {
    this.#knownRun(modelId).corrupted = corrupted;
  }

  capabilities(): { supported_models: { model_name: string; max_context_length: number }[] } {
    return {
      supported_models: [
        { model_name: BUILTIN_BASE_MODEL, max_context_length: DEFAULT_MODEL_CONFIG.maxSeqLen },
      ],
    };
  }

  createSession(options: { projectId?: string; userMetadata?: Record<string, string> } = {}): string {
    const id = `session-${uuid4()}`;
    this.#sessions.set(id, { id, lastHeartbeatAt: Date.now(), userMetadata: options.userMetadata ?? {} });
    if (options.projectId !== undefined) this.#sessionProjects.set(id, options.projectId);
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
        this.#registerRun(modelId, sessionId, baseModel, settings, userMetadata, model);
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
  ): TrainingRun {
    const now = new Date();
    const run: TrainingRun = {
      modelId,
      sessionId,
      baseModel,
      lora,
      userMetadata,
      model,
      queue: new ModelQueue(1),
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
        const seed = inspectState(checkpoint.state).lora.seed;
        const model = new TrainableModel(this.#baseModel(baseModel), { ...checkpoint.lora, seed });
        model.importState(checkpoint.state, { withOptimizer });
        this.#registerRun(modelId, sessionId, baseModel, checkpoint.lora, userMetadata, model);
      }
      return { kind: "json", body: { path, model_id: modelId, type: "load_weights" } };
    });
    return requestId;
  }

  /** weights_info: what a client needs to rebuild a LoRA run from a checkpoint. */
  weightsInfo(path: string): unknown {
    const checkpoint = this.#checkpoints.get(path);
    if (!checkpoint) throw new HttpError(404, `checkpoint not found: ${path}`);
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
      throw new HttpError(400, "save_weights_for_sampler needs either path or sampling_session_seq_id");
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
      this.#samplers.set(id, { id, baseModel: run.baseModel, modelPath: null, model: run.model.snapshot() });
      return { kind: "json", body: { sampling_session_id: id, type: "save_weights_for_sampler" } };
    });
  }

  createSamplingSession(sessionId: string, seqId: number, baseModel?: string, modelPath?: string): string {
    this.#session(sessionId);
    const id = `${sessionId}:sample:${seqId}`;
    if (modelPath !== undefined) {
      const checkpoint = this.#checkpoints.get(modelPath);
      if (!checkpoint) throw new HttpError(404, `checkpoint not found: ${modelPath}`);
      const model = new TrainableModel(this.#baseModel(checkpoint.baseModel), {
        ...checkpoint.lora,
        seed: inspectState(checkpoint.state).lora.seed,
      });
      model.importState(checkpoint.state, { withOptimizer: false });
      this.#samplers.set(id, { id, baseModel: checkpoint.baseModel, modelPath, model: model.snapshot() });
    } else if (baseModel !== undefined) {
      this.#samplers.set(id, {
        id,
        baseModel,
        modelPath: null,
        model: createInferenceModel(this.#baseModel(baseModel)),
      });
    } else {
      throw new HttpError(400, "create_sampling_session needs base_model or model_path");
    }
    return id;
  }

  getSampler(id: string): unknown {
    const sampler = this.#samplers.get(id);
    if (!sampler) throw new HttpError(404, `sampler not found: ${id}`);
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
    this.#audit("checkpoint.deleted", checkpoint);
  }

  /** `POST` / `DELETE …/publish`: 409 when the checkpoint already has the requested visibility. */
  setCheckpointPublic(runId: string, checkpointId: string, visible: boolean): void {
    const checkpoint = this.#restCheckpoint(runId, checkpointId);
    if (checkpoint.public === visible) {
      throw new HttpError(
        409,
        `checkpoint ${checkpoint.tinkerPath} is already ${visible ? "public" : "private"}`,
      );
    }
    checkpoint.public = visible;
    this.#audit(visible ? "checkpoint.published" : "checkpoint.unpublished", checkpoint);
  }

  /** `PUT …/ttl`: expire `ttlSeconds` from now, or never (`null`). */
  setCheckpointTtl(runId: string, checkpointId: string, ttlSeconds: number | null): void {
    if (ttlSeconds !== null && !(Number.isInteger(ttlSeconds) && ttlSeconds > 0)) {
      throw new HttpError(400, `ttl_seconds must be a positive integer or null, got ${ttlSeconds}`);
    }
    const checkpoint = this.#restCheckpoint(runId, checkpointId);
    checkpoint.expiresAt = ttlSeconds === null ? null : new Date(Date.now() + ttlSeconds * 1000);
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
        ? new HttpError(410, "this archive URL has expired; request a new one")
        : new HttpError(403, "invalid archive URL signature");
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
    this.#session(sessionId);
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
    this.#session(sessionId);
    this.#sessionProjects.set(sessionId, projectId);
  }

  /**
   * `GET sessions/{id}/trace_export`: the first poll starts the export ("pending"), later polls find
   * it ready, with a URL of the trace under `baseUrl` (served by `sessionTrace`).
   */
  traceExport(sessionId: string, baseUrl: string): unknown {
    this.#session(sessionId);
    if (!this.#traceExports.has(sessionId)) {
      this.#traceExports.add(sessionId);
      return { status: "pending" };
    }
    return { status: "ready", url: `${baseUrl}/api/v1/sessions/${sessionId}/trace` };
  }

  /**
   * The exported trace: the session's run creations and checkpoint saves as instant events of the
   * Chrome trace format, which Perfetto opens.
   */
  sessionTrace(sessionId: string): unknown {
    this.#session(sessionId);
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
    if (!run) throw new HttpError(404, `training run not found: ${runId}`);
    return run;
  }

  /** A checkpoint addressed as the REST endpoints do: run id and `weights/<name>` or `sampler_weights/<name>`. */
  #restCheckpoint(runId: string, checkpointId: string): Checkpoint {
    const [kind, name, ...rest] = checkpointId.split("/");
    if ((kind !== "weights" && kind !== "sampler_weights") || !name || rest.length > 0) {
      throw new HttpError(
        400,
        `invalid checkpoint id "${checkpointId}": expected weights/<name> or sampler_weights/<name>`,
      );
    }
    const path = `tinker://${runId}/${checkpointId}`;
    const checkpoint = this.#checkpoints.get(path);
    if (!checkpoint || (checkpoint.expiresAt !== null && checkpoint.expiresAt.getTime() <= Date.now())) {
      throw new HttpError(404, `checkpoint not found: ${path}`);
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
        throw new HttpError(
          400,
          `seq_id ${seqId} of ${modelId} was already used by a different request; a retry must repeat it exactly`,
        );
      }
      return known.requestId;
    }
    if (seqId < run.queue.nextSeqId) {
      throw new HttpError(
        400,
        `seq_id ${seqId} of ${modelId} is behind the next expected one (${run.queue.nextSeqId})`,
      );
    }
    const requestId = this.futures.create();
    run.queue.submit(seqId, requestId, fingerprint, () =>
      this.futures.settle(
        requestId,
        outcomeOf(() => {
          if (run.corrupted) throw new Error(`model ${modelId} is in a corrupted state`);
          this.#options.onApplied(modelId, seqId);
          return job(run);
        }),
      ),
    );
    return requestId;
  }

  /** Runs `job` after the submission has been answered. */
  #runLater(requestId: string, job: () => FutureOutcome): void {
    setTimeout(() => this.futures.settle(requestId, outcomeOf(job)), 0);
  }

  #session(id: string): Session {
    const session = this.#sessions.get(id);
    if (!session) throw new HttpError(404, `session not found: ${id}`);
    return session;
  }

  #run(modelId: string): TrainingRun {
    const run = this.#runs.get(modelId);
    if (!run) throw new HttpError(404, `model not found: ${modelId}`);
    if (run.unloaded) throw new HttpError(410, `model ${modelId} was unloaded`);
    return run;
  }

  #baseModel(name: string): BaseModel {
    let base = this.#baseModels.get(name);
    if (!base) {
      if (name !== BUILTIN_BASE_MODEL && !this.#options.acceptAnyBaseModel) {
        throw new EngineError(`unknown base model "${name}"; this backend serves ${BUILTIN_BASE_MODEL}`);
      }
      base = createBaseModel(DEFAULT_MODEL_CONFIG, hashSeed(name));
      this.#baseModels.set(name, base);
    }
    return base;
  }

  #samplerModel(request: { sampling_session_id?: string; base_model?: string }): InferenceModel {
    if (request.sampling_session_id !== undefined) {
      const sampler = this.#samplers.get(request.sampling_session_id);
      if (!sampler) throw new HttpError(404, `sampler not found: ${request.sampling_session_id}`);
      return sampler.model;
    }
    if (request.base_model !== undefined) return createInferenceModel(this.#baseModel(request.base_model));
    throw new HttpError(400, "asample needs sampling_session_id or base_model");
  }
}

/** Engine errors are the caller's fault ("user"); anything else is ours ("server"). */
function outcomeOf(job: () => FutureOutcome): FutureOutcome {
  try {
    return job();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const category = error instanceof EngineError || error instanceof HttpError ? "user" : "server";
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

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

/** Checkpoint names become one path segment of a tinker:// path, so they cannot contain `/`. */
function checkCheckpointName(name: string): void {
  if (name === "" || name.includes("/")) {
    throw new HttpError(400, `invalid checkpoint name "${name}": it must be non-empty and contain no "/"`);
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
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return `${text.length}:${hash.toString(16)}`;
}
