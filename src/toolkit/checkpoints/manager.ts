/**
 * CheckpointManager: periodic saves with step-encoded names, and retention after each save.
 *
 *   const checkpoints = new CheckpointManager({ training, rest, everySteps: 50, keepLast: 2,
 *     keepBest: { metric: "loss", mode: "min", count: 1 } });
 *   ... after each step: await checkpoints.maybeSave(step, { loss });
 *
 * Retention runs after every save over the job's step checkpoints (those named `<prefix>step-N`, in
 * every run of the ledger — a resume starts a new run). It keeps the just-written checkpoint, the
 * pinned ones, the `keepLast` newest and the `keepBest` best; every other one is deleted, or, with
 * `ttlSeconds`, given that TTL instead (once: a checkpoint that already expires is left alone), so
 * that a mistake in the policy can still be undone for a while. Without keepLast and keepBest
 * nothing is removed. Checkpoints with other names (a final export, a hand-made save) are never
 * touched.
 */
import type { RestClient } from "../../clients/rest.js";
import type { TrainingClient } from "../../clients/training.js";
import { NotFoundError, ValidationError, type ValidationIssue } from "../../core/errors.js";
import { parseTinkerPath } from "../../lib/tinker-path.js";
import { settleWithConcurrency } from "./concurrency.js";
import {
  type CheckpointLedger,
  type CheckpointStore,
  emptyLedger,
  memoryCheckpointStore,
  parseLedger,
} from "./ledger.js";
import { listStepCheckpoints, type SavedCheckpoint, samplerPathOf, trainingPathOf } from "./listing.js";
import { checkpointName, validatePrefix, validateStep } from "./names.js";
import { checkpointsToKeep, type KeepBest } from "./retention.js";

export interface CheckpointManagerOptions {
  /** The run whose state is saved (`saveState`, and `saveWeightsForSampler` with `withSampler`). */
  training: TrainingClient;
  /** Lists and deletes the run's checkpoints (retention, "latest"). */
  rest: RestClient;
  /** `maybeSave` saves at every step that is a multiple of this (a schedule that survives resumes). */
  everySteps?: number;
  /** `maybeSave` also saves when this many seconds have passed since the last save (or since creation). */
  everySeconds?: number;
  /** Keep the newest K step checkpoints. */
  keepLast?: number;
  /** Keep the best `count` by a metric passed to `save`/`maybeSave`. */
  keepBest?: KeepBest;
  /** Checkpoints retention drops get this TTL instead of being deleted at once. */
  ttlSeconds?: number;
  /** Prepended to `step-000120`. Default "". */
  prefix?: string;
  /** Also save sampler weights of the same name (and retire them with their training checkpoint). */
  withSampler?: boolean;
  /** Milliseconds clock for `everySeconds`. Default `Date.now`. */
  now?: () => number;
  /** Where the ledger (metrics, pins, the job's runs) lives. Default: this process's memory. */
  store?: CheckpointStore;
  /** Deletions/TTL changes in flight at once during retention. Default 4. */
  concurrency?: number;
}

export interface RetentionReport {
  /** Paths deleted (training checkpoints and their sampler twins). */
  deleted: string[];
  /** Paths given the `ttlSeconds` expiry instead of being deleted. */
  expiring: string[];
  /** What failed; `path` is a run id when listing that run's checkpoints failed. Nothing is thrown. */
  failed: { path: string; error: unknown }[];
}

export type SaveResult = SavedCheckpoint & { retention: RetentionReport };

export class CheckpointManager {
  readonly #training: TrainingClient;
  readonly #rest: RestClient;
  readonly #everySteps: number | undefined;
  readonly #everySeconds: number | undefined;
  readonly #keepLast: number | undefined;
  readonly #keepBest: KeepBest | undefined;
  readonly #ttlSeconds: number | undefined;
  readonly #prefix: string;
  readonly #withSampler: boolean;
  readonly #now: () => number;
  readonly #store: CheckpointStore;
  readonly #concurrency: number;
  #ledger: Promise<CheckpointLedger> | undefined;
  /** Saves, pins and retention passes run one at a time, in call order. */
  #queue: Promise<unknown> = Promise.resolve();
  #lastSaveAt: number;
  #lastSavedStep: number | undefined;
  /** `isDue` answers not yet consumed by `maybeSave`, by step. */
  readonly #decisions = new Map<number, boolean>();

  constructor(options: CheckpointManagerOptions) {
    validateOptions(options);
    this.#training = options.training;
    this.#rest = options.rest;
    this.#everySteps = options.everySteps;
    this.#everySeconds = options.everySeconds;
    this.#keepLast = options.keepLast;
    this.#keepBest = options.keepBest === undefined ? undefined : { ...options.keepBest };
    this.#ttlSeconds = options.ttlSeconds;
    this.#prefix = options.prefix ?? "";
    this.#withSampler = options.withSampler ?? false;
    this.#now = options.now ?? Date.now;
    this.#store = options.store ?? memoryCheckpointStore();
    this.#concurrency = options.concurrency ?? 4;
    this.#lastSaveAt = this.#now();
  }

  /** The run this manager saves. */
  get runId(): string {
    return this.#training.modelId;
  }

  /**
   * Whether `maybeSave(step)` would save. A pipelined loop asks this before it submits the step
   * after `step`, so that it can drain first and the checkpoint holds exactly `step` steps — with
   * trainLoop: `shouldDrain: (i) => checkpoints.isDue(i + 1)` (its indices count from 0). The answer
   * is remembered and `maybeSave(step)` follows it, so a time-based decision cannot change between
   * the drain and the save.
   */
  isDue(step: number): boolean {
    validateStep(step);
    const due = this.#decide(step);
    this.#decisions.set(step, due);
    return due;
  }

  /** Saves when due; `step` is the number of steps completed (see `isDue`). */
  async maybeSave(step: number, metrics?: Record<string, number>): Promise<SaveResult | undefined> {
    validateStep(step);
    const decided = this.#decisions.get(step);
    for (const asked of this.#decisions.keys()) if (asked <= step) this.#decisions.delete(asked);
    return (decided ?? this.#decide(step)) ? this.save(step, metrics) : undefined;
  }

  #decide(step: number): boolean {
    if (step === this.#lastSavedStep) return false;
    if (this.#everySteps !== undefined && step > 0 && step % this.#everySteps === 0) return true;
    return this.#everySeconds !== undefined && this.#now() - this.#lastSaveAt >= this.#everySeconds * 1000;
  }

  /** Saves now as `<prefix>step-<step>` (replacing a checkpoint of that name), then applies retention. */
  async save(step: number, metrics: Record<string, number> = {}): Promise<SaveResult> {
    validateStep(step);
    validateMetrics(metrics);
    return this.#serially(() => this.#save(step, metrics));
  }

  /** The job's step checkpoints on the server, oldest step first, with their ledger metrics and pins. */
  list(): Promise<SavedCheckpoint[]> {
    return this.#serially(async () => {
      const ledger = await this.#loadLedger();
      const { checkpoints, failed } = await this.#listJob(ledger);
      if (failed.length > 0) throw failed[0]!.error;
      return checkpoints;
    });
  }

  /**
   * Keeps a checkpoint for good: clears its TTL on the server (and its twin's, training or sampler,
   * of the same name) and records the pin so retention never deletes it.
   */
  async pin(path: string): Promise<void> {
    const parsed = parseTinkerPath(path);
    const name = parsed.checkpointId.slice(parsed.checkpointId.indexOf("/") + 1);
    const training = trainingPathOf(parsed.trainingRunId, name);
    const sampler = samplerPathOf(parsed.trainingRunId, name);
    const twin = path === training ? sampler : training;
    return this.#serially(async () => {
      await this.#rest.setCheckpointTtlFromTinkerPath(path, null);
      try {
        await this.#rest.setCheckpointTtlFromTinkerPath(twin, null);
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
      const ledger = await this.#loadLedger();
      if (!ledger.pinned.includes(training)) ledger.pinned.push(training);
      await this.#store.save(ledger);
    });
  }

  /** Lifts a pin; the next retention pass judges the checkpoint like any other. */
  async unpin(path: string): Promise<void> {
    const parsed = parseTinkerPath(path);
    const name = parsed.checkpointId.slice(parsed.checkpointId.indexOf("/") + 1);
    const training = trainingPathOf(parsed.trainingRunId, name);
    return this.#serially(async () => {
      const ledger = await this.#loadLedger();
      ledger.pinned = ledger.pinned.filter((p) => p !== training);
      await this.#store.save(ledger);
    });
  }

  async #save(step: number, metrics: Record<string, number>): Promise<SaveResult> {
    const ledger = await this.#loadLedger();
    const name = checkpointName(this.#prefix, step);
    // Both are queued on the run before either is awaited: they save the same weights.
    const state = this.#training.saveState(name, { overwrite: true });
    const sampler = this.#withSampler ? this.#training.saveWeightsForSampler(name) : undefined;
    const { path } = await state;
    const samplerPath = sampler === undefined ? undefined : (await sampler).path;
    this.#lastSaveAt = this.#now();
    this.#lastSavedStep = step;

    if (ledger.runs.at(-1) !== this.runId) {
      ledger.runs = [...ledger.runs.filter((r) => r !== this.runId), this.runId];
    }
    ledger.metrics[path] = finiteMetrics(metrics);
    await this.#store.save(ledger);

    const retention = await this.#retain(ledger, path);
    const saved: SaveResult = {
      runId: this.runId,
      name,
      step,
      path,
      time: new Date(),
      expiresAt: null,
      metrics: finiteMetrics(metrics),
      pinned: ledger.pinned.includes(path),
      retention,
    };
    if (samplerPath !== undefined) saved.samplerPath = samplerPath;
    return saved;
  }

  async #retain(ledger: CheckpointLedger, justWritten: string): Promise<RetentionReport> {
    const report: RetentionReport = { deleted: [], expiring: [], failed: [] };
    if (this.#keepLast === undefined && this.#keepBest === undefined) return report;
    const { checkpoints, failed } = await this.#listJob(ledger);
    report.failed.push(...failed);
    const keep = checkpointsToKeep(
      checkpoints.map((c) => ({ ...c, pinned: c.pinned ?? false })),
      { keepLast: this.#keepLast, keepBest: this.#keepBest },
      justWritten,
    );
    const dropped = checkpoints.filter((c) => !keep.has(c.path));
    const ttl = this.#ttlSeconds;
    // With a TTL, a checkpoint that already expires keeps its date: renewing it would keep it forever.
    const targets = dropped
      .filter((c) => ttl === undefined || c.expiresAt === null)
      .flatMap((c) => (c.samplerPath === undefined ? [c.path] : [c.path, c.samplerPath]));
    const outcomes = await settleWithConcurrency(targets, this.#concurrency, (target) =>
      ttl === undefined
        ? this.#rest.deleteCheckpointFromTinkerPath(target)
        : this.#rest.setCheckpointTtlFromTinkerPath(target, ttl),
    );
    outcomes.forEach((outcome, i) => {
      const target = targets[i]!;
      if (outcome.status === "rejected") report.failed.push({ path: target, error: outcome.reason });
      else (ttl === undefined ? report.deleted : report.expiring).push(target);
    });

    // Forget what is gone: deleted checkpoints, and those of listed runs the server no longer has.
    const live = new Set(checkpoints.map((c) => c.path));
    for (const path of report.deleted) live.delete(path);
    const listedRuns = new Set(ledger.runs.filter((r) => !failed.some((f) => f.path === r)));
    for (const path of Object.keys(ledger.metrics)) {
      if (listedRuns.has(parseTinkerPath(path).trainingRunId) && !live.has(path)) delete ledger.metrics[path];
    }
    const runsWithCheckpoints = new Set([...live].map((p) => parseTinkerPath(p).trainingRunId));
    ledger.runs = ledger.runs.filter(
      (r) => r === this.runId || !listedRuns.has(r) || runsWithCheckpoints.has(r),
    );
    await this.#store.save(ledger);
    return report;
  }

  /** Every run's step checkpoints with ledger data; a run that cannot be listed is reported, not thrown. */
  async #listJob(
    ledger: CheckpointLedger,
  ): Promise<{ checkpoints: SavedCheckpoint[]; failed: { path: string; error: unknown }[] }> {
    const runs = ledger.runs.includes(this.runId) ? ledger.runs : [...ledger.runs, this.runId];
    const listings = await settleWithConcurrency(runs, this.#concurrency, (run) =>
      listStepCheckpoints(this.#rest, run, this.#prefix),
    );
    const checkpoints: SavedCheckpoint[] = [];
    const failed: { path: string; error: unknown }[] = [];
    listings.forEach((listing, i) => {
      if (listing.status === "rejected") {
        failed.push({ path: runs[i]!, error: listing.reason });
        return;
      }
      for (const c of listing.value) {
        const metrics = ledger.metrics[c.path];
        checkpoints.push({
          ...c,
          ...(metrics === undefined ? {} : { metrics: { ...metrics } }),
          pinned: ledger.pinned.includes(c.path),
        });
      }
    });
    checkpoints.sort((a, b) => a.step - b.step || a.time.getTime() - b.time.getTime());
    return { checkpoints, failed };
  }

  #loadLedger(): Promise<CheckpointLedger> {
    this.#ledger ??= Promise.resolve(this.#store.load()).then((stored) =>
      stored === undefined ? emptyLedger() : parseLedger(stored),
    );
    // A failed load is retried by the next call instead of being cached.
    this.#ledger.catch(() => {
      this.#ledger = undefined;
    });
    return this.#ledger;
  }

  #serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

function validateOptions(options: CheckpointManagerOptions): void {
  const issues: ValidationIssue[] = [];
  const positiveInteger = (value: unknown, path: string) => {
    if (value !== undefined && !(typeof value === "number" && Number.isSafeInteger(value) && value > 0)) {
      issues.push({ path, message: `must be a positive integer, got ${String(value)}` });
    }
  };
  if (typeof options !== "object" || options === null) {
    throw new ValidationError([{ path: "options", message: "must be an object" }]);
  }
  if (typeof options.training?.saveState !== "function") {
    issues.push({ path: "training", message: "must be a TrainingClient" });
  }
  if (typeof options.rest?.listCheckpoints !== "function") {
    issues.push({ path: "rest", message: "must be a RestClient" });
  }
  positiveInteger(options.everySteps, "everySteps");
  if (
    options.everySeconds !== undefined &&
    !(
      typeof options.everySeconds === "number" &&
      Number.isFinite(options.everySeconds) &&
      options.everySeconds > 0
    )
  ) {
    issues.push({
      path: "everySeconds",
      message: `must be a positive number, got ${String(options.everySeconds)}`,
    });
  }
  positiveInteger(options.keepLast, "keepLast");
  positiveInteger(options.ttlSeconds, "ttlSeconds");
  positiveInteger(options.concurrency, "concurrency");
  const best = options.keepBest;
  if (best !== undefined) {
    if (typeof best !== "object" || best === null) {
      issues.push({ path: "keepBest", message: "must be { metric, mode, count }" });
    } else {
      if (typeof best.metric !== "string" || best.metric === "") {
        issues.push({ path: "keepBest.metric", message: "must be a non-empty string" });
      }
      if (best.mode !== "min" && best.mode !== "max") {
        issues.push({ path: "keepBest.mode", message: `must be "min" or "max", got ${String(best.mode)}` });
      }
      positiveInteger(best.count, "keepBest.count");
      if (best.count === undefined) issues.push({ path: "keepBest.count", message: "is required" });
    }
  }
  if (options.now !== undefined && typeof options.now !== "function") {
    issues.push({ path: "now", message: "must be a function returning milliseconds" });
  }
  if (
    options.store !== undefined &&
    (typeof options.store?.load !== "function" || typeof options.store.save !== "function")
  ) {
    issues.push({ path: "store", message: "must have load() and save(ledger)" });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  if (options.prefix !== undefined) validatePrefix(options.prefix);
}

function validateMetrics(metrics: unknown): void {
  if (typeof metrics !== "object" || metrics === null || Array.isArray(metrics)) {
    throw new ValidationError([{ path: "metrics", message: "must be an object of numbers" }]);
  }
  for (const [name, value] of Object.entries(metrics)) {
    if (typeof value !== "number") {
      throw new ValidationError([
        { path: `metrics.${name}`, message: `must be a number, got ${String(value)}` },
      ]);
    }
  }
}

/** NaN and ±Infinity (a diverged loss) cannot rank a checkpoint, and JSON stores cannot hold them. */
function finiteMetrics(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).filter(([, value]) => Number.isFinite(value)));
}
