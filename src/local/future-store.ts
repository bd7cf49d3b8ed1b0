/**
 * Futures of the local backend: every submission gets a request id at once; the work finishes later
 * and `retrieve_future` long-polls for it (PROTOCOL.md §4). A poll that finds nothing within the hold
 * time is answered `try_again`, as the service does.
 */
import { uuid4 } from "../internal/uuid.js";

export type FutureOutcome =
  | { kind: "json"; body: unknown }
  /** A result the client may ask for as protobuf (`Accept: application/x-protobuf`) or JSON. */
  | { kind: "dual"; json: unknown; protobuf: () => Uint8Array }
  | { kind: "failed"; error: string; category: "user" | "server" | "unknown" };

interface FutureEntry {
  outcome: FutureOutcome | undefined;
  waiters: Set<() => void>;
}

export class FutureStore {
  readonly #entries = new Map<string, FutureEntry>();
  #counter = 0;
  /**
   * Differs per backend instance, so a request id from before a restart (futures are not
   * persisted) is answered 404, never with the result of a new future that reused its number.
   */
  readonly #prefix = `req-${uuid4().slice(0, 8)}`;

  create(): string {
    const id = `${this.#prefix}-${++this.#counter}`;
    this.#entries.set(id, { outcome: undefined, waiters: new Set() });
    return id;
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  settle(id: string, outcome: FutureOutcome): void {
    const entry = this.#entries.get(id);
    if (!entry || entry.outcome) return;
    entry.outcome = outcome;
    for (const wake of entry.waiters) wake();
    entry.waiters.clear();
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

  /** Wakes every waiting poll (they answer try_again), so nothing holds a timer after close. */
  releaseAll(): void {
    for (const entry of this.#entries.values()) {
      for (const wake of [...entry.waiters]) wake();
    }
  }
}
