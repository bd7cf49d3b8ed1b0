/**
 * Layer 4 of PROTOCOL.md §5.4: the sampling retry handler. It wraps a whole sample (submit + poll)
 * and re-runs it (with a new seq_id) after connection errors, timeouts, retryable statuses and an
 * expired promise (410), with no attempt limit: what ends it is stuck detection, which fails every
 * in-flight call when no call of this handler has completed for `progressTimeoutMs`.
 */
import {
  APIConnectionError,
  APIStatusError,
  APITimeoutError,
  APIUserAbortError,
  FutureRetrieveError,
} from "../core/errors.js";
import { isRetryableStatus } from "../core/retry-policy.js";
import { Budget } from "../internal/semaphore.js";
import { abortError, sleep } from "../internal/sleep.js";
import { unrefTimer } from "../internal/timers.js";

export interface RetryConfig {
  /**
   * Concurrent calls per sampler; the server's `sample_max_concurrent_requests` wins when set. When
   * the server batches completions (`sample_use_retrieve_futures`, §F1) only this setting caps them.
   */
  maxConnections?: number;
  /** Fail in-flight calls when none completed for this long. Default 7 200 000 ms (2 h). */
  progressTimeoutMs?: number;
  /** First retry delay. Default 500 ms. */
  retryDelayBaseMs?: number;
  /** Largest retry delay. Default 10 000 ms. */
  retryDelayMaxMs?: number;
  /** Symmetric jitter on each delay. Default 0.25 (±25 %). */
  jitterFactor?: number;
  /** Default true; false runs each call once. */
  enableRetryLogic?: boolean;
  /** Default true; the server may turn it off (`sample_enable_stuck_detection: false`). */
  enableStuckDetection?: boolean;
}

export interface ServerSamplingFlags {
  sample_max_concurrent_requests?: number;
  sample_enable_stuck_detection?: boolean;
  sample_use_retrieve_futures?: boolean;
}

export class SamplingRetryHandler {
  readonly #config: Required<RetryConfig>;
  readonly #slots: Budget;
  #inFlight = 0;
  #lastProgressAt = Date.now();

  constructor(config: RetryConfig = {}, flags: ServerSamplingFlags = {}) {
    this.#config = {
      // Waiting samples hold no connection each when completions are batched (§F1), so the
      // server's cap and the default are lifted; an explicit setting still applies.
      maxConnections: flags.sample_use_retrieve_futures
        ? (config.maxConnections ?? Number.POSITIVE_INFINITY)
        : (flags.sample_max_concurrent_requests ?? config.maxConnections ?? 1000),
      progressTimeoutMs: config.progressTimeoutMs ?? 7_200_000,
      retryDelayBaseMs: config.retryDelayBaseMs ?? 500,
      retryDelayMaxMs: config.retryDelayMaxMs ?? 10_000,
      jitterFactor: config.jitterFactor ?? 0.25,
      enableRetryLogic: config.enableRetryLogic ?? true,
      enableStuckDetection:
        (config.enableStuckDetection ?? true) && flags.sample_enable_stuck_detection !== false,
    };
    this.#slots = new Budget(this.#config.maxConnections);
  }

  /** Delay before retry `i` (0 first): min(base·2^i, max) with ±jitter, clamped to [0, max]. */
  retryDelayMs(retry: number, random: () => number = Math.random): number {
    const { retryDelayBaseMs, retryDelayMaxMs, jitterFactor } = this.#config;
    const nominal = Math.min(retryDelayBaseMs * 2 ** retry, retryDelayMaxMs);
    const jittered = nominal * (1 + jitterFactor * (2 * random() - 1));
    return Math.min(Math.max(jittered, 0), retryDelayMaxMs);
  }

  /** Runs `attempt` (given a signal that stuck detection can fire) until it succeeds or fails for good. */
  async run<T>(
    attempt: (signal: AbortSignal) => Promise<T>,
    userSignal?: AbortSignal,
    retry = true,
  ): Promise<T> {
    const release = await this.#slots.acquire(1, userSignal);
    if (this.#inFlight++ === 0) this.#lastProgressAt = Date.now();
    const controller = new AbortController();
    const forwardAbort = () => controller.abort(userSignal!.reason);
    userSignal?.addEventListener("abort", forwardAbort, { once: true });
    const watchdog = this.#config.enableStuckDetection ? this.#watch(controller) : undefined;
    try {
      for (let i = 0; ; i++) {
        try {
          const result = await attempt(controller.signal);
          this.#lastProgressAt = Date.now();
          return result;
        } catch (error) {
          if (controller.signal.aborted) throw stuckOrAbort(controller.signal, error);
          if (!retry || !this.#config.enableRetryLogic || !isRetryableSampleError(error)) throw error;
          await sleep(this.retryDelayMs(i), controller.signal).catch(() => {
            throw stuckOrAbort(controller.signal, error);
          });
        }
      }
    } finally {
      if (watchdog !== undefined) clearTimeout(watchdog.timer);
      userSignal?.removeEventListener("abort", forwardAbort);
      this.#inFlight--;
      release();
    }
  }

  /** Aborts the call once the handler has made no progress for the whole timeout. */
  #watch(controller: AbortController): { timer: ReturnType<typeof setTimeout> } {
    const state = { timer: undefined as unknown as ReturnType<typeof setTimeout> };
    const check = () => {
      const idle = Date.now() - this.#lastProgressAt;
      const { progressTimeoutMs } = this.#config;
      if (idle >= progressTimeoutMs) {
        controller.abort(
          new APIConnectionError(
            `No progress made in ${Math.round(progressTimeoutMs / 1000)}s. Requests appear to be stuck.`,
          ),
        );
        return;
      }
      state.timer = setTimeout(check, progressTimeoutMs - idle);
      unrefTimer(state.timer);
    };
    state.timer = setTimeout(check, this.#config.progressTimeoutMs);
    unrefTimer(state.timer);
    return state;
  }
}

/** Why a call ended once its signal fired: stuck detection, the caller's timeout, or an abort. */
function stuckOrAbort(signal: AbortSignal, error: unknown): unknown {
  if (signal.reason instanceof APIConnectionError) return signal.reason;
  if (error instanceof APIUserAbortError || error instanceof APITimeoutError) return error;
  return abortError(signal);
}

/** Connection trouble, timeouts, an expired promise and 408/409/429/5xx are worth another try. */
export function isRetryableSampleError(error: unknown): boolean {
  if (error instanceof APIUserAbortError) return false;
  if (error instanceof FutureRetrieveError) return error.status === 410;
  if (error instanceof APIStatusError) return isRetryableStatus(error.status);
  return error instanceof APIConnectionError;
}
