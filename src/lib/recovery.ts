/**
 * Recovery of corrupted training runs (FEATURES.md §2, tinkex's opt-in `Recovery`): the service flags
 * a run whose state it lost as `TrainingRun.corrupted` (PROTOCOL.md §3.9); its later operations fail.
 * `recover` checks the flag through the REST API, picks the run's last training checkpoint and starts
 * a new run from it with `createTrainingClientFromStateWithOptimizer`, a bounded number of times.
 * `monitorRun` does the check periodically, off by default (nothing runs unless you call it).
 *
 * What the caller must still do: continue the data loop from the step the checkpoint was saved at
 * (e.g. encoded in its name); the steps after it are lost with the corrupted run.
 */
import type { TrainingClient } from "../clients/training.js";
import { TinkerError } from "../core/errors.js";
import { sleep } from "../internal/sleep.js";

/** What `recover` needs of a ServiceClient (a ServiceClient fits). */
export interface RecoveryService {
  createRestClient(): {
    getTrainingRun(
      id: string,
      options?: { signal?: AbortSignal },
    ): Promise<{
      training_run_id: string;
      corrupted: boolean;
      last_checkpoint?: { checkpoint_type: string; tinker_path: string; time: Date } | null;
    }>;
    listCheckpoints(
      id: string,
      options?: { signal?: AbortSignal },
    ): Promise<{ checkpoints: { checkpoint_type: string; tinker_path: string; time: Date }[] }>;
  };
  createTrainingClientFromStateWithOptimizer(
    path: string,
    options?: { signal?: AbortSignal },
  ): Promise<TrainingClient>;
  createTrainingClientFromState(path: string, options?: { signal?: AbortSignal }): Promise<TrainingClient>;
}

export type RecoveryEvent =
  | { type: "corrupted"; runId: string }
  | { type: "checkpoint"; runId: string; path: string }
  | { type: "attempt"; runId: string; attempt: number; path: string }
  | { type: "attempt_failed"; runId: string; attempt: number; error: unknown; retryInMs: number | undefined }
  | { type: "recovered"; runId: string; newRunId: string; path: string; attempts: number }
  | { type: "failed"; runId: string; error: RecoveryError };

export interface RecoveryOptions {
  /** Resume attempts before giving up. Default 3. */
  maxAttempts?: number;
  /** Wait before the second attempt, doubled each time. Default 5 000 ms. */
  backoffMs?: number;
  /** Cap of the wait between attempts. Default 60 000 ms. */
  maxBackoffMs?: number;
  /** `"latest"` (default): the run's newest training checkpoint; or this `tinker://…/weights/…` path. */
  checkpoint?: "latest" | { path: string };
  /** Restore the optimizer state too (exact resume). Default true. */
  restoreOptimizer?: boolean;
  /** Recover even when the run is not flagged corrupted. Default false. */
  force?: boolean;
  /** Called at each step of a recovery (checkpoint found, attempt, failure, success), for logs. */
  onEvent?: (event: RecoveryEvent) => void;
  /** Stops waiting between attempts and gives up with the signal's reason. */
  signal?: AbortSignal;
}

export interface RecoveryResult {
  /** The new run, at the checkpoint's state. */
  client: TrainingClient;
  /** The checkpoint it was resumed from. */
  checkpointPath: string;
  /** The corrupted run. */
  previousRunId: string;
  attempts: number;
}

/** Recovery was needed and did not succeed (no checkpoint, or every attempt failed). */
export class RecoveryError extends TinkerError {
  protected static override readonly brand = "RecoveryError";
  readonly runId: string;
  readonly attempts: number;

  constructor(message: string, runId: string, attempts: number, options?: { cause?: unknown }) {
    super(message, options);
    this.runId = runId;
    this.attempts = attempts;
  }
}

/**
 * Resumes `runId` from its last training checkpoint if the service flags it corrupted. Resolves with
 * the new run, or `undefined` when the run is healthy. Throws RecoveryError when it cannot recover.
 */
export async function recover(
  service: RecoveryService,
  runId: string,
  options: RecoveryOptions = {},
): Promise<RecoveryResult | undefined> {
  const { signal } = options;
  const emit = (event: RecoveryEvent) => {
    try {
      options.onEvent?.(event);
    } catch {
      // An observer's bug must not break recovery.
    }
  };
  const rest = service.createRestClient();
  const run = await rest.getTrainingRun(runId, { signal });
  if (!run.corrupted && !options.force) return undefined;
  emit({ type: "corrupted", runId });

  const fail = (message: string, attempts: number, cause?: unknown): never => {
    const error = new RecoveryError(message, runId, attempts, { cause });
    emit({ type: "failed", runId, error });
    throw error;
  };

  let path: string | undefined;
  if (options.checkpoint && options.checkpoint !== "latest") {
    path = options.checkpoint.path;
  } else {
    const { checkpoints } = await rest.listCheckpoints(runId, { signal });
    const training = checkpoints.filter((c) => c.checkpoint_type === "training");
    const latest = training.reduce<(typeof training)[number] | undefined>(
      (best, c) => (best === undefined || c.time.getTime() >= best.time.getTime() ? c : best),
      undefined,
    );
    path =
      latest?.tinker_path ??
      (run.last_checkpoint?.checkpoint_type === "training" ? run.last_checkpoint.tinker_path : undefined);
  }
  if (path === undefined) return fail(`Run ${runId} is corrupted and has no training checkpoint`, 0);
  emit({ type: "checkpoint", runId, path });

  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  const backoffMs = options.backoffMs ?? 5_000;
  const maxBackoffMs = options.maxBackoffMs ?? 60_000;
  let lastError: unknown;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    emit({ type: "attempt", runId, attempt, path });
    try {
      const client =
        options.restoreOptimizer === false
          ? await service.createTrainingClientFromState(path, { signal })
          : await service.createTrainingClientFromStateWithOptimizer(path, { signal });
      emit({ type: "recovered", runId, newRunId: client.modelId, path, attempts: attempt });
      return { client, checkpointPath: path, previousRunId: runId, attempts: attempt };
    } catch (error) {
      if (signal?.aborted) throw error;
      lastError = error;
      const retryInMs =
        attempt < maxAttempts ? Math.min(backoffMs * 2 ** (attempt - 1), maxBackoffMs) : undefined;
      emit({ type: "attempt_failed", runId, attempt, error, retryInMs });
      if (retryInMs !== undefined) await sleep(retryInMs, signal);
    }
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  return fail(
    `Could not resume run ${runId} from ${path} after ${maxAttempts} attempts: ${reason}`,
    maxAttempts,
    lastError,
  );
}

export interface RunMonitorOptions extends Omit<RecoveryOptions, "signal" | "force"> {
  /** How often to check the run. Default 30 000 ms. */
  intervalMs?: number;
  /** Called with each recovered run; the monitor then watches the new run. */
  onRecovered?: (result: RecoveryResult) => void;
  /** Called when recovery failed; the monitor stops. */
  onFailure?: (error: unknown) => void;
}

export interface RunMonitor {
  /** The run currently watched (changes after a recovery). */
  readonly runId: string;
  /** Stops checking; no timer is left behind. Resolves when the monitor has stopped. */
  stop(): Promise<void>;
}

/**
 * Checks `runId` every `intervalMs` and recovers it when it becomes corrupted (opt-in). Errors while
 * checking (e.g. the service briefly unreachable) are skipped until the next check.
 */
export function monitorRun(
  service: RecoveryService,
  runId: string,
  options: RunMonitorOptions = {},
): RunMonitor {
  const stopping = new AbortController();
  const intervalMs = options.intervalMs ?? 30_000;
  let current = runId;
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        await sleep(intervalMs, stopping.signal);
      } catch {
        return;
      }
      let result: RecoveryResult | undefined;
      try {
        result = await recover(service, current, { ...options, signal: stopping.signal });
      } catch (error) {
        if (stopping.signal.aborted) return;
        if (error instanceof RecoveryError) {
          options.onFailure?.(error);
          return;
        }
        continue; // The check itself failed; try again at the next interval.
      }
      if (result) {
        current = result.client.modelId;
        options.onRecovered?.(result);
      }
    }
  })();
  return {
    get runId() {
      return current;
    },
    async stop() {
      stopping.abort();
      await loop;
    },
  };
}
