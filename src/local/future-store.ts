/**
 * Futures of the local backend: every submission gets a request id at once; the work finishes later
 * and `retrieve_future` long-polls for it (PROTOCOL.md §4). A poll that finds nothing within the hold
 * time is answered `try_again`, as the service does. A future created in a completion group (a
 * sampling session's clone) also lands in that group's log when it settles, for `retrieve_futures`
 * (§F1).
 *
 * Settled futures are kept only for a while (bounded memory): `afterDeliveryMs` after a poll first
 * received the outcome (long enough for a client whose answer was lost on the way to poll again),
 * or `undeliveredMs` after settling when nobody polls. Pending futures are never evicted. A poll for
 * an evicted id is answered like one for an id never issued (404). Eviction runs lazily on the
 * store's own calls (no timer), so an idle backend holds what it held at its last request.
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
  | { kind: "failed"; error: string; category: "user" | "server" | "unknown" }
  /**
   * The promise is broken (answered 410, PROTOCOL.md §4.3): the work was lost — e.g. a sample in
   * flight when the server was killed — and the client should submit it again (the SDK's sampling
   * path does so by itself).
   */
  | { kind: "expired"; error: string };

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
  /** When the entry goes (on the store's clock); Infinity while pending. */
  evictAt: number;
  delivered: boolean;
}

/** How long settled futures are kept (see the module comment). */
export interface FutureRetention {
  /** After a poll first received the outcome. Default 5 minutes. */
  afterDeliveryMs?: number;
  /** After settling, when no poll has received the outcome. Default 1 hour. */
  undeliveredMs?: number;
}

export const DEFAULT_FUTURE_RETENTION: Required<FutureRetention> = {
  afterDeliveryMs: 5 * 60_000,
  undeliveredMs: 60 * 60_000,
};

export interface FutureStoreOptions extends FutureRetention {
  /** A monotonic clock in ms (default performance.now); tests pass their own. */
  now?: () => number;
  /** Told each id evicted (to drop its stored record). */
  onEvict?: (id: string) => void;
}

/** Ids in the order of their deadlines (each queue has one TTL, so pushing keeps it sorted). */
class DeadlineQueue {
  #items: { id: string; deadline: number }[] = [];
  #head = 0;

  push(id: string, deadline: number): void {
    this.#items.push({ id, deadline });
  }

  /** Removes and returns the ids whose deadline is at or before `now`. */
  *due(now: number): Generator<string> {
    while (this.#head < this.#items.length && this.#items[this.#head]!.deadline <= now) {
      yield this.#items[this.#head++]!.id;
    }
    // Drop the consumed prefix once it is most of the array, so the queue stays proportional.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}

export class FutureStore {
  readonly #entries = new Map<string, FutureEntry>();
  #counter = 0;
  /**
   * Differs per backend instance, so a new id never equals one issued before a restart: such an
   * id is either restored from the store with its future (see `create`'s `id`) or unknown (404).
   */
  readonly #prefix = `req-${uuid4().slice(0, 8)}`;
  readonly #logs = new Map<string, CompletionLog>();
  readonly #afterDeliveryMs: number;
  readonly #undeliveredMs: number;
  readonly #now: () => number;
  readonly #onEvict: (id: string) => void;
  readonly #settledQueue = new DeadlineQueue();
  readonly #deliveredQueue = new DeadlineQueue();

  constructor(options: FutureStoreOptions = {}) {
    this.#afterDeliveryMs = options.afterDeliveryMs ?? DEFAULT_FUTURE_RETENTION.afterDeliveryMs;
    this.#undeliveredMs = options.undeliveredMs ?? DEFAULT_FUTURE_RETENTION.undeliveredMs;
    if (!(this.#afterDeliveryMs >= 0) || !(this.#undeliveredMs >= 0)) {
      throw new Error("future retention times must be non-negative");
    }
    this.#now = options.now ?? (() => performance.now());
    this.#onEvict = options.onEvict ?? (() => {});
  }

  /** A new pending future; `id` re-creates one issued before a restart (restored from the store). */
  create(info: FutureInfo = {}, id = `${this.#prefix}-${++this.#counter}`): string {
    this.#evictDue();
    this.#entries.set(id, {
      outcome: undefined,
      waiters: new Set(),
      info,
      evictAt: Infinity,
      delivered: false,
    });
    return id;
  }

  has(id: string): boolean {
    this.#evictDue();
    return this.#entries.has(id);
  }

  /** Futures held (pending and settled), e.g. to check that eviction bounds memory. */
  get size(): number {
    return this.#entries.size;
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
    this.#evictDue();
    const entry = this.#entries.get(id);
    if (!entry || entry.outcome) return false;
    entry.outcome = outcome;
    entry.evictAt = this.#now() + this.#undeliveredMs;
    this.#settledQueue.push(id, entry.evictAt);
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
    if (entry.outcome) {
      this.#delivered(id, entry);
      return entry.outcome;
    }
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
    if (entry.outcome) this.#delivered(id, entry);
    return entry.outcome;
  }

  /** A poll is receiving the outcome: from now on the entry lives `afterDeliveryMs` at most. */
  #delivered(id: string, entry: FutureEntry): void {
    if (entry.delivered) return;
    entry.delivered = true;
    const deadline = this.#now() + this.#afterDeliveryMs;
    if (deadline < entry.evictAt) {
      entry.evictAt = deadline;
      this.#deliveredQueue.push(id, deadline);
    }
  }

  /** Drops the settled futures whose time is up. */
  #evictDue(): void {
    const now = this.#now();
    for (const queue of [this.#settledQueue, this.#deliveredQueue]) {
      for (const id of queue.due(now)) {
        const entry = this.#entries.get(id);
        // An entry is in up to two queues; it goes when the one holding its own deadline reaches it.
        if (entry === undefined || entry.evictAt > now) continue;
        this.#entries.delete(id);
        this.#onEvict(id);
      }
    }
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
  if (outcome.kind !== "json") return { state: "failed", request_id: requestId };
  return { state: "finished", request_id: requestId, response_payload_uncompressed_size: null };
}
