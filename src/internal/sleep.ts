import { APITimeoutError, APIUserAbortError } from "../core/errors.js";

/** Waits `ms`, or rejects with APIUserAbortError as soon as `signal` fires (and leaves no timer behind). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The SDK error for a fired signal: a `timeout` option's signal is a timeout, anything else an abort. */
export function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  if (reason instanceof Error && reason.name === "TimeoutError") return new APITimeoutError();
  return new APIUserAbortError(undefined, { cause: reason });
}
