/**
 * The batched completion poller of PROTOCOL.md §F1: when the server sets
 * `sample_use_retrieve_futures`, a sampling client (one per clone) keeps a single long poll of
 * `retrieve_futures` open while any of its samples waits, instead of one `retrieve_future` poll per
 * sample. A sample that sees its request reported (finished or failed) then fetches the result with
 * the usual `retrieve_future`, which also returns a failure's error.
 *
 * The loop starts with the first waiting sample and stops — its request aborted, no timer left —
 * as soon as none waits. A failed poll is logged (once per run of failures), and the loop waits
 * 1 s and polls again; each sample stays bounded by its own signal. A refusal the server will
 * repeat (a 4xx such as 404 for an unknown session) ends the batching for this client: waiting
 * samples, and later ones, fall back to polling their own request.
 */
import { APIStatusError } from "../core/errors.js";
import { abortError, sleep } from "../internal/sleep.js";
import * as futures from "../wire/endpoints/futures.js";
import { call } from "./call.js";
import type { Connection } from "./connection.js";

const RETRY_DELAY_MS = 1_000;
/** Completions remembered for requests nobody waits for yet (their submission answer is in flight). */
const EARLY_COMPLETIONS_KEPT = 1_024;

export class CompletionWatcher {
  readonly #connection: Connection;
  readonly #target: { type: "sampling_session"; sampling_session_id: string; cloned_sampler_id: number };
  /** Wakes the sample waiting for each request id. */
  readonly #waiters = new Map<string, () => void>();
  readonly #early = new Set<string>();
  #cursor = 0;
  #running = false;
  /** Aborts the poll (or the pause after a failure) in progress. */
  #current: AbortController | undefined;
  #failing = false;
  #fallBack = false;

  constructor(connection: Connection, samplingSessionId: string, cloneId: number) {
    this.#connection = connection;
    this.#target = {
      type: "sampling_session",
      sampling_session_id: samplingSessionId,
      cloned_sampler_id: cloneId,
    };
  }

  /**
   * Resolves once the server reports `requestId` complete, or once batching has been given up
   * (the caller polls its request either way); rejects when `signal` fires.
   */
  wait(requestId: string, signal: AbortSignal): Promise<void> {
    if (this.#fallBack || this.#early.delete(requestId)) return Promise.resolve();
    if (signal.aborted) return Promise.reject(abortError(signal));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#forget(requestId);
        reject(abortError(signal));
      };
      this.#waiters.set(requestId, () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
      signal.addEventListener("abort", onAbort, { once: true });
      if (!this.#running) void this.#loop();
    });
  }

  #forget(requestId: string): void {
    this.#waiters.delete(requestId);
    if (this.#waiters.size === 0) this.#current?.abort();
  }

  #deliver(requestId: string): void {
    const wake = this.#waiters.get(requestId);
    if (wake !== undefined) {
      this.#waiters.delete(requestId);
      wake();
      return;
    }
    this.#early.add(requestId);
    if (this.#early.size > EARLY_COMPLETIONS_KEPT) this.#early.delete(this.#early.values().next().value!);
  }

  async #loop(): Promise<void> {
    this.#running = true;
    try {
      while (this.#waiters.size > 0) {
        const controller = new AbortController();
        this.#current = controller;
        try {
          await this.#pollOnce(controller.signal);
          this.#failing = false;
        } catch (error) {
          if (controller.signal.aborted) continue;
          this.#noteFailure(error);
          if (this.#fallBack) break;
          await sleep(RETRY_DELAY_MS, controller.signal).catch(() => {});
        }
      }
    } finally {
      this.#running = false;
      this.#current = undefined;
    }
    if (this.#fallBack) {
      for (const wake of [...this.#waiters.values()]) wake();
      this.#waiters.clear();
    }
  }

  async #pollOnce(signal: AbortSignal): Promise<void> {
    // Not noted as the client's outcome: a poll aborted because nobody waits is no failure.
    const context = { http: this.#connection.http, billingPauseMs: this.#connection.billingPauseMs };
    const page = await call(context, futures.retrieveFutures, {
      body: {
        target: this.#target,
        prev_cursor: this.#cursor,
        timeout: futures.RETRIEVE_FUTURES_MAX_HOLD_SECONDS,
      },
      signal,
    });
    this.#cursor = page.cursor;
    for (const completion of page.completions) this.#deliver(completion.request_id);
  }

  #noteFailure(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    const status = error instanceof APIStatusError ? error.status : undefined;
    if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
      this.#fallBack = true;
      this.#connection.config.logger.warn(
        `retrieve_futures for ${this.#target.sampling_session_id} was refused (${message}); polling each sample instead`,
      );
      return;
    }
    if (!this.#failing) {
      this.#connection.config.logger.warn(
        `retrieve_futures for ${this.#target.sampling_session_id} failed (${message}); retrying every ${RETRY_DELAY_MS / 1000} s`,
      );
    }
    this.#failing = true;
  }
}
