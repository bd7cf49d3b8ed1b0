/**
 * APIFuture<T>: the handle a training or sampling operation returns synchronously. It is awaitable for
 * the result, exposes the server's `requestId` (for manual polling or persistence) and an async
 * iterator of poll events. The operation runs eagerly, whether or not anyone awaits it, because its
 * place in the model's order was taken at call time.
 */
import { APITimeoutError } from "../core/errors.js";
import { abortError } from "../internal/sleep.js";
import type { FutureEvent } from "./poller.js";

export interface FutureRun<T> {
  /** Called once the server has accepted the request. */
  setRequestId(id: string): void;
  /** Reports a poll event to `events()` listeners. */
  emit(event: FutureEvent): void;
  result: Promise<T>;
}

export interface ResultOptions {
  /** Give up waiting after this many ms (the operation itself goes on). */
  timeout?: number;
  /** Stop waiting when this fires (the operation itself goes on). */
  signal?: AbortSignal;
}

type EventListener = (event: FutureEvent | undefined) => void;

export class APIFuture<T> implements PromiseLike<T> {
  /** Resolves with the server's request id once the request has been accepted. */
  readonly requestId: Promise<string>;
  readonly #result: Promise<T>;
  readonly #history: FutureEvent[] = [];
  readonly #listeners = new Set<EventListener>();
  #settled = false;

  /**
   * `start` receives the hooks and returns the result promise. Used by the clients; users get
   * futures from them (or from `futures.retrieve`).
   */
  constructor(start: (hooks: Omit<FutureRun<T>, "result">) => Promise<T>) {
    let resolveId!: (id: string) => void;
    let rejectId!: (error: unknown) => void;
    this.requestId = new Promise<string>((resolve, reject) => {
      resolveId = resolve;
      rejectId = reject;
    });
    this.#result = start({
      setRequestId: (id) => resolveId(id),
      emit: (event) => {
        this.#history.push(event);
        for (const listener of this.#listeners) listener(event);
      },
    });
    this.#result.then(
      () => this.#finish(),
      (error) => {
        rejectId(error);
        this.#finish();
      },
    );
    // Nobody may ever look at these; an unobserved failure must not crash the process. Awaiting the
    // future (or its requestId) still sees the error.
    this.requestId.catch(() => {});
    this.#result.catch(() => {});
  }

  // biome-ignore lint/suspicious/noThenProperty: an APIFuture is deliberately awaitable.
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#result.then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.#result.catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.#result.finally(onfinally);
  }

  /** The result, optionally bounded in time or by a signal (which stop the wait, not the operation). */
  result(options: ResultOptions = {}): Promise<T> {
    const { timeout, signal } = options;
    if (timeout === undefined && signal === undefined) return this.#result;
    return new Promise<T>((resolve, reject) => {
      const cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        cleanup();
        reject(abortError(signal!));
      };
      const timer =
        timeout === undefined
          ? undefined
          : setTimeout(() => {
              cleanup();
              reject(
                new APITimeoutError(
                  `Timed out after ${timeout} ms waiting for the result${this.#queueNote()}`,
                ),
              );
            }, timeout);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#result.then(
        (value) => {
          cleanup();
          resolve(value);
        },
        (error) => {
          cleanup();
          reject(error);
        },
      );
    });
  }

  /** Queue-state, metadata and retry events as polling proceeds; ends when the future settles. */
  async *events(): AsyncGenerator<FutureEvent> {
    const queue: (FutureEvent | undefined)[] = [...this.#history];
    if (this.#settled) queue.push(undefined);
    let wake: (() => void) | undefined;
    const listener: EventListener = (event) => {
      queue.push(event);
      wake?.();
    };
    this.#listeners.add(listener);
    try {
      for (;;) {
        if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        const event = queue.shift();
        if (event === undefined) return;
        yield event;
      }
    } finally {
      this.#listeners.delete(listener);
    }
  }

  /** ` (queue_state: …, reason: …)` when the last reported queue state was not `active`. */
  #queueNote(): string {
    const last = [...this.#history].reverse().find((e) => e.type === "queue_state");
    if (last?.type !== "queue_state" || last.queueState === "active") return "";
    return ` (queue_state: ${last.queueState}${last.reason ? `, reason: ${last.reason}` : ""})`;
  }

  #finish(): void {
    this.#settled = true;
    for (const listener of this.#listeners) listener(undefined);
  }
}
