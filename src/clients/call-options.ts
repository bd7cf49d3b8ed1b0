/** Options every network call accepts. */
export interface CallOptions {
  /** Cancels the operation (submission and polling). */
  signal?: AbortSignal;
  /** Gives up after this many ms, with a timeout error. */
  timeout?: number;
}

/** Folds `timeout` into the caller's signal. */
export function withTimeout(options: CallOptions | undefined): AbortSignal | undefined {
  if (!options) return undefined;
  const { signal, timeout } = options;
  if (timeout === undefined) return signal;
  const timer = AbortSignal.timeout(timeout);
  return signal ? AbortSignal.any([signal, timer]) : timer;
}
