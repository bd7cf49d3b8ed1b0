/**
 * Pure retry decisions and delays of the official client (PROTOCOL.md §5). Kept free of I/O so that
 * they can be unit-tested and shared by the transport layer, the generic loop and the poller.
 */

/** Layer 1: statuses retried inside one HTTP call (unless `x-should-retry: false`). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/**
 * Layer 1: should this response be retried? `x-should-retry` wins in both directions; otherwise the
 * status decides.
 */
export function shouldRetryResponse(status: number, headers: Headers): boolean {
  const header = headers.get("x-should-retry");
  if (header === "true") return true;
  if (header === "false") return false;
  return isRetryableStatus(status);
}

const MAX_SERVER_DELAY_MS = 60_000;

/**
 * Layer 1: a server-given delay from `retry-after-ms` (milliseconds) or `retry-after` (seconds or an
 * HTTP date), used only when it lies in (0, 60] seconds; otherwise the computed backoff applies.
 */
export function serverRetryDelayMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get("retry-after-ms");
  if (ms !== null) {
    const value = Number.parseFloat(ms);
    if (Number.isFinite(value) && value > 0 && value <= MAX_SERVER_DELAY_MS) return value;
  }
  const after = headers.get("retry-after");
  if (after !== null) {
    const seconds = Number.parseFloat(after);
    let value = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(after) - now;
    if (Number.isNaN(value)) value = -1;
    if (value > 0 && value <= MAX_SERVER_DELAY_MS) return value;
  }
  return undefined;
}

/**
 * Layer 1 computed delay before retry number `retry` (0 for the first retry):
 * min(0.5 s · 2^retry, 10 s), reduced by up to 25 % of jitter.
 */
export function transportBackoffMs(retry: number, random: () => number = Math.random): number {
  const nominal = Math.min(500 * 2 ** retry, 10_000);
  return nominal * (1 - 0.25 * random());
}

/**
 * Answers that cannot be the server's (an HTML page, a replayed answer, …) are sent again at most
 * this many times per call, or per run of consecutive polls, with the transport back-off: a fault
 * on the path clears within that, a server that really answers so does not get retried for long.
 */
export const UNEXPECTED_ANSWER_RETRIES = 5;

/** Layer 2 (the generic loop) delay for attempt k = 0, 1, 2...: min(2^k, 30) s, no jitter. */
export function genericLoopDelayMs(attempt: number): number {
  return Math.min(2 ** attempt, 30) * 1000;
}

/** Poller back-off after 429s and connection errors: min(2^n, 30) s. */
export function pollBackoffMs(consecutive: number): number {
  return Math.min(2 ** consecutive, 30) * 1000;
}
