/**
 * Client-wide throttling of sample submissions (PROTOCOL.md §10.1): at most 400 submissions in
 * flight (10 while recovering from a 429), a byte budget over the estimated prompt sizes (×20
 * while recovering), and a shared back-off window that a 429 opens: 1 s for prompts up to
 * 128 KiB, 5 s for larger ones. Only submission is throttled; polling is not.
 */
import { Budget } from "../internal/semaphore.js";
import { sleep } from "../internal/sleep.js";

/** What a submission attempt returns when the server answered 429 ("back off and resubmit"). */
export const RATE_LIMITED = Symbol("rate-limited");

const MAX_SUBMISSIONS = 400;
const MAX_SUBMISSIONS_WHILE_THROTTLED = 10;
const THROTTLE_MEMORY_MS = 10_000;
const BACKOFF_POLL_MS = 1_000;
const SMALL_PROMPT_BYTES = 128 * 1024;
const THROTTLED_BYTES_FACTOR = 20;

export class SampleDispatcher {
  readonly #submissions = new Budget(MAX_SUBMISSIONS);
  readonly #throttledSubmissions = new Budget(MAX_SUBMISSIONS_WHILE_THROTTLED);
  readonly #bytes: Budget;
  #backoffUntil = 0;

  constructor(byteBudget: number) {
    this.#bytes = new Budget(byteBudget);
  }

  /** True while a back-off is running or ended less than 10 s ago. */
  get throttled(): boolean {
    return Date.now() < this.#backoffUntil + THROTTLE_MEMORY_MS;
  }

  /**
   * Sends one submission within the caps; `send` returns RATE_LIMITED for a 429, which opens the
   * back-off window and resubmits (same body, so the same seq_id) without limit.
   */
  async submit<T>(
    promptBytes: number,
    send: () => Promise<T | typeof RATE_LIMITED>,
    signal?: AbortSignal,
  ): Promise<T> {
    for (;;) {
      const throttled = this.throttled;
      const releases = [await this.#submissions.acquire(1, signal)];
      try {
        if (throttled) releases.push(await this.#throttledSubmissions.acquire(1, signal));
        releases.push(
          await this.#bytes.acquire(throttled ? promptBytes * THROTTLED_BYTES_FACTOR : promptBytes, signal),
        );
        while (Date.now() < this.#backoffUntil) await sleep(BACKOFF_POLL_MS, signal);
        const result = await send();
        if (result !== RATE_LIMITED) return result;
        const backoff = promptBytes <= SMALL_PROMPT_BYTES ? 1_000 : 5_000;
        this.#backoffUntil = Math.max(this.#backoffUntil, Date.now() + backoff);
      } finally {
        for (const release of releases.reverse()) release();
      }
    }
  }
}
