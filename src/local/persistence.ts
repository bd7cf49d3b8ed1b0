/**
 * Keeps the local backend's state in a Store (docs/LOCAL_BACKEND.md, "Persistence") and loads it
 * back. What is written when:
 *   session: at creation, project assignment, finish and expiry (heartbeat times are not written: a
 *            restarted backend gives every live session a fresh TTL);
 *   run: at creation and after every applied training operation (its weights, optimizer state,
 *        the gradients accumulated since the last optim_step, next seq_id, and the outcome of the
 *        operation just applied — one record, so all of these advance together), unload and
 *        corruption;
 *   checkpoint: at save, publish/TTL changes; its file is removed at delete;
 *   sampler: at creation;
 *   future: at submission, before its request id is answered (the journal: what to replay if the
 *           server dies before the work is done), again with its outcome before a poll can
 *           receive it, and removed when the future is evicted (future-store.ts). Samples are
 *           journaled by id only: one in flight at a restart is answered 410 (resubmit).
 * Every answer that reports such a change (a request id, the future's result, a REST response) is
 * sent only after the write is durable (see flush). The audit log of deletes/visibility changes is
 * not persisted.
 */

import { SESSION_FINISH_STATUSES } from "../wire/endpoints/session.js";
import type { BaseModels } from "./base-models.js";
import {
  createInferenceModel,
  type InferenceModel,
  isOptimizerFamily,
  type TrainableModel,
} from "./engine/index.js";
import { unpackAdapterFiles } from "./external-weights.js";
import type { FutureInfo, FutureOutcome } from "./future-store.js";
import {
  type BackendState,
  type Checkpoint,
  type LoraSettings,
  registerRun,
  type Sampler,
  type Session,
  type SessionFinish,
  type TrainingRun,
} from "./state.js";
import { messageOf, type Store, type StoreCollection, type StoredRecord } from "./store.js";

/** A training operation applied to a run: stored with the run, so its result survives with it. */
export interface AppliedOperation {
  seqId: number;
  requestId: string;
  outcome: FutureOutcome;
}

/** A future as the store keeps it (see the module comment). */
export interface StoredFuture {
  id: string;
  info: FutureInfo;
  /** Of a training operation: its run, seq_id and content fingerprint (a retry maps to this id). */
  order?: { modelId: string; seqId: number; fingerprint: string };
  /** What to call again if the future was pending at a restart (backend.ts's JournaledCall). */
  call?: unknown;
  /** Wall-clock time (ms) of the submission. */
  submittedAt: number;
  outcome?: FutureOutcome;
}

export class Persistence {
  #store: Store | undefined;
  /** Store writes not yet durable; answers wait for them (see flush). */
  readonly #writes = new Set<Promise<void>>();
  /** Creation order of persisted items (sessions, runs, checkpoints), kept across restarts. */
  readonly #ordinals = new WeakMap<object, number>();
  /** The last training operation applied to each run, written with every record of the run. */
  readonly #lastApplied = new WeakMap<TrainingRun, AppliedOperation>();
  #nextOrdinal = 0;

  readonly #state: BackendState;
  readonly #models: BaseModels;
  readonly #onWarning: (message: string) => void;

  constructor(state: BackendState, models: BaseModels, onWarning: (message: string) => void) {
    this.#state = state;
    this.#models = models;
    this.#onWarning = onWarning;
  }

  /** True once a store is attached; without one every write is a no-op. */
  get attached(): boolean {
    return this.#store !== undefined;
  }

  /**
   * Attaches a store and loads what it holds into the state. Damaged or inconsistent items are
   * skipped with a warning. Returns the stored futures (for the backend to restore or replay).
   * Call once, before serving requests.
   */
  async attach(store: Store): Promise<StoredFuture[]> {
    const load = async (collection: StoreCollection, restore: (record: StoredRecord) => void) => {
      // In creation order, as the REST lists are.
      const records = (await store.load(collection)).sort((a, b) => recordOrder(a) - recordOrder(b));
      for (const record of records) {
        try {
          restore(record);
        } catch (error) {
          this.#onWarning(`skipping ${collection} record ${record.key}: ${messageOf(error)}`);
        }
      }
    };
    await load("sessions", (record) => this.#restoreSession(record));
    await load("runs", (record) => this.#restoreRun(record));
    await load("checkpoints", (record) => this.#restoreCheckpoint(record));
    await load("samplers", (record) => this.#restoreSampler(record));
    const futures: StoredFuture[] = [];
    await load("futures", (record) => futures.push(restoreFuture(record)));
    this.#store = store;
    return futures;
  }

  /** The last training operation applied to `run` that the store knows of. */
  lastApplied(run: TrainingRun): AppliedOperation | undefined {
    return this.#lastApplied.get(run);
  }

  /** Resolves when every store write started so far is durable (or has failed with a warning). */
  async flush(): Promise<void> {
    while (this.#writes.size > 0) await Promise.allSettled([...this.#writes]);
  }

  /** Waits for pending writes, then closes the store. */
  async close(): Promise<void> {
    await this.flush();
    await this.#store?.close();
  }

  persistSession(session: Session): void {
    this.#write(
      (store) =>
        store.put("sessions", {
          key: session.id,
          meta: {
            userMetadata: session.userMetadata,
            projectId: this.#state.sessionProjects.get(session.id) ?? null,
            createdAt: session.createdAt.toISOString(),
            expired: session.expired,
            finished: session.finished
              ? { ...session.finished, at: session.finished.at.toISOString() }
              : null,
            ordinal: this.#ordinal(session),
          },
        }),
      `session ${session.id}`,
    );
  }

  /**
   * Writes the run: with `applied`, the operation that just advanced its seq_id, whose outcome is
   * then durable in the same record as the state it produced.
   */
  persistRun(run: TrainingRun, applied?: AppliedOperation): void {
    // Exporting the weights is not free: skip it when nothing would be written.
    if (!this.#store) return;
    if (applied) this.#lastApplied.set(run, applied);
    const state = run.model.exportState({ withOptimizer: true });
    const gradients = exportGradients(run);
    const data = concatBytes(state, gradients);
    const lastApplied = this.#lastApplied.get(run);
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
            trainable: run.trainable,
            optimizer: run.model.optimizer,
            nextSeqId: run.queue.nextSeqId,
            gradientBytes: gradients.length,
            lastApplied: lastApplied ?? null,
            ordinal: this.#ordinal(run),
          },
          data,
        }),
      `training run ${run.modelId}`,
    );
  }

  persistCheckpoint(checkpoint: Checkpoint): void {
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
            userMetadata: checkpoint.userMetadata ?? null,
            ordinal: this.#ordinal(checkpoint),
          },
          data: checkpoint.state,
        }),
      `checkpoint ${checkpoint.tinkerPath}`,
    );
  }

  /** Removes a deleted checkpoint's record. */
  forgetCheckpoint(checkpoint: Checkpoint): void {
    this.#write(
      (store) => store.delete("checkpoints", checkpoint.tinkerPath),
      `deletion of ${checkpoint.tinkerPath}`,
    );
  }

  persistSampler(sampler: Sampler): void {
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

  /**
   * Writes a future (pending with what to replay, or with its outcome); resolves when it is
   * durable (or the write failed with a warning). Without a store, at once.
   */
  persistFuture(future: StoredFuture): Promise<void> {
    const { id, ...meta } = future;
    return this.#write((store) => store.put("futures", { key: id, meta }), `future ${id}`);
  }

  /** Removes an evicted future's record. */
  forgetFuture(id: string): void {
    void this.#write((store) => store.delete("futures", id), `eviction of future ${id}`);
  }

  #write(action: (store: Store) => Promise<void>, what: string): Promise<void> {
    const store = this.#store;
    if (!store) return Promise.resolve();
    const write = action(store).catch((error) =>
      this.#onWarning(`could not persist ${what}: ${messageOf(error)}`),
    );
    this.#writes.add(write);
    void write.finally(() => this.#writes.delete(write));
    return write;
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

  #restoreSession(record: StoredRecord): void {
    const meta = record.meta as {
      userMetadata: Record<string, string>;
      projectId: string | null;
      createdAt: string;
      expired: boolean;
      finished?: { reason: SessionFinish["reason"]; detail: string | null; at: string } | null;
    };
    const session: Session = {
      id: record.key,
      lastHeartbeatAt: Date.now(),
      userMetadata: meta.userMetadata ?? {},
      createdAt: validDate(meta.createdAt),
      expired: meta.expired === true,
    };
    // Records written before §S1 have no `finished`.
    if (meta.finished) {
      if (!SESSION_FINISH_STATUSES.includes(meta.finished.reason)) throw new Error("unknown finish reason");
      session.finished = {
        reason: meta.finished.reason,
        detail: meta.finished.detail ?? null,
        at: validDate(meta.finished.at),
      };
    }
    this.#restoreOrdinal(session, record);
    this.#state.sessions.set(record.key, session);
    if (typeof meta.projectId === "string") this.#state.sessionProjects.set(record.key, meta.projectId);
  }

  #restoreRun(record: StoredRecord): void {
    const meta = record.meta as {
      sessionId: string;
      baseModel: string;
      lora: LoraSettings;
      userMetadata: Record<string, string> | null;
      createdAt: string;
      lastRequestAt: string;
      unloaded: boolean;
      corrupted: boolean;
      /** Absent in records written before copies (§S3) existed: every run was trainable. */
      trainable?: boolean;
      /** The run's optimizer family (§O1); absent in older records, where the state says it. */
      optimizer?: string;
      nextSeqId: number;
      /** Bytes of accumulated gradients after the engine state; absent in older records (none). */
      gradientBytes?: number;
      lastApplied?: AppliedOperation | null;
    };
    if (!record.data) throw new Error("no model state");
    const gradientBytes = meta.gradientBytes ?? 0;
    if (!Number.isInteger(gradientBytes) || gradientBytes < 0 || gradientBytes > record.data.length) {
      throw new Error("bad gradient length");
    }
    const state = record.data.subarray(0, record.data.length - gradientBytes);
    if (!Number.isInteger(meta.nextSeqId)) throw new Error("no next seq_id");
    if (meta.optimizer !== undefined && !isOptimizerFamily(meta.optimizer)) {
      throw new Error(`unknown optimizer ${JSON.stringify(meta.optimizer)}`);
    }
    const model = this.#models.fromState(meta.baseModel, meta.lora, state, true, meta.optimizer);
    importGradients(model, record.data.subarray(record.data.length - gradientBytes));
    const run = registerRun(
      this.#state,
      {
        modelId: record.key,
        sessionId: meta.sessionId,
        baseModel: meta.baseModel,
        lora: meta.lora,
        userMetadata: meta.userMetadata ?? undefined,
        model,
        trainable: meta.trainable !== false,
      },
      meta.nextSeqId,
    );
    run.createdAt = validDate(meta.createdAt);
    run.lastRequestAt = validDate(meta.lastRequestAt);
    run.unloaded = meta.unloaded === true;
    run.corrupted = meta.corrupted === true;
    if (meta.lastApplied) this.#lastApplied.set(run, meta.lastApplied);
    this.#restoreOrdinal(run, record);
  }

  #restoreCheckpoint(record: StoredRecord): void {
    const meta = record.meta as {
      runId: string;
      kind: Checkpoint["kind"];
      name: string;
      baseModel: string;
      lora: LoraSettings;
      time: string;
      expiresAt: string | null;
      public: boolean;
      userMetadata?: Record<string, string> | null;
    };
    if (!record.data) throw new Error("no model state");
    if (meta.kind === "external_weights") {
      // An adapter's files: an archive that does not read is not served.
      unpackAdapterFiles(record.data);
    } else if (meta.kind === "weights" || meta.kind === "sampler_weights") {
      // The engine format validates itself: a state that does not load is not served.
      this.#models.fromState(meta.baseModel, meta.lora, record.data, meta.kind === "weights");
    } else {
      throw new Error("unknown kind");
    }
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
      userMetadata: meta.userMetadata ?? undefined,
    };
    this.#restoreOrdinal(checkpoint, record);
    this.#state.checkpoints.set(record.key, checkpoint);
  }

  #restoreSampler(record: StoredRecord): void {
    const meta = record.meta as {
      sessionId: string;
      baseModel: string;
      modelPath: string | null;
      lora: LoraSettings | null;
    };
    let model: InferenceModel;
    if (meta.modelPath !== null) {
      const checkpoint = this.#state.checkpoints.get(meta.modelPath);
      if (!checkpoint) throw new Error(`its checkpoint ${meta.modelPath} is gone`);
      model = this.#models
        .fromState(checkpoint.baseModel, checkpoint.lora, checkpoint.state, false)
        .snapshot();
    } else if (record.data && meta.lora) {
      model = this.#models.fromState(meta.baseModel, meta.lora, record.data, false).snapshot();
    } else {
      model = createInferenceModel(this.#models.get(meta.baseModel));
    }
    this.#state.samplers.set(record.key, {
      id: record.key,
      sessionId: meta.sessionId,
      baseModel: meta.baseModel,
      modelPath: meta.modelPath,
      model,
      ...(record.data && meta.lora ? { state: record.data, lora: meta.lora } : {}),
    });
  }
}

function restoreFuture(record: StoredRecord): StoredFuture {
  const meta = record.meta as Omit<StoredFuture, "id">;
  if (typeof meta !== "object" || meta === null || typeof meta.info !== "object") {
    throw new Error("not a future");
  }
  return { id: record.key, ...meta };
}

/**
 * The gradients a run has accumulated since its last optim_step (float64 little-endian, in the
 * order of the model's parameters); empty when they are all zero, as after every optim_step.
 */
function exportGradients(run: TrainingRun): Uint8Array {
  const parameters = run.model.parameters();
  if (parameters.every((p) => p.grad.every((g) => g === 0))) return new Uint8Array(0);
  const length = parameters.reduce((sum, p) => sum + p.grad.length, 0);
  const bytes = new Uint8Array(length * 8);
  const view = new DataView(bytes.buffer);
  let offset = 0;
  for (const p of parameters) {
    for (const g of p.grad) {
      view.setFloat64(offset, g, true);
      offset += 8;
    }
  }
  return bytes;
}

/** Restores what exportGradients wrote (nothing: the gradients stay zero). */
function importGradients(model: TrainableModel, bytes: Uint8Array): void {
  if (bytes.length === 0) return;
  const parameters = model.parameters();
  const length = parameters.reduce((sum, p) => sum + p.grad.length, 0);
  if (bytes.length !== length * 8)
    throw new Error(`gradients of ${bytes.length} bytes, expected ${length * 8}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  for (const p of parameters) {
    for (let i = 0; i < p.grad.length; i++) {
      p.grad[i] = view.getFloat64(offset, true);
      offset += 8;
    }
  }
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (b.length === 0) return a;
  const bytes = new Uint8Array(a.length + b.length);
  bytes.set(a, 0);
  bytes.set(b, a.length);
  return bytes;
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
