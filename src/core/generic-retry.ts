/**
 * Layer 2 of PROTOCOL.md §5.2: the official client's `execute_with_retries`. It wraps whole calls
 * (each retry is a new HTTP call with a new idempotency key but the same logical ids) and retries
 * connection errors, timeouts and 408/409/429/5xx for up to five minutes; 402 means "billing pause".
 * An answer that cannot be the server's (UnexpectedResponseError) is repeated here only for routes
 * whose transport makes one attempt (`retryUnexpectedAnswers`; the transport repeats it for the
 * others), like a connection error, at most UNEXPECTED_ANSWER_RETRIES times.
 */
import { sleep } from "../internal/sleep.js";
import { APIConnectionError, APIStatusError, UnexpectedResponseError } from "./errors.js";
import { genericLoopDelayMs, isRetryableStatus, UNEXPECTED_ANSWER_RETRIES } from "./retry-policy.js";

export interface GenericRetryOptions {
  signal?: AbortSignal;
  /** Total retry window. Default 300 s. */
  windowMs?: number;
  /** How long HTTP 402 may pause the call before it becomes an error. Default 3600 s. */
  billingPauseMs?: number;
  /** Repeat UnexpectedResponseError (for routes without transport retries). Default false. */
  retryUnexpectedAnswers?: boolean;
}

const BILLING_RETRY_MS = 5_000;

export async function withGenericRetries<T>(
  call: () => Promise<T>,
  options: GenericRetryOptions = {},
): Promise<T> {
  const windowMs = options.windowMs ?? 300_000;
  const billingPauseMs = options.billingPauseMs ?? 3_600_000;
  const start = Date.now();
  let attempt = 0;
  let unexpectedAnswers = 0;
  let billingSince: number | undefined;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (error instanceof APIStatusError && error.status === 402) {
        billingSince ??= Date.now();
        if (Date.now() - billingSince >= billingPauseMs) throw error;
        await sleep(BILLING_RETRY_MS, options.signal);
        continue;
      }
      if (error instanceof UnexpectedResponseError) {
        if (!options.retryUnexpectedAnswers || unexpectedAnswers++ >= UNEXPECTED_ANSWER_RETRIES) throw error;
      } else if (!isGenericRetryable(error)) {
        throw error;
      }
      const elapsed = Date.now() - start;
      if (elapsed >= windowMs) throw error;
      // The last sleep is trimmed so the loop ends when its window does.
      await sleep(Math.min(genericLoopDelayMs(attempt), windowMs - elapsed), options.signal);
      attempt++;
    }
  }
}

function isGenericRetryable(error: unknown): boolean {
  if (error instanceof APIStatusError) return isRetryableStatus(error.status);
  return error instanceof APIConnectionError;
}
