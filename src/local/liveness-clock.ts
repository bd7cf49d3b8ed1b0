/**
 * The clock that session expiry runs on: monotonic (performance.now(), so a wall-clock change
 * cannot expire a session or keep one alive), and stopped while the event loop is stalled. A
 * heartbeat that arrives during a long synchronous computation waits in the socket until the
 * computation ends; without this, the expiry check that runs first after the stall would count the
 * stall against the session whose heartbeat is still queued.
 *
 * A ticker observes the clock every TICK_MS while it runs; any gap between two observations beyond
 * TICK_MS + STALL_SLACK_MS is a stall, and only TICK_MS of it is counted.
 */
const TICK_MS = 250;
const STALL_SLACK_MS = 750;

export class LivenessClock {
  #last = performance.now();
  #stalled = 0;
  #ticker: ReturnType<typeof setInterval> | undefined;

  /** Milliseconds on this clock: monotonic, without the time the event loop was stalled. */
  now(): number {
    this.#observe();
    return performance.now() - this.#stalled;
  }

  /** Starts the ticker (unref'd: it never keeps a process alive). Idempotent. */
  start(): void {
    if (this.#ticker !== undefined) return;
    this.#last = performance.now();
    this.#ticker = setInterval(() => this.#observe(), TICK_MS);
    (this.#ticker as { unref?: () => void }).unref?.();
  }

  stop(): void {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
  }

  #observe(): void {
    const now = performance.now();
    const gap = now - this.#last;
    if (this.#ticker !== undefined && gap > TICK_MS + STALL_SLACK_MS) this.#stalled += gap - TICK_MS;
    this.#last = now;
  }
}
