/**
 * Sample cancellation (PROTOCOL.md §F2): when the server's dynamic config sets
 * `sample_cancel_enabled`, a sample the caller stopped waiting for (its signal or timeout fired, or
 * stuck detection ended it) after submission is cancelled on the server, so the work it would still
 * do is not wasted. Cancels are fire-and-forget, at most `sample_cancel_max_batch_size` in flight
 * per client; a failed one is logged and dropped. With the flag off nothing is sent, and abandoned
 * work ends with the server's own expiry.
 */
import * as futures from "../wire/endpoints/futures.js";
import { call } from "./call.js";
import type { Connection } from "./connection.js";

class SampleCanceller {
  readonly #connection: Connection;
  readonly #queue: string[] = [];
  #inFlight = 0;

  constructor(connection: Connection) {
    this.#connection = connection;
  }

  /** Queues a cancel of `requestId` when the server takes cancels; does nothing otherwise. */
  cancel(requestId: string): void {
    if (this.#connection.dynamicFlags.sample_cancel_enabled !== true || this.#connection.closed) return;
    this.#queue.push(requestId);
    this.#drain();
  }

  #drain(): void {
    const limit = Math.max(
      1,
      this.#connection.dynamicFlags.sample_cancel_max_batch_size ??
        futures.DEFAULT_SAMPLE_CANCEL_MAX_BATCH_SIZE,
    );
    while (this.#inFlight < limit && this.#queue.length > 0) {
      const requestId = this.#queue.shift()!;
      this.#inFlight++;
      this.#send(requestId).finally(() => {
        this.#inFlight--;
        this.#drain();
      });
    }
  }

  async #send(requestId: string): Promise<void> {
    // Not noted as the client's outcome: a cancel that fails changes nothing for the caller.
    const context = { http: this.#connection.http, billingPauseMs: this.#connection.billingPauseMs };
    try {
      await call(context, futures.cancelFuture, { body: { request_id: requestId } });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#connection.config.logger.warn(`could not cancel sample request ${requestId}: ${message}`);
    }
  }
}

const cancellers = new WeakMap<Connection, SampleCanceller>();

/** The canceller shared by every sampling client of a connection. */
export function sampleCanceller(connection: Connection): SampleCanceller {
  let canceller = cancellers.get(connection);
  if (canceller === undefined) {
    canceller = new SampleCanceller(connection);
    cancellers.set(connection, canceller);
  }
  return canceller;
}
