/**
 * Futures of the local backend: every submission gets a request id at once; the work finishes later
 * and `retrieve_future` long-polls for it (PROTOCOL.md §4). A poll that finds nothing within the hold
 * time is answered `try_again`, as the service does. A future created in a completion group (a
 * sampling session's clone) also lands in that group's log when it settles, for `retrieve_futures`
 * (§F1).
 */
import { uuid4 } from "../internal/uuid.js";
import type { FutureRequestType } from "../wire/endpoints/define.js";
import { type Completion, CompletionLog, type CompletionPage } from "./completion-log.js";

/** Results that the protocol also defines as protobuf messages (PROTOCOL.md §3.6, §3.8). */
export type ResultMessage = "ForwardBackwardOutput" | "SampleResponse";

/**
 * How a future ended. A result is the JSON form of the response, with the name of the message it is
 * when the protocol also has a protobuf form; encoding it is the HTTP edge's job (routes/futures.ts).
 */
export type FutureOutcome =
  | { kind: "json"; body: unknown; message?: ResultMessage }
  | { kind: "failed"; error: string; category: "user" | "server" | "unknown" };

/** What a future is, beyond its outcome. */
export interface FutureInfo {
  /** The request type (`X-Tinker-Request-Type`) of the work, e.g. "Sample". */
  type?: FutureRequestType;
  /** The completion log this future reports to when it settles (see `completionsAfter`). */
  group?: string;
}

interface FutureEntry {
  outcome: FutureOutcome | undefined;
  waiters: Set<() => void>;
  info: FutureInfo;
}

export class FutureStore {
  readonly #entries = new Map<string, FutureEntry>();
  #counter = 0;
  /**
   * Differs per backend instance, so a request id from before a restart (futures are not
   * persisted) is answered 404, never with the result of a new future that reused its number.
   */
  readonly #prefix = `req-${uuid4().slice(0, 8)}`;
  readonly #logs = new Map<string, CompletionLog>();

  create(info: FutureInfo = {}): string {
    const id = `${this.#prefix}-${++this.#counter}`;
    this.#entries.set(id, { outcome: undefined, waiters: new Set(), info });
    return id;
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** What the future was created as; undefined for an unknown id. */
  info(id: string): FutureInfo | undefined {
    return this.#entries.get(id)?.info;
  }

  /** The future's outcome, if it has one (without waiting). */
  outcome(id: string): FutureOutcome | undefined {
    return this.#entries.get(id)?.outcome;
  }

  /** Whether the future has its outcome (a result, a failure or a cancellation). */
  isSettled(id: string): boolean {
    return this.#entries.get(id)?.outcome !== undefined;
  }

  /** Gives the future its outcome; false (and nothing changes) if it already had one. */
  settle(id: string, outcome: FutureOutcome): boolean {
    const entry = this.#entries.get(id);
    if (!entry || entry.outcome) return false;
    entry.outcome = outcome;
    for (const wake of entry.waiters) wake();
    entry.waiters.clear();
    if (entry.info.group !== undefined) this.#log(entry.info.group).append(completionOf(id, outcome));
    return true;
  }

  /**
   * The completions of `group` after `cursor`, held up to `holdMs` when there are none yet
   * (`retrieve_futures`, §F1). Entries at or before `cursor` are acknowledged and dropped.
   */
  completionsAfter(
    group: string,
    cursor: number,
    holdMs: number,
    signal?: AbortSignal,
  ): Promise<CompletionPage> {
    return this.#log(group).after(cursor, holdMs, signal);
  }

  #log(group: string): CompletionLog {
    let log = this.#logs.get(group);
    if (log === undefined) {
      log = new CompletionLog();
      this.#logs.set(group, log);
    }
    return log;
  }

  /** The outcome, waiting up to `holdMs` for it; undefined if still pending then. */
  async wait(id: string, holdMs: number, signal?: AbortSignal): Promise<FutureOutcome | undefined> {
    const entry = this.#entries.get(id);
    if (!entry) throw new Error(`unknown request id ${id}`);
    if (entry.outcome) return entry.outcome;
    // Even with no hold, wait one macrotask: an in-process client polls again at once, and without
    // this yield its poll loop would starve the timer that runs the work.
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        entry.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, holdMs));
      entry.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
    return entry.outcome;
  }

  /**
   * Wakes every waiting poll (they answer try_again, or an empty page of completions), so nothing
   * holds a timer after close.
   */
  releaseAll(): void {
    for (const entry of this.#entries.values()) {
      for (const wake of [...entry.waiters]) wake();
    }
    for (const log of this.#logs.values()) log.release();
  }
}

/** The log entry of a settled future; the edge fills in a result's payload size when it sends it. */
function completionOf(requestId: string, outcome: FutureOutcome): Completion {
  if (outcome.kind === "failed") return { state: "failed", request_id: requestId };
  return { state: "finished", request_id: requestId, response_payload_uncompressed_size: null };
}
