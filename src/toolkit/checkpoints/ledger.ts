/**
 * The checkpoint manager's ledger: what the server cannot hold for us. A checkpoint on the server has
 * a name, a time, a size and an expiry, but no free-form metadata (a run's `user_metadata` is fixed
 * when the run is created), so the metrics that "keep the best by loss" compares, the pins, and the
 * runs that form one training job across resumes are kept here. Everything else (which checkpoints
 * exist, which is the latest, what step it holds) is read from the server, so a lost ledger costs
 * only keep-best judgements, never a resume.
 *
 * Where the ledger lives is the caller's choice through a `CheckpointStore`: in memory by default
 * (enough for a process that never restarts), a JSON file in a Node script (see
 * examples/toolkit/lib/file-store.ts), `localStorage` or a KV namespace elsewhere. It is small: one entry
 * per live checkpoint.
 */
import { ValidationError } from "../../core/errors.js";

export interface CheckpointLedger {
  version: 1;
  /**
   * The training runs of this job, oldest first. Resuming creates a new run; listing the earlier
   * ones too lets retention clean up after them and keeps "keep the last K" meaningful across a
   * resume. A run is added when its first checkpoint is saved.
   */
  runs: string[];
  /** Metrics by training checkpoint path, as given to `save`/`maybeSave` (an empty object: none). */
  metrics: Record<string, Record<string, number>>;
  /** Pinned training checkpoint paths: never deleted, never given a TTL. */
  pinned: string[];
}

/** Where a CheckpointManager keeps its ledger. Both methods may be synchronous or return promises. */
export interface CheckpointStore {
  /** The saved ledger, or undefined when there is none yet. */
  load(): CheckpointLedger | undefined | Promise<CheckpointLedger | undefined>;
  save(ledger: CheckpointLedger): void | Promise<void>;
}

export function emptyLedger(): CheckpointLedger {
  return { version: 1, runs: [], metrics: {}, pinned: [] };
}

/** A store that keeps the ledger in this process only (a copy, so callers cannot change it behind its back). */
export function memoryCheckpointStore(initial?: CheckpointLedger): CheckpointStore {
  let saved = initial === undefined ? undefined : structuredClone(initial);
  return {
    load: () => (saved === undefined ? undefined : structuredClone(saved)),
    save: (ledger) => {
      saved = structuredClone(ledger);
    },
  };
}

/** Checks a ledger read back from a store, so that a hand-edited or foreign file fails clearly. */
export function parseLedger(value: unknown): CheckpointLedger {
  const fail = (path: string, message: string) =>
    new ValidationError([{ path: `store.ledger${path}`, message }]);
  if (typeof value !== "object" || value === null) throw fail("", "must be an object");
  const ledger = value as Partial<CheckpointLedger>;
  if (ledger.version !== 1) throw fail(".version", "must be 1");
  if (!Array.isArray(ledger.runs) || !ledger.runs.every((r) => typeof r === "string")) {
    throw fail(".runs", "must be an array of run ids");
  }
  if (!Array.isArray(ledger.pinned) || !ledger.pinned.every((p) => typeof p === "string")) {
    throw fail(".pinned", "must be an array of tinker paths");
  }
  if (typeof ledger.metrics !== "object" || ledger.metrics === null || Array.isArray(ledger.metrics)) {
    throw fail(".metrics", "must be an object");
  }
  for (const [path, metrics] of Object.entries(ledger.metrics)) {
    if (typeof metrics !== "object" || metrics === null) throw fail(`.metrics[${path}]`, "must be an object");
    for (const [name, metric] of Object.entries(metrics)) {
      if (typeof metric !== "number") throw fail(`.metrics[${path}].${name}`, "must be a number");
    }
  }
  return { version: 1, runs: [...ledger.runs], metrics: { ...ledger.metrics }, pinned: [...ledger.pinned] };
}
