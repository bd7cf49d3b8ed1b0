/**
 * The completions of one sampling session's futures, as `retrieve_futures` serves them (PROTOCOL.md
 * §F1): each finished or failed sample gets the next position, and a poll asks for what came after
 * the cursor it last saw. A poll that finds nothing newer is held until a completion arrives or its
 * hold time ends.
 */

/** One entry of the log, in the wire shape of `FutureCompletion`. */
export type Completion =
  | { state: "finished"; request_id: string; response_payload_uncompressed_size: number | null }
  | { state: "failed"; request_id: string };

export interface CompletionPage {
  completions: Completion[];
  /** Position of the last completion returned, or the cursor asked with when there was none. */
  cursor: number;
}

/**
 * Entries kept per log. A client that does not poll (any 0.25 client) never acknowledges, so the
 * log is bounded; a polling client is never more than one round trip behind.
 */
const MAX_ENTRIES = 10_000;

export class CompletionLog {
  readonly #entries: { position: number; completion: Completion }[] = [];
  /**
   * Positions count on from the log's creation time in microseconds, not from 0: a client's cursor
   * from before a restart of the backend is then older than every entry of the new log, so it sees
   * them all instead of having the first ones taken as acknowledged.
   */
  #lastPosition = Date.now() * 1000;
  readonly #waiters = new Set<() => void>();

  append(completion: Completion): void {
    this.#entries.push({ position: ++this.#lastPosition, completion });
    if (this.#entries.length > MAX_ENTRIES) this.#entries.shift();
    this.release();
  }

  /**
   * The completions after `cursor`, waiting up to `holdMs` for one (less if `signal`, the client's
   * going away, fires). Entries at or before `cursor` are acknowledged and dropped. A cursor beyond
   * the log's end (one handed out before a restart) is answered at once with everything kept, so
   * that client catches up with the new log.
   */
  async after(cursor: number, holdMs: number, signal?: AbortSignal): Promise<CompletionPage> {
    if (cursor > this.#lastPosition) return this.#page(0);
    while (this.#entries.length > 0 && this.#entries[0]!.position <= cursor) this.#entries.shift();
    if (this.#entries.length === 0) await this.#wait(holdMs, signal);
    return this.#page(cursor);
  }

  /** Answers every held poll now (with whatever is there). */
  release(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  #page(cursor: number): CompletionPage {
    const newer = this.#entries.filter((entry) => entry.position > cursor);
    return {
      completions: newer.map((entry) => entry.completion),
      cursor: newer.length > 0 ? newer[newer.length - 1]!.position : cursor,
    };
  }

  /** Resolves on the next append or release, after `holdMs` (at least one macrotask), or on abort. */
  #wait(holdMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, holdMs));
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}
